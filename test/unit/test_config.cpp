// Config loading, validation and diff: the example config, good and bad fixtures
// (every bad one with its exact messages), durations, diffs. Longer than most files
// on purpose: the table of bad fixtures and their exact messages is the contract of
// `evenctl check`, kept in one place.
#include "config/config.hpp"
#include "config/diff.hpp"
#include "config/load.hpp"
#include "config/settings.hpp"
#include "support/configs.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace net = evenflow::net;
using namespace evenflow::config;
using namespace std::chrono_literals;

namespace {

// test/meson.build sets EVENFLOW_FIXTURES; without it, find the fixtures next to this file.
std::string fixtures_dir() {
    if (const char* env = std::getenv("EVENFLOW_FIXTURES"); env != nullptr && *env != '\0') {
        return env;
    }
    return (std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures").string();
}

// Paths are built one way and passed as they are, so messages can be asserted exactly.
std::string fixture(const std::string& relative) {
    return fixtures_dir() + "/configs/" + relative;
}

std::string example_path() {
    return fixtures_dir() + "/../../conf/evenflow.toml";
}

std::vector<std::string> texts(const std::vector<diagnostic>& diagnostics) {
    std::vector<std::string> out;
    for (const auto& d : diagnostics) {
        out.push_back(d.to_string());
    }
    return out;
}

net::ip_addr ip(const char* text) {
    return *net::ip_addr::parse(text);
}

config load_ok(const std::string& path) {
    auto result = load_file(path);
    INFO(path);
    CAPTURE(texts(result.errors));
    REQUIRE(result.ok());
    REQUIRE(result.errors.empty());
    return *result.value;
}

// A small valid config for the diff and load_string tests.
constexpr const char* small_config = R"(
[dataplane]
workers = [1]

[[interfaces]]
name = "client-side"
device = "net_af_packet0"
address = "10.10.0.2/24"

[[pools]]
name = "web"
backends = [
  { address = "10.20.0.11", port = 8080 },
  { address = "10.20.0.12", port = 8080 },
]

[[services]]
name = "web"
vip = "10.10.0.100"
port = 80
pool = "web"
)";

} // namespace

TEST_CASE("the example config loads with the expected values", "[config]") {
    auto cfg = load_ok(example_path());
    auto result = load_file(example_path());
    CHECK(result.warnings.empty());

    CHECK(cfg.source_path == example_path());
    CHECK(cfg.eal.args == std::vector<std::string>{"-l", "0-1", "--no-huge", "-m", "1024",
                                                   "--no-pci", "--vdev=net_af_packet0,iface=lb-c",
                                                   "--vdev=net_af_packet1,iface=lb-b"});
    CHECK(cfg.control.socket == "/run/evenflow/evenflow.sock");
    CHECK(cfg.control.metrics == "127.0.0.1:9091");

    CHECK(cfg.dataplane.workers == std::vector<uint32_t>{1});
    CHECK(cfg.dataplane.flow_capacity == 1048576);
    CHECK(cfg.dataplane.timeouts.syn == 5s);
    CHECK(cfg.dataplane.timeouts.established == 300s);
    CHECK(cfg.dataplane.timeouts.closing == 10s);

    REQUIRE(cfg.interfaces.size() == 2);
    CHECK(cfg.interfaces[0].name == "client-side");
    CHECK(cfg.interfaces[0].device == "net_af_packet0");
    CHECK(cfg.interfaces[0].address.to_string() == "10.10.0.2/24");
    REQUIRE(cfg.interfaces[0].gateway.has_value());
    CHECK(*cfg.interfaces[0].gateway == ip("10.10.0.1"));
    CHECK(cfg.interfaces[1].name == "backend-side");
    CHECK(cfg.interfaces[1].device == "net_af_packet1");
    CHECK(cfg.interfaces[1].address.to_string() == "10.20.0.1/24");
    CHECK_FALSE(cfg.interfaces[1].gateway.has_value());

    REQUIRE(cfg.pools.size() == 1);
    const auto& pool = cfg.pools[0];
    CHECK(pool.name == "web");
    REQUIRE(pool.backends.size() == 3);
    CHECK(pool.backends[0].address == ip("10.20.0.11"));
    CHECK(pool.backends[0].port == 8080);
    CHECK(pool.backends[0].weight == 1);
    CHECK(pool.backends[1].address == ip("10.20.0.12"));
    CHECK(pool.backends[1].weight == 1);
    CHECK(pool.backends[2].address == ip("10.20.0.13"));
    CHECK(pool.backends[2].port == 8080);
    CHECK(pool.backends[2].weight == 2);
    CHECK(pool.health.kind == health_kind::tcp);
    CHECK(pool.health.interval == 1s);
    CHECK(pool.health.timeout == 500ms);
    CHECK(pool.health.rise == 2);
    CHECK(pool.health.fall == 3);
    CHECK_FALSE(pool.health.port.has_value());
    CHECK(pool.drain_timeout == 30s);

    REQUIRE(cfg.services.size() == 1);
    const auto& service = cfg.services[0];
    CHECK(service.name == "web");
    CHECK(service.vip == ip("10.10.0.100"));
    CHECK(service.port == 80);
    CHECK(service.protocol == "tcp");
    CHECK(service.pool == "web");
    CHECK(service.table_size == 65537);
    CHECK(service.hash == hash_mode::five_tuple);

    CHECK(cfg.skew.window == 10s);
    CHECK(cfg.skew.threshold == 2.0);
    CHECK(cfg.skew.min_flows == 500);
    CHECK(cfg.skew.action == skew_action::alert);
    CHECK(cfg.skew.probation == 60s);

    CHECK(cfg.find_pool("web") == &cfg.pools[0]);
    CHECK(cfg.find_pool("api") == nullptr);
    CHECK(cfg.find_service("web") == &cfg.services[0]);
    CHECK(cfg.find_service("nope") == nullptr);
}

TEST_CASE("every good fixture loads without errors", "[config]") {
    std::set<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(fixture("good"))) {
        names.insert(entry.path().filename().string());
    }
    CHECK(names ==
          std::set<std::string>{"full.toml", "ipv6.toml", "minimal.toml", "warnings.toml"});
    for (const auto& name : names) {
        load_ok(fixture("good/" + name));
    }
}

TEST_CASE("the minimal config has defaults everywhere else", "[config]") {
    auto cfg = load_ok(fixture("good/minimal.toml"));
    CHECK(load_file(fixture("good/minimal.toml")).warnings.empty());
    CHECK(cfg.eal.args.empty());
    CHECK(cfg.control.socket == "/run/evenflow/evenflow.sock");
    CHECK(cfg.control.metrics == "127.0.0.1:9091");
    CHECK(cfg.dataplane.workers == std::vector<uint32_t>{1});
    CHECK(cfg.dataplane.flow_capacity == 1048576);
    CHECK(cfg.dataplane.timeouts.syn == 5s);
    CHECK(cfg.interfaces.size() == 1);
    CHECK(cfg.pools.empty());
    CHECK(cfg.services.empty());
    CHECK(cfg.skew.threshold == 2.0);
    CHECK(cfg.skew.action == skew_action::alert);
}

