// Config texts and small helpers shared by the snapshot, control and dataplane tests.
#pragma once

#include "config/load.hpp"
#include "snapshot/snapshot.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace evenflow::testing {

// Two interfaces, one service "web" on 10.10.0.100:80 with three backends (1, 1, 2).
inline std::string
basic_config_text(const std::string& backends_extra = "",
                  const std::string& web_backends =
                      "  { address = \"10.20.0.11\", port = 8080, weight = 1 },\n"
                      "  { address = \"10.20.0.12\", port = 8080, weight = 1 },\n"
                      "  { address = \"10.20.0.13\", port = 8080, weight = 2 },\n") {
    return R"([eal]
args = ["--no-huge"]

[control]
socket = "/tmp/evenflow-test.sock"
metrics = ""
state_dir = "" # tests that keep state name their own directory

[dataplane]
workers = [1]
flow_capacity = 65536

[[interfaces]]
name = "client-side"
device = "net_ring_client"
address = "10.10.0.2/24"
gateway = "10.10.0.1"

[[interfaces]]
name = "backend-side"
device = "net_ring_backend"
address = "10.20.0.1/24"

[[pools]]
name = "web"
backends = [
)" + web_backends +
           backends_extra +
           R"(]
health = { kind = "tcp", interval = "1s", timeout = "500ms", rise = 2, fall = 3 }

[[services]]
name = "web"
vip = "10.10.0.100"
port = 80
protocol = "tcp"
pool = "web"
table_size = 65537
)";
}

inline config::config load_or_fail(const std::string& text) {
    config::load_result r = config::load_string(text, "test.toml");
    for (const auto& e : r.errors) {
        INFO(e.to_string());
    }
    REQUIRE(r.errors.empty());
    REQUIRE(r.ok());
    return *r.value;
}

inline net::ip_addr ip(const char* text) {
    return *net::ip_addr::parse(text);
}

inline const snapshot_backend& backend_by_key(const snapshot& s, const std::string& key) {
    for (const auto& b : s.backends) {
        if (b.key() == key) {
            return b;
        }
    }
    FAIL("no backend " << key);
    return s.backends.front();
}

} // namespace evenflow::testing
