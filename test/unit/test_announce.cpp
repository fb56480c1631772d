// What a host announces over BGP and the fingerprint hosts compare
// (lib/control/announce.hpp): pure, tested without a daemon or a speaker.
#include "control/announce.hpp"
#include "control/manager.hpp"
#include "support/configs.hpp"

#include <catch2/catch.hpp>

using namespace evenflow;
using namespace std::chrono_literals;

namespace {

const std::string b1 = "  { address = \"10.20.0.11\", port = 8080, weight = 1 },\n";
const std::string b2 = "  { address = \"10.20.0.12\", port = 8080, weight = 1 },\n";

std::string fp_of(const std::string& backends) {
    control::config_manager m;
    auto cfg = testing::load_or_fail(testing::basic_config_text("", backends));
    REQUIRE(m.start(cfg, {}, "start").ok);
    return control::fingerprint(m.running(), m);
}

} // namespace

TEST_CASE("fingerprint: equal for the same mapping, whatever the order; weights and admin "
          "states count, health does not") {
    CHECK(fp_of(b1 + b2) == fp_of(b2 + b1));
    CHECK(fp_of(b1 + b2).size() == 16);
    CHECK(fp_of(b1 + b2) != fp_of(b1));
    CHECK(fp_of(b1 + b2) !=
          fp_of(b1 + "  { address = \"10.20.0.12\", port = 8080, weight = 2 },\n"));

    control::config_manager m;
    REQUIRE(
        m.start(testing::load_or_fail(testing::basic_config_text("", b1 + b2)), {}, "start").ok);
    std::string before = control::fingerprint(m.running(), m);
    uint32_t id = m.registry().find("web", testing::ip("10.20.0.11"), 8080);
    REQUIRE(id != 0);
    m.record_health(id, control::health_verdict::down);
    CHECK(control::fingerprint(m.running(), m) == before);
    std::string error;
    REQUIRE(m.set_admin_state("web", "10.20.0.11:8080", control::admin_state::draining, &error));
    CHECK(control::fingerprint(m.running(), m) != before);
}

TEST_CASE("announcements: live, not drained, a backend up") {
    control::config_manager m;
    REQUIRE(m.start(testing::load_or_fail(testing::basic_config_text("", b1)), {}, "start").ok);
    auto built = m.rebuild();
    REQUIRE(built.value);
    const snapshot& snap = *built.value;
    bool up = std::any_of(snap.backends.begin(), snap.backends.end(),
                          [](const snapshot_backend& b) { return takes_new_flows(b.state); });
    auto a = control::decide_announcements(snap, true, false);
    REQUIRE(a.size() == 1);
    CHECK(a[0].vip == testing::ip("10.10.0.100"));
    CHECK(a[0].announce == up);
    CHECK(control::decide_announcements(snap, false, false)[0].why == "not live");
    CHECK(control::decide_announcements(snap, true, true)[0].why == "host drained");
    CHECK_FALSE(control::decide_announcements(snap, true, true)[0].announce);

    std::string error;
    REQUIRE(m.set_admin_state("web", "10.20.0.11:8080", control::admin_state::disabled, &error));
    auto none = m.rebuild();
    auto b = control::decide_announcements(*none.value, true, false);
    CHECK_FALSE(b[0].announce);
    CHECK(b[0].why == "no backend up");
}

TEST_CASE("liveness: every counter must move within the detection time") {
    control::liveness l;
    auto t = std::chrono::steady_clock::time_point{} + 10s;
    l.observe({1, 1}, t);
    CHECK(l.live(t + 500ms, 1s));
    l.observe({2, 1}, t + 900ms); // the worker did not move
    CHECK(l.live(t + 900ms, 1s));
    CHECK_FALSE(l.live(t + 1100ms, 1s));
    CHECK(l.stuck(t + 1100ms, 1s) == "worker 0");
    CHECK(l.oldest() == t);
    l.observe({3, 2}, t + 1200ms);
    CHECK(l.live(t + 1200ms, 1s));
}