TEST_CASE("IPv6 and sub-table forms load", "[config]") {
    auto cfg = load_ok(fixture("good/ipv6.toml"));
    CHECK(cfg.control.socket == "/run/evenflow/v6.sock");
    CHECK(cfg.control.metrics == "[::1]:9091");
    CHECK(cfg.dataplane.timeouts.syn == 1500ms);
    CHECK(cfg.dataplane.timeouts.established == 1h);
    CHECK(cfg.dataplane.timeouts.closing == 500ms);
    REQUIRE(cfg.interfaces.size() == 1);
    CHECK(cfg.interfaces[0].device == "0000:01:00.0");
    CHECK(cfg.interfaces[0].address.to_string() == "2001:db8:10::2/64");
    CHECK(cfg.interfaces[0].gateway == ip("2001:db8:10::1"));
    REQUIRE(cfg.pools.size() == 1);
    CHECK(cfg.pools[0].backends[1].address == ip("2001:db8:20::12"));
    CHECK(cfg.pools[0].backends[1].weight == 3);
    CHECK(cfg.pools[0].health.interval == 2s);
    CHECK(cfg.pools[0].health.timeout == 1s);
    CHECK(cfg.pools[0].health.port == uint16_t(8443));
    REQUIRE(cfg.services.size() == 1);
    CHECK(cfg.services[0].vip == ip("2001:db8:10::100"));
    CHECK(cfg.services[0].port == 443);
}

TEST_CASE("every optional key is read", "[config]") {
    auto cfg = load_ok(fixture("good/full.toml"));
    CHECK(cfg.eal.args == std::vector<std::string>{"-l", "0-1", "--no-huge"});
    CHECK(cfg.control.socket == "/tmp/evenflow.sock");
    CHECK(cfg.control.metrics.empty());
    CHECK(cfg.dataplane.workers == std::vector<uint32_t>{1, 2, 3});
    CHECK(cfg.dataplane.flow_capacity == 1024);
    CHECK(cfg.dataplane.timeouts.syn == 2s);
    CHECK(cfg.dataplane.timeouts.established == 2min);
    CHECK(cfg.dataplane.timeouts.closing == 1s);
    REQUIRE(cfg.pools.size() == 2);
    const auto& web = cfg.pools[0];
    CHECK(web.backends[0].weight == 1000);
    CHECK(web.backends[1].address == ip("10.20.0.11"));
    CHECK(web.backends[1].port == 8081);
    CHECK(web.backends[1].weight == 1);
    CHECK(web.health.kind == health_kind::none);
    CHECK(web.health.interval == 5s);
    CHECK(web.health.timeout == 1s);
    CHECK(web.health.rise == 1);
    CHECK(web.health.fall == 1);
    CHECK(web.drain_timeout == 0s);
    CHECK(cfg.pools[1].drain_timeout == 2min);
    CHECK(cfg.pools[1].health.kind == health_kind::tcp);
    REQUIRE(cfg.services.size() == 2);
    CHECK(cfg.services[0].table_size == 211);
    CHECK(cfg.services[0].hash == hash_mode::src_ip);
    CHECK(cfg.services[1].table_size == 101);
    CHECK(cfg.services[1].hash == hash_mode::src_ip_port);
    CHECK(cfg.services[0].mode == forward_mode::dnat);
    CHECK(cfg.services[1].mode == forward_mode::tunnel);
    CHECK(cfg.skew.window == 30s);
    CHECK(cfg.skew.threshold == 3.0);
    CHECK(cfg.skew.min_flows == 1);
    CHECK(cfg.skew.action == skew_action::rollback);
    CHECK(cfg.skew.probation == 0s);
    CHECK(cfg.interfaces[0].kernel_interface == "ef-client");
    CHECK(cfg.interfaces[1].kernel_interface.empty());
    CHECK_FALSE(cfg.interfaces[0].vrrp);
    REQUIRE(cfg.interfaces[1].vrrp);
    const auto& vrrp = *cfg.interfaces[1].vrrp;
    CHECK(vrrp.id == 20);
    CHECK(vrrp.address == *evenflow::net::ip_addr::parse("10.20.0.254"));
    CHECK(vrrp.priority == 150);
    CHECK(vrrp.advert_interval == 50ms);
    CHECK(vrrp.peers == std::vector{*evenflow::net::ip_addr::parse("10.20.0.2")});
}

TEST_CASE("a vrrp gateway: accepted as the DNAT return path, diffed, and only by a restart",
          "[config]") {
    const std::string bgp = "\n[bgp]\nlocal_as = 65001\nrouter_id = \"10.10.0.2\"\n"
                            "next_hop = \"10.10.0.2\"\npeers = [{ address = \"10.10.0.1\", "
                            "as = 65000 }]\nreturn_path = \"vrrp\"\n";
    auto with_vrrp = [](const std::string& vrrp) {
        std::string text = evenflow::testing::basic_config_text();
        const std::string anchor = "address = \"10.20.0.1/24\"\n";
        text.replace(text.find(anchor), anchor.size(), anchor + vrrp);
        const std::string kernel = "gateway = \"10.10.0.1\"\n";
        text.replace(text.find(kernel), kernel.size(), kernel + "kernel_interface = \"ef-c\"\n");
        return text;
    };
    auto first = load_string(
        with_vrrp("vrrp = { id = 20, address = \"10.20.0.254\", peers = [\"10.20.0.2\"] }\n") + bgp,
        "mem");
    REQUIRE(first.ok());
    CHECK(first.warnings.empty());
    CHECK(first.value->interfaces[1].vrrp->priority == 100); // the defaults
    CHECK(first.value->interfaces[1].vrrp->advert_interval == 100ms);
    auto second = load_string(with_vrrp("vrrp = { id = 20, address = \"10.20.0.254\", priority "
                                        "= 200, peers = [\"10.20.0.2\"] }\n") +
                                  bgp,
                              "mem");
    REQUIRE(second.ok());
    CHECK(diff(*first.value, *second.value) ==
          std::vector<std::string>{"~ interface backend-side: vrrp id 20 10.20.0.254 priority 100 "
                                   "every 100ms peers 10.20.0.2 -> id 20 10.20.0.254 priority "
                                   "200 every 100ms peers 10.20.0.2"});
    CHECK(restart_required(*first.value, *second.value) ==
          "interfaces cannot change while evenflowd runs: restart it to change this");
    // Without peers it loads, with a warning that any host on the network is believed.
    auto anyone =
        load_string(with_vrrp("vrrp = { id = 20, address = \"10.20.0.254\" }\n") + bgp, "mem");
    REQUIRE(anyone.ok());
    REQUIRE(anyone.warnings.size() == 1);
    CHECK(anyone.warnings[0].message.find("no peers: adverts from any host") == 0);
}

TEST_CASE("[bgp] from a data-plane address the kernel does not hold warns", "[config]") {
    const std::string bgp = "\n[bgp]\nlocal_as = 65001\nrouter_id = \"10.10.0.2\"\n"
                            "next_hop = \"10.10.0.2\"\npeers = [{ address = \"10.10.0.1\", "
                            "as = 65000 }]\nreturn_path = \"single\"\n";
    auto without = load_string(evenflow::testing::basic_config_text() + bgp, "mem");
    REQUIRE(without.ok());
    CHECK(texts(without.warnings) ==
          std::vector<std::string>{
              "mem:44:12: warning: bgp.next_hop: BGP runs from 10.10.0.2, interfaces[0]'s "
              "address, which has no kernel_interface: on a port DPDK owns the kernel never "
              "holds that address and the session cannot come up; add kernel_interface = "
              "\"ef-client-side\" to interfaces[0]"});
    std::string text = evenflow::testing::basic_config_text();
    const std::string anchor = "gateway = \"10.10.0.1\"\n";
    text.replace(text.find(anchor), anchor.size(), anchor + "kernel_interface = \"ef-client\"\n");
    auto with = load_string(text + bgp, "mem");
    REQUIRE(with.ok());
    CHECK(with.warnings.empty());
}

