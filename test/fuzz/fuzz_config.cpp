// libFuzzer target: the config loader (lib/config load_string) on arbitrary text, and
// what the daemon does next with a config that loads: build_snapshot (lib/snapshot),
// lint and evaluate_apply (lib/control/guard), config::diff.
//
// Input: the text of a config file. What must hold for any input:
// - load_string returns errors or a config, never crashes or throws; a config only
//   without errors; every diagnostic is located inside the text (line 0 = unknown);
// - every text that ends up in a reply of the daemon (diagnostics, names, diff, lint,
//   shift and restart lines) is valid UTF-8: the daemon's replies are JSON, and
//   nlohmann::json::dump() throws on invalid UTF-8;
// - a config that loads builds a snapshot (or says why not) without crashing; in it,
//   every service is found by its VIP and port, its table has the configured size and
//   holds only ids of its own backends; a rebuild with the first as `previous` shares
//   every table; lint runs; diff of a config with itself is empty; evaluate_apply
//   against a small running config gives a verdict, and `unchanged` against itself.
// Cap (the harness's, not the loader's): a config whose table sizes add up to more
// than 1<<20 slots is loaded and checked but not built: table_size is unbounded in
// the loader (issue #13 point 8), and a 4-billion-slot table is an allocation, not a
// finding. It is counted and printed at exit.
#include "config/diff.hpp"
#include "config/load.hpp"
#include "control/guard.hpp"
#include "snapshot/snapshot.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>

using namespace evenflow;

namespace {

constexpr uint64_t max_total_slots = uint64_t(1) << 20;

[[noreturn]] void fail(const char* what, int line, const std::string& detail = {}) {
    std::fprintf(stderr, "fuzz_config: invariant broken (line %d): %s %s\n", line, what,
                 detail.c_str());
    std::abort();
}
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail(#cond, __LINE__);                                                                 \
        }                                                                                          \
    } while (0)

// What the daemon's reply would do with this text: nlohmann::json::dump() throws
// type_error 316 on invalid UTF-8.
void check_json_safe(const std::string& text, int line) {
    try {
        (void)nlohmann::json(text).dump();
    } catch (const nlohmann::json::type_error& e) {
        fail("text for a JSON reply is not valid UTF-8:", line, e.what());
    }
}
#define CHECK_JSON_SAFE(text) check_json_safe(text, __LINE__)

// The running config that applies are evaluated against: one pool, one service.
const char* const running_text = R"(
[dataplane]
workers = [1]

[[interfaces]]
name = "client-side"
device = "net_af_packet0"
address = "10.10.0.2/24"

[[interfaces]]
name = "backend-side"
device = "net_af_packet1"
address = "10.20.0.1/24"

[[pools]]
name = "web"
backends = [
  { address = "10.20.0.11", port = 8080 },
  { address = "10.20.0.12", port = 8080, weight = 2 },
]

[[services]]
name = "web"
vip = "10.10.0.100"
port = 80
pool = "web"
table_size = 251
)";

std::shared_ptr<const config::config> running_config() {
    static const std::shared_ptr<const config::config> running = [] {
        auto r = config::load_string(running_text, "running.toml");
        if (!r.ok()) {
            fail("the harness's running config does not load", __LINE__);
        }
        return std::make_shared<const config::config>(std::move(*r.value));
    }();
    return running;
}

size_t skipped_builds = 0;
struct report_at_exit {
    ~report_at_exit() {
        if (skipped_builds > 0) {
            std::fprintf(stderr,
                         "fuzz_config: %zu configs loaded but not built (tables over %llu slots)\n",
                         skipped_builds, static_cast<unsigned long long>(max_total_slots));
        }
    }
} reporter;

void check_diagnostics(const config::load_result& r, std::string_view text) {
    const auto lines = size_t(std::count(text.begin(), text.end(), '\n')) + 1;
    for (const auto* list : {&r.errors, &r.warnings}) {
        for (const config::diagnostic& d : *list) {
            CHECK(d.line <= lines);
            CHECK(d.level ==
                  (list == &r.errors ? config::severity::error : config::severity::warning));
            CHECK_JSON_SAFE(d.to_string());
        }
    }
}

void check_names(const config::config& cfg) {
    for (const auto& i : cfg.interfaces) {
        CHECK_JSON_SAFE(i.name);
        CHECK_JSON_SAFE(i.device);
    }
    for (const auto& p : cfg.pools) {
        CHECK_JSON_SAFE(p.name);
    }
    for (const auto& s : cfg.services) {
        CHECK_JSON_SAFE(s.name);
        CHECK_JSON_SAFE(s.pool);
        CHECK(cfg.find_service(s.name) != nullptr);
    }
    for (const auto& a : cfg.eal.args) {
        CHECK_JSON_SAFE(a);
    }
    CHECK_JSON_SAFE(cfg.control.socket);
    CHECK_JSON_SAFE(cfg.control.metrics);
}