TEST_CASE("BIRD configuration: one static protocol per VIP, enabled as it is announced; one "
          "session per peer") {
    config::bgp_config bgp;
    bgp.enabled = true;
    bgp.local_as = 65001;
    bgp.router_id = testing::ip("10.30.0.2");
    bgp.next_hop = testing::ip("10.30.0.2");
    bgp.peers = {{testing::ip("10.30.0.1"), 65000}, {testing::ip("10.30.0.9"), 65000}};
    std::string text =
        control::render_bird_config(bgp,
                                    {{testing::ip("10.10.0.100"), true, "announced"},
                                     {testing::ip("10.10.0.101"), false, "no backend up"}},
                                    "/run/evenflow/evenflow-bird.log");
    CHECK(control::bird_protocol(testing::ip("10.10.0.100")) == "vip_10_10_0_100");
    // What BIRD's `configure` sets each protocol to: as announced now, so that a
    // reconfigure (a VIP added) or a restart of BIRD withdraws nothing announced.
    CHECK(text.find("protocol static vip_10_10_0_100 { ipv4; route 10.10.0.100/32 "
                    "blackhole; }") != std::string::npos);
    CHECK(text.find("protocol static vip_10_10_0_101 { disabled; ipv4; route 10.10.0.101/32 "
                    "blackhole; }") != std::string::npos);
    CHECK(text.find("neighbor 10.30.0.1 as 65000;") != std::string::npos);
    CHECK(text.find("neighbor 10.30.0.9 as 65000;") != std::string::npos);
    CHECK(text.find("hold time 3; keepalive time 1;") != std::string::npos);
    CHECK(text.find("graceful restart off;") != std::string::npos);
    CHECK(text.find("strict bind yes;") != std::string::npos);
    CHECK(text.find("log \"/run/evenflow/evenflow-bird.log\" 4000000 "
                    "\"/run/evenflow/evenflow-bird.log.old\" all;") != std::string::npos);
    CHECK(text.find("bfd") == std::string::npos);
}

TEST_CASE("fingerprint: hosts with different pick seeds differ, and the seed is not in it") {
    const std::string seed = "5be1c0ffee00d15ea5e0123456789abc";
    auto with_seed = [&](const std::string& s) {
        std::string text = testing::basic_config_text("", b1 + b2);
        text.replace(text.find("flow_capacity = 65536"), 21,
                     "flow_capacity = 65536\nhash_seed = \"" + s + "\"");
        return testing::load_or_fail(text);
    };
    auto fp = [](const config::config& cfg, const net::hash_seed& fallback) {
        control::config_manager m;
        m.set_fallback_seed(fallback);
        REQUIRE(m.start(cfg, {}, "start").ok);
        return control::fingerprint(m.running(), m);
    };
    const net::hash_seed generated_a = *net::hash_seed::parse("0000000000000000000000000000000a");
    const net::hash_seed generated_b = *net::hash_seed::parse("0000000000000000000000000000000b");
    auto unset = testing::load_or_fail(testing::basic_config_text("", b1 + b2));
    // Unset: each host's generated seed decides, so two hosts differ.
    CHECK(fp(unset, generated_a) != fp(unset, generated_b));
    CHECK(fp(unset, generated_a) == fp(unset, generated_a));
    // Set in the config: the generated one no longer matters; another seed differs.
    CHECK(fp(with_seed(seed), generated_a) == fp(with_seed(seed), generated_b));
    CHECK(fp(with_seed(seed), generated_a) !=
          fp(with_seed("5be1c0ffee00d15ea5e0123456789abd"), generated_a));
    // The config set to what a host generated picks like that host.
    CHECK(fp(with_seed("0000000000000000000000000000000a"), generated_b) == fp(unset, generated_a));
    CHECK(fp(with_seed(seed), generated_a).find("c0ffee") == std::string::npos);
}