TEST_CASE("warnings do not stop a config from loading", "[config]") {
    const auto path = fixture("good/warnings.toml");
    auto result = load_file(path);
    REQUIRE(result.ok());
    CHECK(result.errors.empty());
    CHECK(texts(result.warnings) ==
          std::vector<std::string>{
              path + ":13:51: warning: pools[0].backends[0].weight: backend 10.20.0.11:8080 has "
                     "weight 0, so it is draining: it keeps its flows but gets no new ones",
              path + ":19:12: warning: pools[1].backends: pool \"spare\" has no backends, so "
                     "service \"web-alt\" has nowhere to send new connections; add backends or "
                     "use another pool"});
    CHECK(result.warnings[0].level == severity::warning);
    CHECK(result.value->pools[0].backends[0].weight == 0);
}

namespace {

struct bad_case {
    const char* file;
    std::vector<std::string> messages; // each after "PATH:"
};

// One entry per file in test/fixtures/configs/bad/, with every message it must produce.
const std::vector<bad_case> bad_cases =
    {
        {"bad_name.toml",
         {R"~(11:8: error: pools[0].name: name "my web" may contain only letters, digits, '.', '_' and '-')~"}},
        {"bad_prefix.toml",
         {R"~(8:11: error: interfaces[0].address: "10.10.0.2" has no prefix length; write e.g. "10.10.0.2/24")~"}},
        {"bad_vip.toml",
         {R"~(19:7: error: services[0].vip: "10.10.0.300" is not an IP address; write e.g. "10.20.0.11" or "2001:db8::11")~"}},
        {"kernel_interface_name.toml",
         {R"~(9:20: error: interfaces[0].kernel_interface: "evenflow-client0" is 16 bytes; a Linux interface name has 1 to 15)~",
          R"~(15:20: error: interfaces[1].kernel_interface: "ef/backend" has a character interface names cannot have ('/', ':', space or a control character))~"}},
        {"kernel_interface_duplicate.toml",
         {R"~(15:20: error: interfaces[1].kernel_interface: kernel interface "ef-host0" is already interfaces[0]'s)~"}},
        {"kernel_interface_ipv6.toml",
         {R"~(9:20: error: interfaces[0].kernel_interface: the kernel interface is given IPv4 addresses only; 2001:db8:10::2/64 is IPv6)~"}},
        {"vrrp_values.toml",
         {R"~(14:15: error: interfaces[1].vrrp.id: virtual router id 0 is out of range; use 1..255)~",
          R"~(14:28: error: interfaces[1].vrrp.address: the gateway address 10.30.0.1 is outside 10.20.0.1/24: it must be on the interface's own network)~",
          R"~(14:52: error: interfaces[1].vrrp.priority: priority 255 is out of range; use 1..254)~",
          R"~(14:75: error: interfaces[1].vrrp.advert_interval: 15ms is not a whole number of centiseconds from 10ms to 40.95s (VRRPv3 carries it in centiseconds))~",
          R"~(14:92: error: interfaces[1].vrrp.peers[0]: peer 10.20.0.1 is this interface's own address; peers are the other hosts' addresses)~",
          R"~(14:105: error: interfaces[1].vrrp.peers[1]: peer 2001:db8::1 is IPv6; VRRP is run for IPv4 here)~"}},
        {"vrrp_collisions.toml",
         {R"~(9:8: error: interfaces[0].vrrp: the gateway address 10.10.0.100 is service web's vip)~",
          R"~(15:8: error: interfaces[1].vrrp: the gateway address 10.20.0.12 is a backend of pool web)~",
          R"~(15:8: error: interfaces[1].vrrp: interfaces[0] has vrrp id 7 address 10.10.0.100 already; each gateway needs its own id and address)~"}},
        {"return_path_unset.toml",
         {R"~(28:1: error: bgp.return_path: service web is DNAT: its backends reply through their gateway, which must not be one host when several announce its VIP; give the backends' interface a vrrp gateway and set return_path = "vrrp", or use mode = "tunnel", or say return_path = "single" if this host is the only one (README "Running several hosts"))~"}},
        {"return_path_ecmp.toml",
         {R"~(33:15: error: bgp.return_path: "ecmp" loses connections: backends keep sending replies to a dead host's MAC for seconds, until their neighbor entry fails; use "vrrp" (a vrrp gateway on the backends' interface) or mode = "tunnel")~"}},
        {"return_path_vrrp_none.toml",
         {R"~(33:15: error: bgp.return_path: return_path = "vrrp" but no interface on the backends' network has a vrrp gateway; add e.g. vrrp = { id = 20, address = "10.20.0.1", peers = ["10.20.0.3"] } to it and make it the backends' default route)~"}},
        {"bgp_ipv6_vip.toml",
         {R"~(18:7: error: services[0].vip: vip 2001:db8:10::100 is IPv6, and [bgp] announces IPv4 VIPs only (its next_hop is IPv4); serve it from hosts without [bgp])~"}},
        {"duplicate_backend.toml",
         {R"~(14:3: error: pools[0].backends[1]: backend 10.20.0.11:8080 is already listed as backends[0]; list it once and raise its weight instead)~"}},
        {"duplicate_device.toml",
         {R"~(12:10: error: interfaces[1].device: device "net_af_packet0" is already used by interfaces[0]; each interface needs its own port)~"}},
        {"duplicate_interface_name.toml", {R"~(11:8: error: interfaces[1].name: interface name "client-side" is already used by interfaces[0]; names must be unique)~"}},
        {"duplicate_pool_name.toml",
         {R"~(18:8: error: pools[1].name: pool name "web" is already used by pools[0]; names must be unique)~"}},
        {"duplicate_service_name.toml",
         {R"~(24:8: error: services[1].name: service name "web" is already used by services[0]; names must be unique)~"}},
        {"duplicate_vip_port.toml",
         {R"~(25:7: error: services[1].vip: 10.10.0.100:80/tcp is already served by services[0] ("web"); give each service its own vip and port)~"}},
        {"duration_integer.toml",
         {R"~(16:23: error: pools[0].health.interval: expected a duration string such as "5s", got an integer)~"}},
        {"duration_negative.toml",
         {R"~(24:10: error: skew.window: "-5s" is negative; durations must be positive, e.g. "5s")~"}},
        {"duration_no_unit.toml",
         {R"~(4:20: error: dataplane.timeouts.syn: "5" is not a duration; write a number and a unit (ms, s, m or h), e.g. "5s" or "1.5s")~"}},
        {"duration_zero.toml",
         {R"~(16:23: error: pools[0].health.interval: "0s" is zero; use a positive duration)~",
          R"~(16:39: error: pools[0].health.timeout: "0s" is zero; use a positive duration)~"}},
        {"family_mix.toml",
         {R"~(19:7: error: services[0].vip: vip 10.10.0.100 is IPv4 but pool "web" has IPv6 backend 2001:db8::12; mixing IPv4 and IPv6 needs NAT64, which evenflow does not do)~"}},
        {"flow_capacity.toml",
         {R"~(4:17: error: dataplane.flow_capacity: flow_capacity 512 is out of range; use 1024..67108864)~"}},
        {"gateway_outside.toml",
         {R"~(9:11: error: interfaces[0].gateway: gateway 10.30.0.1 is outside 10.10.0.2/24; a gateway must be on the interface's own network)~"}},
        {"hash_unknown.toml",
         {R"~(22:8: error: services[0].hash: unknown hash "5-tuple"; use "5tuple", "src_ip" or "src_ip_port")~"}},
        {"mode_fullnat.toml",
         {R"~(22:8: error: services[0].mode: mode "fullnat" is not available yet; use "dnat" or "tunnel")~"}},
        {"mode_unknown.toml",
         {R"~(22:8: error: services[0].mode: unknown mode "dsr"; use "dnat" or "tunnel")~"}},
        {"mode_tunnel_port.toml",
         {R"~(22:8: error: services[0].mode: mode "tunnel" does not rewrite ports: backend 10.20.0.11:8080 of pool "web" must listen on the service's port 80)~"}},
        {"mode_tunnel_v6.toml",
         {R"~(39:8: error: services[0].mode: mode "tunnel" carries IPv4 only (IPIP); this vip is IPv6)~"}},
        {"health_kind.toml",
         {R"~(16:19: error: pools[0].health.kind: unknown kind "http"; use "tcp" or "none")~"}},
        {"health_rise_zero.toml",
         {R"~(16:19: error: pools[0].health.rise: rise 0 is out of range; use 1..100)~"}},
        {"health_timeout.toml",
         {R"~(16:53: error: pools[0].health.timeout: timeout 1s must be shorter than interval 1s)~"}},
        {"interfaces_empty.toml",
         {R"~(2:14: error: interfaces: no interfaces; add at least one [[interfaces]] with name, device and address)~"}},
        {"interfaces_not_array.toml",
         {R"~(5:1: error: interfaces: expected an array of tables ([[interfaces]]), got a table)~"}},
        {"metrics_address.toml",
         {R"~(24:11: error: control.metrics: "localhost" is not HOST:PORT; write e.g. "127.0.0.1:9091", or "" to disable metrics)~"}},
        {"missing_backend_port.toml",
         {R"~(14:3: error: pools[0].backends[1].port: required key is missing; add e.g. port = 8080)~"}},
        {"missing_dataplane.toml",
         {R"~(1:1: error: dataplane: required table is missing; add [dataplane] with e.g. workers = [1])~"}},
        {"missing_interfaces.toml",
         {R"~(1:1: error: interfaces: required section is missing; add at least one [[interfaces]] with name, device and address)~"}},
        {"missing_service_pool.toml",
         {R"~(17:1: error: services[0].pool: required key is missing; add e.g. pool = "web")~"}},
        {"missing_workers.toml",
         {R"~(2:1: error: dataplane.workers: required key is missing; add e.g. workers = [1])~"}},
        {"multi_empty.toml",
         {R"~(1:1: error: dataplane: required table is missing; add [dataplane] with e.g. workers = [1])~",
          R"~(1:1: error: interfaces: required section is missing; add at least one [[interfaces]] with name, device and address)~"}},
        {"multi_schema.toml",
         {R"~(3:15: error: dataplane.workers[1]: expected an integer, got a string; remove the quotes)~",
          R"~(5:20: error: dataplane.timeouts.syn: "5 s" is not a duration; write a number and a unit (ms, s, m or h), e.g. "5s" or "1.5s")~",
          R"~(10:1: error: interfaces[0].adress: unknown key "adress"; did you mean "address"?)~",
          R"~(15:51: error: pools[0].backends[0].weight: weight -1 is out of range; use 0..1000)~",
          R"~(16:51: error: pools[0].backends[1].weight: expected an integer, got a float)~"}},
        {"multi_semantic.toml",
         {R"~(14:3: error: pools[0].backends[1]: backend 10.20.0.11:8080 is already listed as backends[0]; list it once and raise its weight instead)~",
          R"~(20:7: error: services[0].vip: vip 10.10.0.100 is IPv4 but pool "web" has IPv6 backend 2001:db8::13; mixing IPv4 and IPv6 needs NAT64, which evenflow does not do)~",
          R"~(23:14: error: services[0].table_size: table_size 65536 is not prime; the next prime is 65537)~",
          R"~(27:7: error: services[1].vip: 10.10.0.100:80/tcp is already served by services[0] ("web"); give each service its own vip and port)~",
          R"~(29:8: error: services[1].pool: no pool named "api"; define it with [[pools]] name = "api")~"}},
        {"pool_reference.toml",
         {R"~(21:8: error: services[0].pool: no pool named "api"; define it with [[pools]] name = "api")~"}},
        {"pool_reference_hint.toml",
         {R"~(21:8: error: services[0].pool: no pool named "wbe"; did you mean "web"?)~"}},
        {"port_too_large.toml",
         {R"~(14:36: error: pools[0].backends[1].port: port 70000 is out of range; use 1..65535)~"}},
        {"port_zero.toml",
         {R"~(20:8: error: services[0].port: port 0 is out of range; use 1..65535)~"}},
        {"protocol_udp.toml",
         {R"~(22:12: error: services[0].protocol: protocol "udp" is not supported; evenflow balances "tcp" only)~"}},
        {"skew_action.toml",
         {R"~(24:10: error: skew.action: unknown action "panic"; use "alert" or "rollback")~"}},
        {"skew_min_flows.toml",
         {R"~(24:13: error: skew.min_flows: min_flows 0 is out of range; use 1..1000000000)~"}},
        {"skew_threshold.toml",
         {R"~(24:13: error: skew.threshold: threshold 1 must be greater than 1.0; it is the observed/expected share that raises an alarm, e.g. 2.0)~"}},
        {"socket_relative.toml",
         {R"~(24:10: error: control.socket: "evenflow.sock" is not an absolute path; write e.g. "/run/evenflow/evenflow.sock")~"}},
        {"table_size_not_prime.toml",
         {R"~(22:14: error: services[0].table_size: table_size 1000 is not prime; the next prime is 1009)~"}},
        {"table_size_too_small.toml",
         {R"~(22:14: error: services[0].table_size: table_size 107 is too small for 2 backends (needs at least 200); the next prime is 211)~"}},
        {"toml_duplicate_key.toml",
         {R"~(22:8: error: invalid TOML: error while parsing key-value pair: cannot redefine existing integer 'port')~"}},
        {"toml_syntax.toml",
         {R"~(20:7: error: invalid TOML: error while parsing key-value pair: expected value, saw '\n')~"}},
        {"unknown_key_hint.toml",
         {R"~(14:42: error: pools[0].backends[1].wieght: unknown key "wieght"; did you mean "weight"?)~"}},
        {"unknown_key_no_hint.toml",
         {R"~(24:1: error: control.colour: unknown key "colour"; allowed here: socket, metrics, metrics_backends, admins, socket_group, state_dir)~"}},
        {"unknown_table_hint.toml",
         {R"~(17:3: error: service: unknown key "service"; did you mean "services"?)~"}},
        {"weight_range.toml",
         {R"~(14:51: error: pools[0].backends[1].weight: weight 1001 is out of range; use 0..1000)~"}},
        {"workers_duplicate.toml",
         {R"~(3:15: error: dataplane.workers[1]: lcore 1 is listed twice; list each worker once)~"}},
        {"workers_empty.toml",
         {R"~(3:11: error: dataplane.workers: no workers; list at least one lcore, e.g. workers = [1])~"}},
        {"workers_range.toml",
         {R"~(3:12: error: dataplane.workers[0]: lcore 1024 is out of range; use 0..1023)~"}},
        {"wrong_type_port_quoted.toml",
         {R"~(20:8: error: services[0].port: expected an integer, got a string; remove the quotes)~"}},
        {"wrong_type_string.toml",
         {R"~(11:8: error: pools[0].name: expected a string, got an integer)~"}},
        {"wrong_type_table.toml",
         {R"~(16:10: error: pools[0].health: expected a table, got a string)~"}},
};

} // namespace