void check_snapshot(const config::config& cfg, const snapshot& snap) {
    CHECK(snap.services.size() == cfg.services.size());
    for (const snapshot_service& s : snap.services) {
        CHECK(snap.find_service(s.vip, s.port_be, s.proto) == &s);
        CHECK(snap.is_vip(s.vip));
        const config::service_config* sc = cfg.find_service(s.name);
        CHECK(sc != nullptr && s.table_size() == sc->table_size);
        CHECK(s.table && s.table->size() == s.table_size());
        for (uint32_t id : *s.table) {
            if (id != 0) {
                const snapshot_backend* b = snap.find_backend(id);
                CHECK(b != nullptr && b->service_index == s.index);
            }
        }
        for (uint32_t hash : {0u, 1u, 0x9e3779b9u, 0xffffffffu}) {
            const uint32_t id = s.pick(hash);
            CHECK(id == 0 || snap.find_backend(id) != nullptr);
        }
        for (uint32_t i : s.backend_indexes) {
            CHECK(i < snap.backends.size() && snap.backends[i].service_index == s.index);
        }
    }
    for (const snapshot_backend& b : snap.backends) {
        CHECK(snap.find_backend(b.id) == &b);
        CHECK_JSON_SAFE(b.key());
        const snapshot_service* s =
            snap.service_of_reply(b.address, b.port_be, net::ip_addr{}, uint16_t(0x5000));
        CHECK(s == nullptr || s->index == b.service_index ||
              std::any_of(s->backend_indexes.begin(), s->backend_indexes.end(), [&](uint32_t i) {
                  return snap.backends[i].address == b.address &&
                         snap.backends[i].port_be == b.port_be;
              }));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    config::load_result r = config::load_string(text, "fuzz.toml");
    CHECK(r.ok() == r.errors.empty());
    check_diagnostics(r, text);
    if (!r.ok()) {
        auto eval = control::evaluate_apply(std::move(r), running_config(), false);
        CHECK(eval.verdict == control::apply_verdict::invalid);
        return 0;
    }
    const auto cfg = std::make_shared<const config::config>(*r.value);
    check_names(*cfg);
    CHECK(config::diff(*cfg, *cfg).empty());
    for (const std::string& line : config::diff(*running_config(), *cfg)) {
        CHECK_JSON_SAFE(line);
    }

    for (bool accept : {false, true}) {
        auto eval = control::evaluate_apply(r, running_config(), accept);
        CHECK(eval.verdict != control::apply_verdict::invalid);
        CHECK(!accept || eval.verdict != control::apply_verdict::shift);
        for (const std::string& line : eval.shift_lines) {
            CHECK_JSON_SAFE(line);
        }
        for (const std::string& line : eval.diff) {
            CHECK_JSON_SAFE(line);
        }
        CHECK_JSON_SAFE(eval.error);
        CHECK((eval.cfg != nullptr) == (eval.verdict == control::apply_verdict::accept ||
                                        eval.verdict == control::apply_verdict::unchanged));
    }
    const auto same = control::evaluate_apply(r, cfg, false);
    CHECK(same.verdict == control::apply_verdict::unchanged);

    uint64_t slots = 0;
    for (const auto& s : cfg->services) {
        slots += s.table_size;
    }
    if (slots > max_total_slots) {
        ++skipped_builds;
        return 0;
    }
    backend_registry registry;
    build_result built = build_snapshot(cfg, registry, {}, 1, build_options{});
    CHECK((built.value != nullptr) == built.error.empty());
    if (!built.value) {
        CHECK_JSON_SAFE(built.error);
        return 0;
    }
    check_snapshot(*cfg, *built.value);
    for (const config::diagnostic& d : control::lint(*cfg, *built.value)) {
        CHECK_JSON_SAFE(d.to_string());
    }
    // A rebuild from the same config shares every table with the previous snapshot.
    build_options again;
    again.previous = built.value.get();
    build_result rebuilt = build_snapshot(cfg, registry, {}, 2, again);
    CHECK(rebuilt.value != nullptr);
    check_snapshot(*cfg, *rebuilt.value);
    for (size_t i = 0; i < rebuilt.value->services.size(); ++i) {
        CHECK(rebuilt.value->services[i].table == built.value->services[i].table);
    }
    return 0;
}