TEST_CASE("every bad fixture fails with exactly its messages", "[config]") {
    std::set<std::string> on_disk, listed;
    for (const auto& entry : std::filesystem::directory_iterator(fixture("bad"))) {
        on_disk.insert(entry.path().filename().string());
    }
    for (const auto& c : bad_cases) {
        listed.insert(c.file);
    }
    CHECK(on_disk == listed); // a new fixture needs its expected messages here
    CHECK(bad_cases.size() >= 30);

    for (const auto& c : bad_cases) {
        DYNAMIC_SECTION(c.file) {
            const auto path = fixture(std::string("bad/") + c.file);
            auto result = load_file(path);
            std::vector<std::string> expected;
            for (const auto& m : c.messages) {
                expected.push_back(path + ":" + m);
            }
            CHECK_FALSE(result.ok());
            CHECK(texts(result.errors) == expected);
        }
    }
}

TEST_CASE("diagnostics have a fixed text form", "[config]") {
    diagnostic d{severity::error, "a.toml", 3, 7, "pools[0].name", "bad name"};
    CHECK(d.to_string() == "a.toml:3:7: error: pools[0].name: bad name");
    d.level = severity::warning;
    CHECK(d.to_string() == "a.toml:3:7: warning: pools[0].name: bad name");
    d.line = 0;
    d.column = 0;
    CHECK(d.to_string() == "a.toml: warning: pools[0].name: bad name");
    d.key.clear();
    CHECK(d.to_string() == "a.toml: warning: bad name");
}

TEST_CASE("load_string reports with the given path", "[config]") {
    auto good = load_string(small_config, "inline.toml");
    REQUIRE(good.ok());
    CHECK(good.value->source_path == "inline.toml");
    CHECK(good.value->pools[0].backends.size() == 2);

    auto bad = load_string("[dataplane]\nworkers = [1]\n[[interfaces]]\nname = 1\n", "mem");
    CHECK_FALSE(bad.ok());
    CHECK(texts(bad.errors) ==
          std::vector<std::string>{
              "mem:3:1: error: interfaces[0].device: required key is missing; add e.g. device = "
              "\"net_af_packet0\"",
              "mem:3:1: error: interfaces[0].address: required key is missing; add e.g. address "
              "= \"10.10.0.2/24\"",
              "mem:4:8: error: interfaces[0].name: expected a string, got an integer"});
}

TEST_CASE("files that cannot be read are reported without a position", "[config]") {
    const auto missing = fixture("does-not-exist.toml");
    CHECK(texts(load_file(missing).errors) ==
          std::vector<std::string>{missing +
                                   ": error: cannot read the file: no such file or directory"});
    const auto dir = fixture("good");
    CHECK(texts(load_file(dir).errors) ==
          std::vector<std::string>{dir +
                                   ": error: this is a directory; give the path of a .toml file"});
}

TEST_CASE("schema details", "[config]") {
    auto errors = [](const std::string& extra) {
        return texts(load_string(std::string(small_config) + extra, "t.toml").errors);
    };
    // small_config ends on line 21; `extra` starts on line 22.
    SECTION("a pool too big for the default table size") {
        std::string text = "[dataplane]\nworkers = [1]\n[[interfaces]]\nname = \"i\"\n"
                           "device = \"d\"\naddress = \"10.0.0.1/8\"\n"
                           "[[pools]]\nname = \"big\"\nbackends = [\n";
        for (int i = 0; i < 700; ++i) {
            text += "{ address = \"10.1." + std::to_string(i / 250) + "." +
                    std::to_string(i % 250 + 1) + "\", port = 80 },\n";
        }
        text += "]\n[[services]]\nname = \"s\"\nvip = \"10.0.0.2\"\nport = 80\npool = \"big\"\n";
        CHECK(texts(load_string(text, "big.toml").errors) ==
              std::vector<std::string>{
                  "big.toml:711:1: error: services[0].table_size: table_size 65537 is too small "
                  "for 700 backends (needs at least 70000); the next prime is 70001"});
    }
    SECTION("integers accepted where a float is expected") {
        auto result = load_string(std::string(small_config) + "[skew]\nthreshold = 4\n", "t");
        REQUIRE(result.ok());
        CHECK(result.value->skew.threshold == 4.0);
    }
    SECTION("threshold must be finite") {
        CHECK(errors("[skew]\nthreshold = inf\n") ==
              std::vector<std::string>{
                  "t.toml:23:13: error: skew.threshold: threshold inf must be greater than 1.0; "
                  "it is the observed/expected share that raises an alarm, e.g. 2.0"});
    }
    SECTION("the series guard: baseline_window and max_share") {
        auto result = load_string(
            std::string(small_config) + "[skew]\nbaseline_window = \"2h\"\nmax_share = 0.6\n", "t");
        REQUIRE(result.ok());
        CHECK(result.value->skew.baseline_window == std::chrono::hours(2));
        CHECK(result.value->skew.max_share == 0.6);
        auto defaults = load_string(small_config, "t");
        REQUIRE(defaults.ok());
        CHECK(defaults.value->skew.baseline_window == std::chrono::hours(4));
        CHECK_FALSE(defaults.value->skew.max_share);
        CHECK(errors("[skew]\nmax_share = 1.0\n") ==
              std::vector<std::string>{
                  "t.toml:23:13: error: skew.max_share: max_share 1 must be in (0, 1), e.g. 0.5: "
                  "no backend of a pool of three or more above half of its traffic"});
        CHECK(errors("[skew]\nbaseline_window = \"25h\"\n").size() == 1);
        CHECK(errors("[skew]\nbaseline_window = \"0s\"\n").empty());
    }
    SECTION("sub-millisecond durations are refused") {
        CHECK(errors("[skew]\nwindow = \"0.5ms\"\n") ==
              std::vector<std::string>{
                  "t.toml:23:10: error: skew.window: \"0.5ms\" is not a duration; write a number "
                  "and a unit (ms, s, m or h), e.g. \"5s\" or \"1.5s\""});
    }
    SECTION("health port range") {
        CHECK(errors("[[pools]]\nname = \"p2\"\nhealth = { port = 0 }\n") ==
              std::vector<std::string>{"t.toml:24:19: error: pools[1].health.port: port 0 is "
                                       "out of range; use 1..65535"});
    }
    SECTION("an unknown top-level key far from any known one lists the allowed keys") {
        CHECK(texts(load_string("logging = true\n" + std::string(small_config), "t.toml").errors) ==
              std::vector<std::string>{
                  "t.toml:1:1: error: logging: unknown key \"logging\"; allowed here: eal, "
                  "control, dataplane, interfaces, pools, services, skew, bgp"});
    }
    SECTION("metrics forms") {
        for (const char* good : {"localhost:9091", "0.0.0.0:9100", "[::1]:9091", ""}) {
            INFO(good);
            CHECK(errors(std::string("[control]\nmetrics = \"") + good + "\"\n").empty());
        }
        for (const char* bad : {"9091", "127.0.0.1:0", "127.0.0.1:65536", "::1:9091",
                                "[10.0.0.1]:80", "host.example:80", "127.0.0.1:"}) {
            INFO(bad);
            CHECK(errors(std::string("[control]\nmetrics = \"") + bad + "\"\n").size() == 1);
        }
    }
    SECTION("a socket path too long for sockaddr_un") {
        CHECK(errors("[control]\nsocket = \"/" + std::string(120, 'x') + "\"\n") ==
              std::vector<std::string>{
                  "t.toml:23:10: error: control.socket: path is 121 bytes long; a Unix socket "
                  "path may have at most 107"});
    }
}

TEST_CASE("hash_seed: 32 hex digits; a bad one is refused without being repeated", "[config]") {
    auto with = [](const std::string& value) {
        return load_string(std::string(small_config)
                               .replace(std::string(small_config).find("workers = [1]"), 13,
                                        "workers = [1]\nhash_seed = " + value),
                           "t.toml");
    };
    auto good = with("\"5BE1C0FFEE00D15EA5E0123456789abc\"");
    REQUIRE(good.ok());
    CHECK(good.value->dataplane.hash_seed->to_hex() == "5be1c0ffee00d15ea5e0123456789abc");
    CHECK_FALSE(load_string(small_config, "t.toml").value->dataplane.hash_seed);
    for (const char* bad :
         {"\"5be1c0ffee00d15ea5e0123456789ab\"", "\"5be1c0ffee00d15ea5e0123456789abcd\"",
          "\"5be1c0ffee00d15ea5e0123456789abg\"", "42"}) {
        auto r = with(bad);
        CHECK_FALSE(r.ok());
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0].key == "dataplane.hash_seed");
        CHECK(r.errors[0].message.find("c0ffee") == std::string::npos);
    }
    CHECK(with("\"5be1c0ffee00d15ea5e0123456789ab\"").errors[0].message ==
          "expected 32 hex digits (128 bits), got 31 characters; make one with: openssl rand -hex "
          "16");
}

TEST_CASE("durations parse and format", "[config]") {
    struct row {
        const char* text;
        std::optional<duration> value;
    };
    const row rows[] = {
        {"500ms", 500ms},
        {"5s", 5s},
        {"1.5s", 1500ms},
        {"2m", 2min},
        {"1h", 1h},
        {"0s", 0ms},
        {"0.25s", 250ms},
        {"1.5m", 90s},
        {"300s", 300s},
        {"05s", 5s},
        {"1.001s", 1001ms},
        {"36h", 36h},
        {"", std::nullopt},
        {"5", std::nullopt},
        {"s", std::nullopt},
        {"-5s", std::nullopt},
        {"+5s", std::nullopt},
        {"5 s", std::nullopt},
        {" 5s", std::nullopt},
        {"5S", std::nullopt},
        {"5sec", std::nullopt},
        {"1.s", std::nullopt},
        {".5s", std::nullopt},
        {"0.5ms", std::nullopt},
        {"1.0001s", std::nullopt},
        {"5d", std::nullopt},
        {"1m30s", std::nullopt},
        {"1e3ms", std::nullopt},
        {"9999999999999h", std::nullopt},
    };
    for (const auto& r : rows) {
        INFO(r.text);
        CHECK(parse_duration(r.text) == r.value);
    }

    CHECK(format_duration(500ms) == "500ms");
    CHECK(format_duration(1500ms) == "1.5s");
    CHECK(format_duration(1250ms) == "1.25s");
    CHECK(format_duration(1001ms) == "1.001s");
    CHECK(format_duration(5s) == "5s");
    CHECK(format_duration(90s) == "90s");
    CHECK(format_duration(300s) == "5m");
    CHECK(format_duration(2h) == "2h");
    CHECK(format_duration(0ms) == "0s");
    for (auto d : {1ms, 999ms, 1000ms, 1234ms, 60000ms, 61000ms, 3600000ms, 5400000ms}) {
        CHECK(parse_duration(format_duration(d)) == d);
    }
}

TEST_CASE("enum and endpoint text forms", "[config]") {
    CHECK(to_string(hash_mode::five_tuple) == "5tuple");
    CHECK(to_string(hash_mode::src_ip) == "src_ip");
    CHECK(to_string(hash_mode::src_ip_port) == "src_ip_port");
    CHECK(to_string(forward_mode::dnat) == "dnat");
    CHECK(to_string(forward_mode::tunnel) == "tunnel");
    CHECK(to_string(health_kind::tcp) == "tcp");
    CHECK(to_string(health_kind::none) == "none");
    CHECK(to_string(skew_action::alert) == "alert");
    CHECK(to_string(skew_action::rollback) == "rollback");
    CHECK(format_endpoint(ip("10.20.0.11"), 8080) == "10.20.0.11:8080");
    CHECK(format_endpoint(ip("2001:db8::11"), 443) == "[2001:db8::11]:443");
}

TEST_CASE("diff of identical configs is empty", "[config]") {
    auto a = load_ok(example_path());
    auto b = load_ok(example_path());
    b.source_path = "elsewhere.toml";
    CHECK(diff(a, b).empty());
}

TEST_CASE("diff lists changes for review", "[config]") {
    const auto before = load_ok(example_path());
    auto after = before;

    SECTION("backends added, removed and reweighted") {
        auto& backends = after.pools[0].backends;
        backends.erase(backends.begin() + 2); // 10.20.0.13 weight 2
        backends[1].weight = 3;               // 10.20.0.12
        backends.push_back({ip("10.20.0.14"), 8080, 1});
        CHECK(diff(before, after) == std::vector<std::string>{
                                         "~ backend web 10.20.0.12:8080: weight 1 -> 3",
                                         "- backend web 10.20.0.13:8080 (weight 2)",
                                         "+ backend web 10.20.0.14:8080 (weight 1)",
                                     });
    }
    SECTION("listing order does not matter") {
        std::reverse(after.pools[0].backends.begin(), after.pools[0].backends.end());
        CHECK(diff(before, after).empty());
    }
    SECTION("a service and its pool added") {
        after.pools.push_back(pool_config{"api", {{ip("10.20.0.21"), 9000, 1}}, {}, 30s});
        after.services.push_back(service_config{"api", ip("10.10.0.101"), 80, "tcp", "api"});
        CHECK(diff(before, after) == std::vector<std::string>{
                                         "+ service api 10.10.0.101:80 -> pool api",
                                         "+ pool api (1 backend)",
                                         "+ backend api 10.20.0.21:9000 (weight 1)",
                                     });
        CHECK(diff(after, before) == std::vector<std::string>{
                                         "- service api 10.10.0.101:80 -> pool api",
                                         "- pool api (1 backend)",
                                         "- backend api 10.20.0.21:9000 (weight 1)",
                                     });
    }
    SECTION("service fields") {
        auto& s = after.services[0];
        s.vip = ip("10.10.0.101");
        s.port = 8080;
        s.table_size = 65539;
        s.hash = hash_mode::src_ip;
        s.mode = forward_mode::tunnel;
        CHECK(diff(before, after) == std::vector<std::string>{
                                         "~ service web: vip 10.10.0.100 -> 10.10.0.101",
                                         "~ service web: port 80 -> 8080",
                                         "~ service web: table_size 65537 -> 65539",
                                         "~ service web: hash 5tuple -> src_ip",
                                         "~ service web: mode dnat -> tunnel",
                                     });
    }
    SECTION("health and drain") {
        auto& p = after.pools[0];
        p.health.kind = health_kind::none;
        p.health.interval = 2s;
        p.health.timeout = 1500ms;
        p.health.rise = 1;
        p.health.fall = 5;
        p.health.port = 9000;
        p.drain_timeout = 2min;
        CHECK(diff(before, after) == std::vector<std::string>{
                                         "~ pool web: health.kind tcp -> none",
                                         "~ pool web: health.interval 1s -> 2s",
                                         "~ pool web: health.timeout 500ms -> 1.5s",
                                         "~ pool web: health.rise 2 -> 1",
                                         "~ pool web: health.fall 3 -> 5",
                                         "~ pool web: health.port backend's own -> 9000",
                                         "~ pool web: drain_timeout 30s -> 2m",
                                     });
    }
    SECTION("the pick hash's seed: that it changed, never what it is") {
        after.dataplane.hash_seed = *net::hash_seed::parse("5be1c0ffee00d15ea5e0123456789abc");
        CHECK(diff(before, after) ==
              std::vector<std::string>{"~ dataplane.hash_seed: (unset) -> (secret)"});
        auto again = after;
        again.dataplane.hash_seed = *net::hash_seed::parse("5be1c0ffee00d15ea5e0123456789abd");
        CHECK(diff(after, again) ==
              std::vector<std::string>{"~ dataplane.hash_seed: (secret) -> (another secret)"});
        CHECK(diff(after, before) ==
              std::vector<std::string>{"~ dataplane.hash_seed: (secret) -> (unset)"});
    }
    SECTION("a kernel interface added, and its restart") {
        after.interfaces[0].kernel_interface = "ef-client";
        CHECK(diff(before, after) ==
              std::vector<std::string>{
                  "~ interface client-side: kernel_interface none -> ef-client"});
        CHECK(restart_required(before, after) ==
              "interfaces cannot change while evenflowd runs: restart it to change this");
    }
    SECTION("settings") {
        after.interfaces[0].gateway.reset();
        after.interfaces[1].address = *net::ip_prefix::parse("10.20.0.1/16");
        after.interfaces.push_back(
            {"mgmt", "net_af_packet2", *net::ip_prefix::parse("10.30.0.1/24"), {}});
        after.dataplane.workers = {1, 2};
        after.dataplane.flow_capacity = 4096;
        after.dataplane.timeouts.syn = 3s;
        after.dataplane.timeouts.established = 1h;
        after.dataplane.timeouts.closing = 500ms;
        after.skew.window = 20s;
        after.skew.threshold = 3.0;
        after.skew.min_flows = 100;
        after.skew.action = skew_action::rollback;
        after.skew.probation = 2min;
        after.skew.baseline_window = 30min;
        after.skew.max_share = 0.6;
        after.control.metrics = "";
        after.control.socket = "/tmp/e.sock";
        after.eal.args = {"-l", "0-2"};
        CHECK(diff(before, after) ==
              std::vector<std::string>{
                  "~ interface backend-side: address 10.20.0.1/24 -> 10.20.0.1/16",
                  "~ interface client-side: gateway 10.10.0.1 -> none",
                  "+ interface mgmt net_af_packet2 10.30.0.1/24",
                  "~ dataplane.workers: [1] -> [1, 2]",
                  "~ dataplane.flow_capacity: 1048576 -> 4096",
                  "~ dataplane.timeouts.syn: 5s -> 3s",
                  "~ dataplane.timeouts.established: 5m -> 1h",
                  "~ dataplane.timeouts.closing: 10s -> 500ms",
                  "~ skew.window: 10s -> 20s",
                  "~ skew.threshold: 2 -> 3",
                  "~ skew.min_flows: 500 -> 100",
                  "~ skew.action: alert -> rollback",
                  "~ skew.probation: 1m -> 2m",
                  "~ skew.baseline_window: 4h -> 30m",
                  "~ skew.max_share: unset -> 0.6",
                  "~ control.socket: \"/run/evenflow/evenflow.sock\" -> \"/tmp/e.sock\"",
                  "~ control.metrics: \"127.0.0.1:9091\" -> \"\"",
                  "~ eal.args: [\"-l\", \"0-1\", \"--no-huge\", \"-m\", \"1024\", \"--no-pci\", "
                  "\"--vdev=net_af_packet0,iface=lb-c\", \"--vdev=net_af_packet1,iface=lb-b\"] -> "
                  "[\"-l\", \"0-2\"]",
              });
    }
    SECTION("changes come in order: services, pools, backends, settings") {
        after.skew.threshold = 3.0;
        after.pools[0].backends[0].weight = 5;
        after.pools[0].health.rise = 4;
        after.services[0].port = 81;
        CHECK(diff(before, after) == std::vector<std::string>{
                                         "~ service web: port 80 -> 81",
                                         "~ pool web: health.rise 2 -> 4",
                                         "~ backend web 10.20.0.11:8080: weight 1 -> 5",
                                         "~ skew.threshold: 2 -> 3",
                                     });
    }
}

TEST_CASE("diff between two loaded files", "[config]") {
    std::string text = small_config;
    auto before = load_string(text, "a.toml");
    auto pos = text.find("{ address = \"10.20.0.12\", port = 8080 }");
    text.replace(pos, 39, "{ address = \"10.20.0.12\", port = 8080, weight = 0 }");
    auto after = load_string(text, "b.toml");
    REQUIRE(before.ok());
    REQUIRE(after.ok());
    CHECK(diff(*before.value, *after.value) ==
          std::vector<std::string>{"~ backend web 10.20.0.12:8080: weight 1 -> 0"});
}

TEST_CASE("every number has a bound, reported where it is written", "[config]") {
    auto errors_of = [](const std::string& text) {
        std::vector<std::string> out;
        for (const auto& d : load_string(text, "bounds.toml").errors) {
            out.push_back(d.to_string());
        }
        return out;
    };
    const std::string head = R"([dataplane]
workers = [1]

[[interfaces]]
name = "client-side"
device = "net_null0"
address = "10.10.0.2/16"
)";
    auto one = [&](const std::string& tail) {
        auto e = errors_of(head + tail);
        REQUIRE(e.size() == 1);
        return e[0];
    };
    // A prime table of 4,294,967,291 slots would be two 16 GiB tables.
    CHECK(one("[[pools]]\nname = \"p\"\nbackends = [{ address = \"10.10.1.1\", port = 1 }]\n"
              "[[services]]\nname = \"s\"\nvip = \"10.10.0.100\"\nport = 80\npool = \"p\"\n"
              "table_size = 4294967291\n") ==
          "bounds.toml:16:14: error: services[0].table_size: table_size 4294967291 is out of "
          "range; use 1..1048573");
    // A timeout that 32-bit milliseconds would cut ("1194h" became 57 s).
    CHECK(one("[dataplane.timeouts]\nestablished = \"1194h\"\n") ==
          "bounds.toml:9:15: error: dataplane.timeouts.established: \"1194h\" is longer than "
          "24h, the most this setting takes");
    CHECK(one("[skew]\nwindow = \"2h\"\n") ==
          "bounds.toml:9:10: error: skew.window: \"2h\" is longer than 1h, the most this "
          "setting takes");
    // More services than the 16-bit service index can hold.
    std::string many = "[[pools]]\nname = \"p\"\nbackends = []\n";
    for (int i = 0; i < 16'385; ++i) {
        many += fmt::format("[[services]]\nname = \"s{}\"\nvip = \"10.10.{}.{}\"\nport = 80\n"
                            "pool = \"p\"\ntable_size = 101\n",
                            i, 1 + i / 250, 1 + i % 250);
    }
    auto e = errors_of(head + many);
    REQUIRE(!e.empty());
    CHECK(e.back().find("16385 services; one host serves at most 16384") != std::string::npos);
    // More backends than the id space, over all services.
    std::string pools;
    for (int p = 0; p < 7; ++p) {
        pools += fmt::format("[[pools]]\nname = \"p{}\"\nbackends = [\n", p);
        for (int b = 0; b < 10'000; ++b) {
            int n = p * 10'000 + b;
            pools += fmt::format("{{ address = \"10.{}.{}.{}\", port = 80 }},\n", 20 + n / 62500,
                                 n / 250 % 250, 1 + n % 250);
        }
        pools += "]\nhealth = { kind = \"none\" }\n";
        pools += fmt::format("[[services]]\nname = \"s{}\"\nvip = \"10.10.0.{}\"\nport = 80\n"
                             "pool = \"p{}\"\ntable_size = 1000003\n",
                             p, 100 + p, p);
    }
    e = errors_of(head + pools);
    REQUIRE(e.size() == 1);
    CHECK(e[0].find("services up to here have 70000 backends in all; one host keeps track of "
                    "at most 65535") != std::string::npos);
}

// ---- host-wide settings: one table for the reader, the diff and the restart rule ----

namespace {

// A config with every host-wide section ([skew] empty, [bgp] with what it requires,
// unless `bgp` is false) and `line` ("key = value") set in `section`, replacing the
// key's line if the section has one.
std::string config_with(std::string_view section, std::string_view line, bool bgp = true) {
    std::string text = evenflow::testing::basic_config_text() + "\n[skew]\n";
    if (bgp) {
        const std::string anchor = "address = \"10.20.0.1/24\"\n";
        text.replace(text.find(anchor), anchor.size(),
                     anchor + "vrrp = { id = 20, address = \"10.20.0.254\", peers = "
                              "[\"10.20.0.2\"] }\n");
        text += "\n[bgp]\nlocal_as = 65001\nrouter_id = \"10.30.0.2\"\nnext_hop = "
                "\"10.30.0.2\"\npeers = [{ address = \"10.30.0.1\", as = 65000 }]\n"
                "return_path = \"vrrp\"\n";
    }
    if (line.empty()) {
        return text;
    }
    const std::string header = fmt::format("[{}]\n", section);
    size_t body = text.find(header);
    if (body == std::string::npos) {
        return text; // the caller's REQUIRE on the diff fails with the config in INFO
    }
    body += header.size();
    size_t end = text.find("\n[", body);
    end = end == std::string::npos ? text.size() : end + 1;
    const std::string key(line.substr(0, line.find(' ')));
    std::string kept;
    for (size_t at = body; at < end;) {
        size_t eol = text.find('\n', at);
        eol = eol == std::string::npos ? end : std::min(eol + 1, end);
        std::string_view l(text.data() + at, eol - at);
        if (!l.starts_with(key + " =")) {
            kept += l;
        }
        at = eol;
    }
    return text.substr(0, body) + std::string(line) + "\n" + kept + text.substr(end);
}

} // namespace

TEST_CASE("settings: every host-wide setting is read, shown by diff and history, and refused "
          "live when only a restart can change it") {
    const config base = evenflow::testing::load_or_fail(config_with("", ""));
    const config no_bgp = evenflow::testing::load_or_fail(config_with("", "", false));
    std::set<std::string> names;
    for (const setting_row& row : settings()) {
        INFO(row.name() << ": " << row.example);
        CHECK(names.insert(row.name()).second);
        const std::string text =
            row.key.empty() ? config_with("", "") : config_with(row.section, row.example);
        const config& before = row.key.empty() ? no_bgp : base;
        load_result changed = load_string(text, "test.toml");
        INFO(text);
        REQUIRE(changed.ok());
        // The reader accepts the key: it is among the section's keys.
        if (!row.key.empty()) {
            auto keys = keys_of(row.section);
            std::string_view top = row.key.substr(0, row.key.find('.'));
            CHECK(std::find(keys.begin(), keys.end(), top) != keys.end());
        }
        // diff and history show it, on its own line.
        auto lines = diff(before, *changed.value);
        auto prefix = "~ " + row.name() + ": ";
        CHECK(std::count_if(lines.begin(), lines.end(),
                            [&](const std::string& l) { return l.starts_with(prefix); }) == 1);
        // Restart-only settings are named by the restart rule, the others never.
        auto restart = settings_needing_restart(before, *changed.value);
        if (row.restart_as.empty()) {
            CHECK(restart.empty());
        } else {
            CHECK(restart == std::vector<std::string>{std::string(row.restart_as)});
        }
    }
    // The gaps the table closed: [bgp] and its return_path now show in a diff.
    CHECK(names.count("bgp.return_path") == 1);
    CHECK(names.count("bgp.local_as") == 1);
    CHECK(keys_of("dataplane.timeouts") ==
          std::vector<std::string_view>{"syn", "established", "closing"});
}

TEST_CASE("settings: a key no row names is unknown to the reader") {
    load_result r = load_string(config_with("skew", "colour = \"blue\""), "test.toml");
    CHECK_FALSE(r.ok());
}

TEST_CASE("choices: each enum's words name it and parse back, and the readers list them") {
    for (auto m : {hash_mode::five_tuple, hash_mode::src_ip, hash_mode::src_ip_port}) {
        CHECK(evenflow::parse_choice<hash_mode>(evenflow::name_of(m)) == m);
    }
    CHECK(to_string(hash_mode::five_tuple) == "5tuple");
    CHECK(to_string(forward_mode::tunnel) == "tunnel");
    CHECK(to_string(health_kind::none) == "none");
    CHECK(to_string(skew_action::rollback) == "rollback");
    CHECK(evenflow::name_of(hash_mode(7)) == "unknown");
    CHECK_FALSE(evenflow::parse_choice<hash_mode>("5-tuple").has_value());
    CHECK(evenflow::choice_list<hash_mode>() == "\"5tuple\", \"src_ip\" or \"src_ip_port\"");
    CHECK(evenflow::choice_list<forward_mode>() == "\"dnat\" or \"tunnel\"");
    // The reader's message comes from the same table.
    load_result r = load_string(config_with("skew", "action = \"revert\""), "test.toml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.errors[0].message == "unknown action \"revert\"; use \"alert\" or \"rollback\"");
}
