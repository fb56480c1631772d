// The control plane's pure logic: versions, history and rollback, operator and
// health states (config manager), and the skew detector's statistics.
#include "config/settings.hpp"
#include "control/guard.hpp"
#include "control/health.hpp"
#include "control/manager.hpp"
#include "control/skew.hpp"
#include "support/changes.hpp"
#include "support/configs.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <map>
#include <random>
#include <set>

using namespace evenflow;
using evenflow::testing::backend_by_key;
using evenflow::testing::basic_config_text;
using evenflow::testing::ip;
using evenflow::testing::load_or_fail;
using evenflow::testing::pipeline_driver;

// ---- config manager ----

TEST_CASE("manager: versions grow with every apply and rollback") {
    pipeline_driver d;
    control::actor who{1000, 42, "socket"};
    config::config v1 = load_or_fail(basic_config_text());
    auto r1 = d.start(v1);
    REQUIRE(r1.ok);
    CHECK(r1.version == 1);
    CHECK(d.manager().version() == 1);

    config::config v2 = load_or_fail(
        basic_config_text("  { address = \"10.20.0.14\", port = 8080, weight = 1 },\n"));
    auto r2 = d.apply(v2, false, who);
    REQUIRE(r2.ok());
    CHECK(r2.changed());
    CHECK(r2.version() == 2);
    CHECK(r2.publications == 1);
    CHECK(d.running()->version == 2);
    CHECK(d.running()->backends.size() == 4);
    REQUIRE(r2.reply["diff"].size() == 1);
    CHECK(r2.reply["diff"][0].get<std::string>().find("10.20.0.14:8080") != std::string::npos);

    // The same config again: nothing to do, no new version.
    auto same = d.apply(v2, false, who);
    CHECK(same.ok());
    CHECK_FALSE(same.changed());
    CHECK(same.publications == 0);
    CHECK(d.manager().version() == 2);

    auto back = d.rollback(std::nullopt, who);
    REQUIRE(back.ok());
    CHECK(back.version() == 3);
    CHECK(d.running()->backends.size() == 3);
    CHECK(d.manager().history().back().origin == "rollback to 1");
    CHECK(d.manager().history().back().rollback_of == 1);
    CHECK(d.manager().history().back().who.uid == 1000);
    CHECK(d.manager().history().back().who.pid == 42);

    auto to_two = d.rollback(2, who);
    REQUIRE(to_two.ok());
    CHECK(to_two.version() == 4);
    CHECK(d.running()->backends.size() == 4);

    auto missing = d.rollback(99, who);
    CHECK_FALSE(missing.ok());
    CHECK(missing.error() == "version 99 is not kept (kept: 1..4); see evenctl history");
    CHECK(missing.publications == 0);
    CHECK(d.manager().version() == 4);
    CHECK(d.pipeline.counters().applies == 1);
    CHECK(d.pipeline.counters().rollbacks.at("operator") == 2);
}

TEST_CASE("manager: backend ids come back once nothing refers to them") {
    using clock = std::chrono::steady_clock;
    pipeline_driver d({}, {}, "", 4); // four versions kept
    control::config_manager& m = d.manager();
    auto config_with = [](int round) {
        std::string backends;
        for (int b = 0; b < 100; ++b) {
            backends += fmt::format("  {{ address = \"10.20.{}.{}\", port = 8080 }},\n",
                                    round % 250, b + 1);
        }
        std::string text = basic_config_text("", backends);
        text.replace(text.find("10.20.0.1/24"), 12, "10.20.0.1/16");
        return load_or_fail(text);
    };
    REQUIRE(d.start(config_with(0)).ok);
    uint32_t first_id = m.registry().find("web", ip("10.20.0.1"), 8080);
    REQUIRE(first_id != 0);
    auto t = clock::now();
    std::set<uint32_t> live_flow_ids = {first_id}; // a flow still pinned to round 0's first
    size_t freed = 0;
    // 800 rounds of 100 fresh backends: 80,000 ids without reuse, more than there are.
    for (int round = 1; round <= 800; ++round) {
        t += std::chrono::minutes(2);
        freed += m.reclaim_ids(t, std::chrono::minutes(1),
                               [&](uint32_t id) { return live_flow_ids.count(id) != 0; });
        auto r = d.apply(config_with(round), true);
        INFO("round " << round << ": " << r.error());
        REQUIRE(r.ok());
        REQUIRE(r.publications == 1);
    }
    CHECK(freed > 70'000);
    CHECK(m.registry().assigned() < 1'000);
    // The id a live flow holds was never given away; the kept versions' ids are theirs.
    CHECK(m.registry().find("web", ip("10.20.0.1"), 8080) == first_id);
    // Once its flow is gone, the last of round 0 goes too, with the one version that
    // fell out of the kept four since; the running config's backends stay.
    CHECK(m.reclaim_ids(t, std::chrono::minutes(1), [](uint32_t) { return false; }) == 101);
    CHECK(m.registry().find("web", ip("10.20.0.1"), 8080) == 0);
    CHECK(m.registry().find("web", ip(fmt::format("10.20.{}.1", 800 % 250).c_str()), 8080) != 0);
}

TEST_CASE("manager: what only a restart can change is refused") {
    pipeline_driver d;
    config::config v1 = load_or_fail(basic_config_text());
    REQUIRE(d.start(v1).ok);
    config::config moved = v1;
    moved.interfaces[1].address = *net::ip_prefix::parse("10.30.0.1/24");
    moved.dataplane.workers = {1, 2};
    auto r = d.apply(moved);
    CHECK_FALSE(r.ok());
    CHECK(r.error() == "dataplane.workers, interfaces cannot change while evenflowd runs: restart "
                       "it to change these");
    CHECK(r.publications == 0);
    CHECK(d.manager().version() == 1);
    CHECK(d.pipeline.counters().refused.at("restart") == 1);
}

TEST_CASE("manager: a service's forwarding mode changes only with a restart") {
    config::config v1 = load_or_fail(basic_config_text());
    config::config next = v1;
    next.services[0].mode = config::forward_mode::tunnel;
    CHECK(config::restart_required(v1, next) ==
          "services web mode cannot change while evenflowd runs: restart it to change this");
    next.services[0].name = "web-dsr"; // a new service beside: fine
    CHECK(config::restart_required(v1, next).empty());
}

TEST_CASE("manager: the pick hash's seed changes only with a restart, on every host at once") {
    config::config v1 = load_or_fail(basic_config_text());
    config::config next = v1;
    next.dataplane.hash_seed = *net::hash_seed::parse("5be1c0ffee00d15ea5e0123456789abc");
    CHECK(config::restart_required(v1, next) ==
          "dataplane.hash_seed cannot change while evenflowd runs: restart it to change this");
    CHECK(config::restart_required(next, next).empty());
}

TEST_CASE("manager: operator states and health verdicts survive applies") {
    pipeline_driver d;
    REQUIRE(d.start(load_or_fail(basic_config_text())).ok);

    auto drained = d.set_admin("web", "10.20.0.11:8080", control::admin_state::draining);
    REQUIRE(drained.ok());
    CHECK(drained.publications == 1);
    CHECK(backend_by_key(*d.running(), "10.20.0.11:8080").state == backend_state::draining);
    CHECK(backend_by_key(*d.running(), "10.20.0.11:8080").slots == 0);

    auto bad = d.set_admin("web", "10.20.0.99:8080", control::admin_state::disabled);
    CHECK_FALSE(bad.ok());
    CHECK(bad.error() == "service web has no backend 10.20.0.99:8080; see evenctl backends web");
    auto bad_service = d.set_admin("api", "10.20.0.11:8080", control::admin_state::disabled);
    CHECK(bad_service.error() == "no service named api; see evenctl services");
    CHECK(bad_service.publications == 0);

    uint32_t id12 = d.manager().registry().id_for("web", ip("10.20.0.12"), 8080);
    CHECK(d.set_health(id12, control::health_verdict::down) == 1);
    CHECK(backend_by_key(*d.running(), "10.20.0.12:8080").state == backend_state::down);
    // Same verdict again: no rebuild.
    CHECK(d.set_health(id12, control::health_verdict::down) == 0);

    auto applied = d.apply(load_or_fail(
        basic_config_text("  { address = \"10.20.0.14\", port = 8080, weight = 1 },\n")));
    REQUIRE(applied.ok());
    CHECK(backend_by_key(*d.running(), "10.20.0.11:8080").state == backend_state::draining);
    CHECK(backend_by_key(*d.running(), "10.20.0.12:8080").state == backend_state::down);
    CHECK(backend_by_key(*d.running(), "10.20.0.14:8080").state == backend_state::unknown);

    auto enabled = d.set_admin("web", "10.20.0.11:8080", control::admin_state::enabled);
    REQUIRE(enabled.ok());
    CHECK(backend_by_key(*d.running(), "10.20.0.11:8080").state == backend_state::unknown);
}

// ---- skew detector ----

namespace {

// Backend i of service "web" (10.20.0.11+i:8080, id i+1), before any traffic.
control::backend_sample web_backend(size_t i, double expected_share) {
    control::backend_sample s;
    s.id = uint32_t(i + 1);
    s.service = "web";
    s.backend = "10.20.0." + std::to_string(11 + i) + ":8080";
    s.expected_share = expected_share;
    return s;
}

struct simulated_service {
    std::vector<double> expected;
    std::vector<uint64_t> cumulative;
    std::vector<uint64_t> bytes = std::vector<uint64_t>(expected.size());
    std::vector<uint64_t> packets = std::vector<uint64_t>(expected.size());
    std::vector<control::backend_sample> samples() const {
        std::vector<control::backend_sample> out;
        for (size_t i = 0; i < expected.size(); ++i) {
            control::backend_sample s = web_backend(i, expected[i]);
            s.new_flows = cumulative[i];
            s.bytes = bytes[i];
            s.packets = packets[i];
            out.push_back(s);
        }
        return out;
    }
    // `flows` new flows drawn with probabilities `actual`; each carries an
    // exponentially distributed size (mean `mean_bytes`, times `size_factor` of its
    // backend when given), in 1,448-byte packets.
    void add(std::mt19937_64& rng, const std::vector<double>& actual, int flows,
             double mean_bytes = 20'000, const std::vector<double>& size_factor = {}) {
        std::discrete_distribution<size_t> pick(actual.begin(), actual.end());
        std::exponential_distribution<double> size(1.0 / mean_bytes);
        for (int i = 0; i < flows; ++i) {
            size_t b = pick(rng);
            ++cumulative[b];
            double n = size(rng) * (size_factor.empty() ? 1.0 : size_factor[b]);
            bytes[b] += uint64_t(n);
            packets[b] += 1 + uint64_t(n / 1448);
        }
    }
};

} // namespace

TEST_CASE("skew: fair traffic raises no alarm over 10,000 windows") {
    config::skew_config cfg;
    cfg.window = std::chrono::seconds(1);
    control::skew_detector d(cfg);
    std::mt19937_64 rng(1);
    simulated_service svc{{0.25, 0.25, 0.5}, {0, 0, 0}};
    auto t = std::chrono::steady_clock::time_point{};
    size_t raised = 0;
    for (int window = 0; window < 10000; ++window) {
        svc.add(rng, svc.expected, 1000);
        t += std::chrono::seconds(1);
        for (const auto& e : d.tick(t, {}, svc.samples())) {
            raised += e.raised ? 1 : 0;
        }
    }
    CHECK(raised == 0);
}

TEST_CASE("skew: equal flows, one backend serving the large downloads: a bytes alarm, not a "
          "rollback cause") {
    config::skew_config cfg;
    cfg.window = std::chrono::seconds(5);
    cfg.min_flows = 200;
    cfg.min_bytes = 10'000'000;
    control::skew_detector d(cfg);
    std::mt19937_64 rng(5);
    simulated_service svc{{0.25, 0.25, 0.25, 0.25}, {0, 0, 0, 0}};
    auto t = std::chrono::steady_clock::time_point{};
    d.tick(t, {}, svc.samples());
    // 400 new flows/s spread fairly; backend 2's flows are 20x larger.
    int seconds = 0;
    while (seconds < 10 && !d.alarms().count(2)) {
        svc.add(rng, svc.expected, 400, 20'000, {1, 20, 1, 1});
        t += std::chrono::seconds(1);
        d.tick(t, {}, svc.samples());
        ++seconds;
    }
    REQUIRE(d.alarms().count(2));
    const control::skew_alarm& a = d.alarms().at(2);
    CHECK(a.basis == control::skew_basis::bytes); // flows are fair: bytes come first
    CHECK(a.kind == control::skew_kind::hot);
    CHECK(a.observed_share > 0.8);
    CHECK_FALSE(control::causes_rollback(a));
    control::skew_alarm on_flows = a;
    on_flows.basis = control::skew_basis::new_flows;
    CHECK(control::causes_rollback(on_flows));
    on_flows.kind = control::skew_kind::heavy_hitter;
    CHECK_FALSE(control::causes_rollback(on_flows));
    CHECK(d.view(2).bytes_share > 0.8);
    // The others carry 1/23 of the bytes each, under half their share, but only as a
    // consequence: bytes and packets raise hot alarms only, one per cause.
    CHECK(d.alarms().size() == 1);
}

TEST_CASE("skew: bytes need their minimum volume and enough flows behind them") {
    config::skew_config cfg;
    cfg.window = std::chrono::seconds(5);
    cfg.min_flows = 200;
    cfg.min_bytes = 4'000'000'000; // more than the window carries (about 230 MB)
    control::skew_detector d(cfg);
    std::mt19937_64 rng(6);
    simulated_service svc{{0.25, 0.25, 0.25, 0.25}, {0, 0, 0, 0}};
    auto t = std::chrono::steady_clock::time_point{};
    for (int s = 0; s < 10; ++s) {
        svc.add(rng, svc.expected, 400, 20'000, {1, 20, 1, 1});
        t += std::chrono::seconds(1);
        d.tick(t, {}, svc.samples());
    }
    // No verdict on bytes; packets have their own minimum (10 x min_flows), which this
    // traffic passes, so the same backend is flagged on that basis instead.
    REQUIRE(d.alarms().count(2));
    CHECK(d.alarms().at(2).basis == control::skew_basis::packets);
    CHECK(d.alarms().size() == 1);
    // Enough bytes, but a handful of flows: no verdict either.
    cfg.min_bytes = 1'000;
    control::skew_detector few(cfg);
    simulated_service small{{0.25, 0.25, 0.25, 0.25}, {0, 0, 0, 0}};
    t = {};
    for (int s = 0; s < 10; ++s) {
        small.add(rng, small.expected, 10, 2'000'000, {1, 20, 1, 1});
        t += std::chrono::seconds(1);
        few.tick(t, {}, small.samples());
    }
    CHECK(few.alarms().empty());
}

TEST_CASE("skew: fair flows of random sizes raise no bytes or packets alarm over 2,000 windows") {
    config::skew_config cfg;
    cfg.window = std::chrono::seconds(1);
    cfg.min_flows = 200;
    cfg.min_bytes = 1'000'000;
    control::skew_detector d(cfg);
    std::mt19937_64 rng(7);
    simulated_service svc{{0.25, 0.25, 0.5}, {0, 0, 0}};
    auto t = std::chrono::steady_clock::time_point{};
    size_t raised = 0;
    for (int window = 0; window < 2000; ++window) {
        svc.add(rng, svc.expected, 500);
        t += std::chrono::seconds(1);
        for (const auto& e : d.tick(t, {}, svc.samples())) {
            raised += e.raised ? 1 : 0;
        }
    }
    CHECK(raised == 0);
}

TEST_CASE("skew: a 2x hot backend and a starved one are flagged within two windows") {
    config::skew_config cfg;
    cfg.window = std::chrono::seconds(10);
    cfg.threshold = 2.0;
    cfg.min_flows = 500;
    control::skew_detector d(cfg);
    std::mt19937_64 rng(2);
    // Four equal backends; 1,000 new flows/s; backend 1 gets twice its share (50%).
    simulated_service svc{{0.25, 0.25, 0.25, 0.25}, {0, 0, 0, 0}};
    auto t = std::chrono::steady_clock::time_point{};
    d.tick(t, {}, svc.samples());
    int ticks_to_hot = -1;
    int ticks_to_starved = -1;
    for (int s = 1; s <= 20 && (ticks_to_hot < 0 || ticks_to_starved < 0); ++s) {
        svc.add(rng, {0.5, 0.4, 0.1 - 0.08, 0.08}, 1000);
        t += std::chrono::seconds(1);
        d.tick(t, {}, svc.samples());
        if (ticks_to_hot < 0 && d.alarms().count(1) &&
            d.alarms().at(1).kind == control::skew_kind::hot) {
            ticks_to_hot = s;
        }
        if (ticks_to_starved < 0 && d.alarms().count(3) &&
            d.alarms().at(3).kind == control::skew_kind::starved) {
            ticks_to_starved = s;
        }
    }
    INFO("hot after " << ticks_to_hot << " s, starved after " << ticks_to_starved << " s");
    REQUIRE(ticks_to_hot > 0);
    REQUIRE(ticks_to_starved > 0);
    CHECK(ticks_to_hot <= 20); // two 10 s windows
    CHECK(ticks_to_starved <= 20);

    // Traffic turns fair again: the alarm clears once the window has moved on and the
    // calm has lasted (hysteresis), not on the first fair second.
    int cleared_after = -1;
    for (int s = 1; s <= 30; ++s) {
        svc.add(rng, svc.expected, 1000);
        t += std::chrono::seconds(1);
        d.tick(t, {}, svc.samples());
        if (!d.alarms().count(1)) {
            cleared_after = s;
            break;
        }
    }
    CHECK(cleared_after >= control::skew_detector::clear_after_ticks);
}

TEST_CASE("skew: no verdict below min_flows") {
    config::skew_config cfg;
    cfg.min_flows = 500;
    control::skew_detector d(cfg);
    simulated_service svc{{0.5, 0.5}, {0, 0}};
    auto t = std::chrono::steady_clock::time_point{};
    d.tick(t, {}, svc.samples());
    svc.cumulative = {499, 0}; // everything on one backend, but too few flows to judge
    t += std::chrono::seconds(1);
    d.tick(t, {}, svc.samples());
    CHECK(d.alarms().empty());
    svc.cumulative = {999, 0};
    t += std::chrono::seconds(1);
    d.tick(t, {}, svc.samples());
    CHECK(d.alarms().size() == 2); // one hot, one starved
}

// ---- health checker ----

namespace {

std::unique_ptr<snapshot> health_snapshot(backend_registry& registry, const std::string& health) {
    std::string text = basic_config_text();
    auto pos = text.find("health = {");
    text.replace(pos, text.find('\n', pos) - pos, health);
    return build_snapshot(load_or_fail(text), registry, {}, 1).value;
}

} // namespace

TEST_CASE("health: rise and fall turn probe results into verdicts") {
    using clock = control::health_checker::clock;
    using kind = control::health_checker::reply_kind;
    backend_registry registry;
    auto snap = health_snapshot(registry, "health = { kind = \"tcp\", interval = \"1s\", timeout = "
                                          "\"500ms\", rise = 2, fall = 3 }");
    control::health_checker h;
    clock::time_point t{};
    h.sync(*snap, t);
    CHECK(h.targets() == 3);
    uint32_t id11 = registry.id_for("web", ip("10.20.0.11"), 8080);

    auto probe_for = [&](uint32_t id) -> std::optional<control::health_checker::probe> {
        for (const auto& p : h.due(t)) {
            if (p.backend_id == id) {
                return p;
            }
        }
        return std::nullopt;
    };
    // First success: unknown -> up.
    t += std::chrono::seconds(1);
    auto p = probe_for(id11);
    REQUIRE(p);
    CHECK(p->port == 8080);
    CHECK(p->src_port >= control::health_checker::first_probe_port);
    // A reply from the wrong port answers nothing.
    CHECK_FALSE(h.on_reply(ip("10.20.0.11"), 9999, p->src_port, kind::syn_ack, p->seq + 1, t));
    CHECK(h.on_reply(ip("10.20.0.11"), 8080, p->src_port, kind::syn_ack, p->seq + 1, t));
    auto changes = h.take_transitions(t);
    REQUIRE(changes.size() >= 1);
    CHECK(changes[0].backend == "10.20.0.11:8080");
    CHECK(changes[0].to == control::health_verdict::up);

    // Three failures in a row (two RSTs, one timeout): down.
    for (int i = 0; i < 3; ++i) {
        t += std::chrono::seconds(1);
        auto q = probe_for(id11);
        REQUIRE(q);
        if (i < 2) {
            CHECK(h.on_reply(ip("10.20.0.11"), 8080, q->src_port, kind::rst, q->seq + 1, t));
            for (const auto& c : h.take_transitions(t)) {
                CHECK(c.backend != "10.20.0.11:8080");
            }
        } else {
            t += std::chrono::milliseconds(600);
            bool went_down = false;
            for (const auto& c : h.take_transitions(t)) {
                if (c.backend == "10.20.0.11:8080") {
                    went_down = c.to == control::health_verdict::down && c.reason == "timeout";
                }
            }
            CHECK(went_down);
        }
    }
    // Back up only after `rise` (2) successes.
    for (int i = 0; i < 2; ++i) {
        t += std::chrono::seconds(1);
        auto q = probe_for(id11);
        REQUIRE(q);
        CHECK(h.on_reply(ip("10.20.0.11"), 8080, q->src_port, kind::syn_ack, q->seq + 1, t));
        bool up = false;
        for (const auto& c : h.take_transitions(t)) {
            up |= c.backend == "10.20.0.11:8080" && c.to == control::health_verdict::up;
        }
        CHECK(up == (i == 1));
    }
}

TEST_CASE("health: a health port overrides the backend port; kind none is not probed") {
    backend_registry registry;
    auto custom = health_snapshot(registry, "health = { kind = \"tcp\", port = 9100 }");
    control::health_checker h;
    h.sync(*custom, {});
    auto probes = h.due(control::health_checker::clock::time_point{} + std::chrono::seconds(2));
    REQUIRE(probes.size() == 3);
    for (const auto& p : probes) {
        CHECK(p.port == 9100);
    }
    auto none = health_snapshot(registry, "health = { kind = \"none\" }");
    h.sync(*none, {});
    CHECK(h.targets() == 0);
}

TEST_CASE("health: one target per endpoint, first probes spread over the interval") {
    using clock = control::health_checker::clock;
    // Two services whose pools list the same backends: each endpoint is probed once,
    // and its verdict reaches both services' backends.
    std::string text = basic_config_text();
    text += R"(
[[pools]]
name = "copy"
backends = [
  { address = "10.20.0.11", port = 8080 },
  { address = "10.20.0.12", port = 8080 },
  { address = "10.20.0.13", port = 8080 },
]

[[services]]
name = "copy"
vip = "10.10.0.101"
port = 80
pool = "copy"
)";
    backend_registry registry;
    auto snap = build_snapshot(load_or_fail(text), registry, {}, 1).value;
    control::health_checker h;
    clock::time_point t{};
    h.sync(*snap, t);
    CHECK(h.targets() == 3);
    auto probes = h.due(t + std::chrono::seconds(1));
    REQUIRE(probes.size() == 3);
    const auto& p = probes[0];
    CHECK(h.on_reply(p.address, p.port, p.src_port, control::health_checker::reply_kind::syn_ack,
                     p.seq + 1, t + std::chrono::seconds(1)));
    auto ups = h.take_transitions(t + std::chrono::seconds(1));
    REQUIRE(ups.size() == 2);
    CHECK(ups[0].service != ups[1].service);
    CHECK(ups[0].backend == ups[1].backend);
}

TEST_CASE("health: thousands of endpoints: spread, rate-limited, never out of probe ports") {
    using clock = control::health_checker::clock;
    std::string backends;
    for (int i = 0; i < 6000; ++i) {
        backends +=
            fmt::format("  {{ address = \"10.20.{}.{}\", port = 8080 }},\n", i / 250, i % 250 + 1);
    }
    std::string text = basic_config_text("", backends);
    text.replace(text.find("10.20.0.1/24"), 12, "10.20.0.1/16");
    text.replace(text.find("table_size = 65537"), 18, "table_size = 600011");
    backend_registry registry;
    auto snap = build_snapshot(load_or_fail(text), registry, {}, 1).value;
    control::health_checker h(20'000); // probes/s
    clock::time_point t{};
    h.sync(*snap, t);
    REQUIRE(h.targets() == 6000);
    // Polled every 2 ms for 1 s: every endpoint probed once (those whose first probe
    // fell on 0 ms are due again at 1,000 ms), evenly over the second (no 100 ms slice
    // holds more than twice its share), although 6,000 > the 4,000 probe ports.
    std::map<std::pair<net::ip_addr, uint16_t>, int> per_endpoint;
    std::vector<int> per_slice(10, 0);
    for (int ms = 0; ms <= 1000; ms += 2) {
        for (const auto& p : h.due(t + std::chrono::milliseconds(ms))) {
            ++per_endpoint[{p.address, p.port}];
            ++per_slice[size_t(std::min(ms, 999) / 100)];
            CHECK(p.src_port >= control::health_checker::first_probe_port);
        }
    }
    CHECK(per_endpoint.size() == 6000);
    size_t twice = 0;
    for (const auto& [e, n] : per_endpoint) {
        REQUIRE(n <= 2);
        twice += n == 2 ? 1 : 0;
    }
    CHECK(twice < 30);
    for (int n : per_slice) {
        CHECK(n < 1200);
    }
    // The rate limit: 6,000 due at once, at 20,000/s, take about 0.3 s to go out.
    control::health_checker burst(20'000);
    burst.sync(*snap, t);
    size_t first = burst.due(t + std::chrono::seconds(1)).size();
    CHECK(first <= 2000);
    CHECK(burst.probes_deferred() >= 1);
    size_t total = first;
    for (int ms = 2; ms <= 400; ms += 2) {
        total += burst.due(t + std::chrono::seconds(1) + std::chrono::milliseconds(ms)).size();
    }
    CHECK(total == 6000);
}

// Three endpoints probed every second (timeout 500 ms, rise 1, fall 1), their first
// probes just sent: where several health tests start.
struct three_probes_out {
    backend_registry registry;
    std::unique_ptr<snapshot> snap =
        health_snapshot(registry, "health = { kind = \"tcp\", interval = \"1s\", timeout = "
                                  "\"500ms\", rise = 1, fall = 1 }");
    control::health_checker h;
    control::health_checker::clock::time_point t{};
    std::vector<control::health_checker::probe> probes;
    three_probes_out() {
        h.sync(*snap, t);
        t += std::chrono::seconds(1);
        probes = h.due(t);
        REQUIRE(probes.size() == 3);
    }
};

TEST_CASE("health: forged replies over the whole probe port range change nothing") {
    using kind = control::health_checker::reply_kind;
    three_probes_out three;
    auto& h = three.h;
    auto& t = three.t;
    const auto& probes = three.probes;
    // Initial sequence numbers are not guessable: all different, not a sequence.
    CHECK(probes[0].seq != probes[1].seq);
    CHECK(probes[1].seq - probes[0].seq != probes[2].seq - probes[1].seq);
    // An attacker who knows the endpoints but not the sequence: SYN-ACKs and RSTs to
    // every probe port, with guessed acknowledgment numbers.
    uint32_t guess = 12345;
    for (const auto& p : probes) {
        for (uint32_t port = net::first_probe_port;
             port < uint32_t(net::first_probe_port) + net::probe_ports; ++port) {
            guess = guess * 1103515245u + 12345u;
            uint32_t ack = guess == p.seq + 1 ? guess + 1 : guess;
            CHECK_FALSE(h.on_reply(p.address, p.port, uint16_t(port), kind::syn_ack, ack, t));
            CHECK_FALSE(h.on_reply(p.address, p.port, uint16_t(port), kind::rst, ack, t));
        }
    }
    CHECK(h.forged_replies() == 3 * 2); // each outstanding probe's own port, both kinds
    CHECK(h.take_transitions(t).empty());
    // The real answers still count.
    for (const auto& p : probes) {
        CHECK(h.on_reply(p.address, p.port, p.src_port, kind::syn_ack, p.seq + 1, t));
    }
    CHECK(h.take_transitions(t).size() == 3);
}

TEST_CASE("health: a timeout whose reply our data plane dropped is inconclusive, alone") {
    three_probes_out three;
    auto& h = three.h;
    auto& t = three.t;
    const auto& probes = three.probes;
    CHECK(h.probes().in_flight() == 3);
    // A worker matched the first probe's SYN-ACK and had to drop it (its budget or
    // the ring was full), as the worker marks it.
    const auto& p = probes[0];
    int slot = h.probes().match(p.address, p.port, p.src_port, p.seq + 1);
    REQUIRE(slot >= 0);
    h.probes().mark_lost(p.src_port, slot, p.seq + 1);
    // Its timeout proves nothing; the other two probes' timeouts count (fall = 1).
    t += std::chrono::milliseconds(600);
    auto changes = h.take_transitions(t);
    CHECK(h.inconclusive() == 1);
    REQUIRE(changes.size() == 2);
    for (const auto& c : changes) {
        CHECK(c.to == control::health_verdict::down);
        CHECK(c.backend != fmt::format("{}:{}", p.address.to_string(), p.port));
    }
    CHECK(h.probes().in_flight() == 0);
    // Probed again, no loss: its timeout counts now.
    t += std::chrono::milliseconds(400);
    REQUIRE(h.due(t).size() == 3);
    t += std::chrono::milliseconds(600);
    changes = h.take_transitions(t);
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].backend == fmt::format("{}:{}", p.address.to_string(), p.port));
    CHECK(h.inconclusive() == 1);
}

TEST_CASE("health: probes in flight are registered for the workers, and only while in flight") {
    using kind = control::health_checker::reply_kind;
    three_probes_out three;
    auto& h = three.h;
    auto& t = three.t;
    const auto& probes = three.probes;
    for (const auto& p : probes) {
        CHECK(h.probes().match(p.address, p.port, p.src_port, p.seq + 1) >= 0);
        CHECK(h.probes().match(p.address, p.port, p.src_port, p.seq + 2) == -1);
    }
    // Answered: closed at once. Timed out: closed then.
    CHECK(h.on_reply(probes[0].address, probes[0].port, probes[0].src_port, kind::syn_ack,
                     probes[0].seq + 1, t));
    CHECK(h.probes().match(probes[0].address, probes[0].port, probes[0].src_port,
                           probes[0].seq + 1) == -1);
    CHECK(h.probes().in_flight() == 2);
    t += std::chrono::milliseconds(600);
    h.take_transitions(t);
    CHECK(h.probes().in_flight() == 0);
    // A target removed while its probe is out: closed too.
    t += std::chrono::milliseconds(400);
    REQUIRE(h.due(t).size() == 3);
    auto none = health_snapshot(three.registry, "health = { kind = \"none\" }");
    h.sync(*none, t);
    CHECK(h.probes().in_flight() == 0);
}

// ---- lint and the shift guard ----

namespace {

std::vector<std::string> lint_messages(const std::string& text) {
    config::config cfg = load_or_fail(text);
    backend_registry registry;
    auto snap = build_snapshot(cfg, registry, {}, 1).value;
    std::vector<std::string> out;
    for (const auto& d : control::lint(cfg, *snap)) {
        out.push_back(d.to_string());
    }
    return out;
}

} // namespace

TEST_CASE("lint: a fair three-backend pool has nothing to say") {
    CHECK(lint_messages(basic_config_text()).empty());
}

TEST_CASE("lint: one backend, a dominant backend, all zero, port slips, VIP off-subnet") {
    auto one = lint_messages(
        basic_config_text("", "  { address = \"10.20.0.11\", port = 8080, weight = 1 },\n"));
    REQUIRE(one.size() == 1);
    CHECK(one[0] == "test.toml: warning: pools[0]: pool web has one backend: all of its traffic "
                    "goes to one server and nothing takes over when it fails");

    auto dominant = lint_messages(
        basic_config_text("", "  { address = \"10.20.0.11\", port = 8080, weight = 1 },\n"
                              "  { address = \"10.20.0.12\", port = 8080, weight = 9 },\n"));
    REQUIRE(dominant.size() == 1);
    CHECK(dominant[0] == "test.toml: warning: pools[0].backends[1].weight: backend "
                         "10.20.0.12:8080 holds 90.0% of pool web's weight (9 of 10): more than "
                         "all the others together");

    auto zero = lint_messages(
        basic_config_text("", "  { address = \"10.20.0.11\", port = 8080, weight = 0 },\n"
                              "  { address = \"10.20.0.12\", port = 8080, weight = 0 },\n"));
    REQUIRE_FALSE(zero.empty());
    CHECK(zero[0] == "test.toml: error: pools[0]: every backend of pool web has weight 0: its "
                     "services would send no traffic anywhere");

    std::string two_pools = basic_config_text() + R"(
[[pools]]
name = "api"
backends = [ { address = "10.20.0.11", port = 9090 }, { address = "10.20.0.12", port = 9090 } ]

[[services]]
name = "api"
vip = "192.0.2.1"
port = 80
pool = "api"
)";
    auto slips = lint_messages(two_pools);
    REQUIRE(slips.size() == 3);
    CHECK(slips[0] == "test.toml: warning: pools (api): backend 10.20.0.11 is in pool web on port "
                      "8080 and in pool api on port 9090: is one of the ports a mistake?");
    CHECK(slips[2] == "test.toml: warning: services[1].vip: VIP 192.0.2.1 is on no interface's "
                      "subnet: routers must send it to the balancer by a static route");
}

TEST_CASE("lint: a table too small for even shares is flagged") {
    // Weights 1 and 100 in 211 slots: the light backend's 2.09 slots round to 2.
    std::string text =
        basic_config_text("", "  { address = \"10.20.0.11\", port = 8080, weight = 1 },\n"
                              "  { address = \"10.20.0.12\", port = 8080, weight = 100 },\n");
    text.replace(text.find("table_size = 65537"), 18, "table_size = 211");
    auto msgs = lint_messages(text);
    REQUIRE(msgs.size() == 2);
    CHECK(msgs[1] == "test.toml: warning: services[0].table_size: table_size 211 puts backend "
                     "10.20.0.11:8080 4.3% off its weight share; a larger prime table evens it "
                     "out");
}

TEST_CASE("shift guard: 90% of the weight on one backend is refused, new capacity is not") {
    backend_registry registry;
    auto before = build_snapshot(load_or_fail(basic_config_text()), registry, {}, 1).value;
    auto skewed =
        build_snapshot(load_or_fail(basic_config_text(
                           "", "  { address = \"10.20.0.11\", port = 8080, weight = 18 },\n"
                               "  { address = \"10.20.0.12\", port = 8080, weight = 1 },\n"
                               "  { address = \"10.20.0.13\", port = 8080, weight = 1 },\n")),
                       registry, {}, 2)
            .value;
    config::skew_config guard;
    auto review = control::review_shift(control::expected_distribution(*before->cfg),
                                        control::expected_distribution(*skewed->cfg), guard);
    CHECK(review.refused);
    REQUIRE(review.lines.size() == 1);
    CHECK(review.lines[0] ==
          "service web: backend 10.20.0.11:8080 expected share 25.0% -> 90.0% (x3.6, limit x2.0)");

    auto grown = build_snapshot(load_or_fail(basic_config_text(
                                    "  { address = \"10.20.0.14\", port = 8080, weight = 4 },\n")),
                                registry, {}, 3)
                     .value;
    CHECK_FALSE(control::review_shift(control::expected_distribution(*before->cfg),
                                      control::expected_distribution(*grown->cfg), guard)
                    .refused);

    auto shrunk =
        build_snapshot(load_or_fail(basic_config_text(
                           "", "  { address = \"10.20.0.11\", port = 8080, weight = 1 },\n")),
                       registry, {}, 4)
            .value;
    auto loss = control::review_shift(control::expected_distribution(*before->cfg),
                                      control::expected_distribution(*shrunk->cfg), guard);
    CHECK(loss.refused);
    CHECK(loss.lines.back() == "service web: pool weight 4 -> 1 (75% of its capacity removed, "
                               "limit 50%)");
}

TEST_CASE("skew: long-lived connections piling up on one backend raise an alarm on active flows") {
    config::skew_config cfg;
    cfg.min_flows = 500;
    control::skew_detector d(cfg);
    // New flows are perfectly fair, but one backend holds most of the live ones.
    simulated_service svc{{0.25, 0.25, 0.25, 0.25}, {0, 0, 0, 0}};
    auto t = std::chrono::steady_clock::time_point{};
    std::vector<uint64_t> active = {700, 100, 100, 100};
    for (int s = 0; s < 3; ++s) {
        for (auto& c : svc.cumulative) {
            c += 250;
        }
        auto samples = svc.samples();
        for (size_t i = 0; i < samples.size(); ++i) {
            samples[i].active_flows = active[i];
        }
        t += std::chrono::seconds(1);
        d.tick(t, {}, samples);
    }
    REQUIRE(d.alarms().count(1));
    CHECK(d.alarms().at(1).kind == control::skew_kind::hot);
    CHECK(d.alarms().at(1).basis == control::skew_basis::active_flows);
    CHECK(d.alarms().at(1).observed_share == Approx(0.7));
}

TEST_CASE("skew: hashing on the source address with few clients concentrates traffic") {
    // Real Maglev table, hash = "src_ip", three clients opening many connections: the
    // flows land on at most three backends whatever their ports, and the detector sees it.
    std::string text =
        basic_config_text("", "  { address = \"10.20.0.11\", port = 8080, weight = 1 },\n"
                              "  { address = \"10.20.0.12\", port = 8080, weight = 1 },\n"
                              "  { address = \"10.20.0.13\", port = 8080, weight = 1 },\n"
                              "  { address = \"10.20.0.14\", port = 8080, weight = 1 },\n"
                              "  { address = \"10.20.0.15\", port = 8080, weight = 1 },\n"
                              "  { address = \"10.20.0.16\", port = 8080, weight = 1 },\n") +
        "hash = \"src_ip\"\n";
    backend_registry registry;
    auto snap = build_snapshot(load_or_fail(text), registry, {}, 1).value;
    const snapshot_service& svc = snap->services[0];
    std::map<uint32_t, uint64_t> per_backend;
    const char* clients[] = {"192.0.2.1", "192.0.2.2", "192.0.2.3"};
    for (int i = 0; i < 3000; ++i) {
        net::flow_key k;
        k.src = ip(clients[i % 3]);
        k.dst = ip("10.10.0.100");
        k.src_port = uint16_t(10000 + i);
        k.dst_port = 80;
        k.proto = 6;
        ++per_backend[svc.pick(svc.flow_hash(k))];
    }
    CHECK(per_backend.size() <= 3);

    config::skew_config cfg;
    control::skew_detector d(cfg);
    std::vector<control::backend_sample> zero, now;
    for (const auto& b : snap->backends) {
        control::backend_sample s;
        s.id = b.id;
        s.service = "web";
        s.backend = b.key();
        s.expected_share = b.expected_share;
        zero.push_back(s);
        s.new_flows = per_backend[b.id];
        now.push_back(s);
    }
    auto t = std::chrono::steady_clock::time_point{};
    d.tick(t, {}, zero);
    d.tick(t + std::chrono::seconds(1), {}, now);
    size_t hot = 0, starved = 0;
    for (const auto& [id, a] : d.alarms()) {
        hot += a.kind == control::skew_kind::hot;
        starved += a.kind == control::skew_kind::starved;
    }
    CHECK(hot >= 1);
    CHECK(starved >= 3);
}

// ---- who sends it: skews a few clients explain ----

namespace {

// A service whose connections come from named clients, counted as the workers count
// them (counters and client sketches) and fed to the detector every second.
struct client_traffic {
    std::vector<double> expected;
    bool pins_clients = true; // hash = "src_ip"
    std::vector<uint64_t> verified = std::vector<uint64_t>(expected.size());
    std::vector<uint64_t> syns = std::vector<uint64_t>(expected.size());
    flow::client_sketches sketch{11};
    std::chrono::steady_clock::time_point t{};

    void connect(const net::ip_addr& client, size_t backend, bool handshake = true) {
        ++syns[backend];
        sketch.count(flow::client_event::syn, client, uint32_t(backend + 1));
        if (handshake) {
            ++verified[backend];
            sketch.count(flow::client_event::verified, client, uint32_t(backend + 1));
        }
    }
    // `n` connections from distinct clients (random addresses in 172.16/12), drawn
    // with probabilities `p`.
    void crowd(std::mt19937_64& rng, const std::vector<double>& p, int n, bool handshake = true) {
        std::discrete_distribution<size_t> pick(p.begin(), p.end());
        for (int i = 0; i < n; ++i) {
            uint32_t host = 0xac100000u + uint32_t(rng() % (1u << 20));
            connect(net::ip_addr::from_v4_be(__builtin_bswap32(host)), pick(rng), handshake);
        }
    }
    std::vector<control::skew_detector::event> tick(control::skew_detector& d) {
        t += std::chrono::seconds(1);
        sketch.request_seal();
        sketch.poll();
        const flow::client_sketches::buffer* sealed = &sketch.sealed();
        d.clients().add(t, {&sealed, 1});
        sketch.release_sealed();
        std::vector<control::backend_sample> samples;
        for (size_t i = 0; i < expected.size(); ++i) {
            control::backend_sample s = web_backend(i, expected[i]);
            s.new_flows = verified[i];
            s.syns = syns[i];
            s.pins_clients = pins_clients;
            samples.push_back(s);
        }
        return d.tick(t, {}, samples);
    }
};

config::skew_config ten_second_window() {
    config::skew_config cfg;
    cfg.window = std::chrono::seconds(10);
    cfg.threshold = 2.0;
    cfg.min_flows = 500;
    return cfg;
}

} // namespace

TEST_CASE("skew: one client's connections on one backend (src_ip, a NAT gateway) raise a "
          "heavy_hitter alarm that names it, never a rollback") {
    control::skew_detector d(ten_second_window());
    client_traffic web{{0.25, 0.25, 0.25, 0.25}};
    std::mt19937_64 rng(21);
    std::vector<control::skew_detector::event> raised;
    web.tick(d);
    for (int s = 0; s < 15; ++s) {
        web.crowd(rng, web.expected, 300);
        for (int i = 0; i < 400; ++i) {
            web.connect(ip("10.10.9.9"), 2); // all by its address's hash to 10.20.0.13
        }
        for (auto& e : web.tick(d)) {
            if (e.raised) {
                raised.push_back(e);
            }
        }
    }
    REQUIRE(d.alarms().size() == 1); // the others, starved by it, raise nothing
    REQUIRE(d.alarms().count(3));
    const control::skew_alarm& a = d.alarms().at(3);
    CHECK(a.kind == control::skew_kind::heavy_hitter);
    CHECK(a.basis == control::skew_basis::new_flows);
    REQUIRE(!a.clients.empty());
    CHECK(a.clients[0].client == "10.10.9.9");
    CHECK(a.clients[0].to_backend == a.clients[0].to_service);
    CHECK(a.observed_share > 0.6);
    for (const auto& e : raised) {
        CHECK_FALSE(control::causes_rollback(e.alarm));
    }
    std::string why = control::explain(a, d.view(3));
    INFO(why);
    CHECK(why.find("10.10.9.9 opened 5") != std::string::npos); // 400 of 700: 57%
    CHECK(why.find("100% of theirs to 10.20.0.13:8080") != std::string::npos);
    CHECK(why.find("not the config") != std::string::npos);
    // Without the client sketches the same counts are a config skew: the verdict rests
    // on knowing who sent them.
    control::skew_detector blind(ten_second_window());
    std::vector<control::backend_sample> samples;
    for (size_t i = 0; i < 4; ++i) {
        samples.push_back(web_backend(i, 0.25));
    }
    blind.tick({}, {}, samples);
    for (size_t i = 0; i < 4; ++i) {
        samples[i].new_flows = web.verified[i];
    }
    blind.tick(std::chrono::steady_clock::time_point{} + std::chrono::seconds(5), {}, samples);
    REQUIRE(blind.alarms().count(3));
    CHECK(blind.alarms().at(3).kind == control::skew_kind::hot);
}

TEST_CASE("skew: a bad config stays a config skew with a heavy client in the traffic") {
    // hash = "src_ip". The config sends 70% of the crowd to 10.20.0.11 (25% expected),
    // and one client, pinned there too, opens a third of the connections. Taking it out
    // leaves the crowd's skew: hot, and the rollback may follow.
    control::skew_detector d(ten_second_window());
    client_traffic web{{0.25, 0.25, 0.25, 0.25}};
    std::mt19937_64 rng(22);
    const std::vector<double> bad{0.7, 0.1, 0.1, 0.1};
    web.tick(d);
    bool rollback_cause = false;
    for (int s = 0; s < 12; ++s) {
        web.crowd(rng, bad, 400);
        for (int i = 0; i < 200; ++i) {
            web.connect(ip("10.10.9.9"), 0);
        }
        for (auto& e : web.tick(d)) {
            rollback_cause = rollback_cause || (e.raised && control::causes_rollback(e.alarm));
        }
    }
    REQUIRE(d.alarms().count(1));
    CHECK(d.alarms().at(1).kind == control::skew_kind::hot);
    CHECK(d.alarms().at(1).basis == control::skew_basis::new_flows);
    CHECK(rollback_cause);
}

TEST_CASE("skew: with a hash over the source port, one client sending everything proves a bad "
          "config as well as many (the replayed incident)") {
    // Three of four backends down by a bad health check: all of the single test
    // client's connections go to 10.20.0.11. Under hash = "src_ip" that would be its
    // address's backend anyway; under the 5-tuple hash its connections would have
    // spread, so it is the config's doing: hot, and the rollback may follow.
    control::skew_detector d(ten_second_window());
    client_traffic web{{0.25, 0.25, 0.25, 0.25}};
    web.pins_clients = false;
    web.tick(d);
    for (int s = 0; s < 5; ++s) {
        for (int i = 0; i < 300; ++i) {
            web.connect(ip("10.10.0.2"), 0);
        }
        web.tick(d);
    }
    REQUIRE(d.alarms().count(1));
    CHECK(d.alarms().at(1).kind == control::skew_kind::hot);
    CHECK(control::causes_rollback(d.alarms().at(1)));
    // The same under src_ip: the one client is all there is, so nothing is proven.
    control::skew_detector pinned(ten_second_window());
    client_traffic one{{0.25, 0.25, 0.25, 0.25}};
    one.tick(pinned);
    for (int s = 0; s < 5; ++s) {
        for (int i = 0; i < 300; ++i) {
            one.connect(ip("10.10.0.2"), 0);
        }
        one.tick(pinned);
    }
    REQUIRE(pinned.alarms().count(1));
    CHECK(pinned.alarms().at(1).kind == control::skew_kind::heavy_hitter);
}

TEST_CASE("skew: a heavy client cannot hide a bad config applied later: the alarm turns hot "
          "and is raised again") {
    control::skew_detector d(ten_second_window());
    client_traffic web{{0.25, 0.25, 0.25, 0.25}};
    std::mt19937_64 rng(23);
    web.tick(d);
    for (int s = 0; s < 12; ++s) {
        web.crowd(rng, web.expected, 300);
        for (int i = 0; i < 400; ++i) {
            web.connect(ip("10.10.9.9"), 2);
        }
        web.tick(d);
    }
    REQUIRE(d.alarms().count(3));
    REQUIRE(d.alarms().at(3).kind == control::skew_kind::heavy_hitter);
    // Now a config that sends 80% to 10.20.0.13, while the heavy client goes on.
    const std::vector<double> bad{0.05, 0.05, 0.85, 0.05};
    bool raised_hot = false;
    for (int s = 0; s < 12 && !raised_hot; ++s) {
        web.crowd(rng, bad, 1200);
        for (int i = 0; i < 400; ++i) {
            web.connect(ip("10.10.9.9"), 2);
        }
        for (auto& e : web.tick(d)) {
            raised_hot = raised_hot ||
                         (e.raised && e.alarm.id == 3 && e.alarm.kind == control::skew_kind::hot &&
                          control::causes_rollback(e.alarm));
        }
    }
    CHECK(raised_hot);
}

TEST_CASE("skew: spoofed SYNs from one source raise a heavy_hitter alarm on SYNs naming it; "
          "from thousands of sources, nothing") {
    control::skew_detector d(ten_second_window());
    client_traffic web{{0.25, 0.25, 0.25, 0.25}};
    std::mt19937_64 rng(24);
    web.tick(d);
    for (int s = 0; s < 3; ++s) {
        web.crowd(rng, web.expected, 20); // a little real traffic
        for (int i = 0; i < 1000; ++i) {
            web.connect(ip("198.18.9.9"), 2, false); // never completes a handshake
        }
        web.tick(d);
    }
    REQUIRE(d.alarms().size() == 1);
    REQUIRE(d.alarms().count(3));
    const control::skew_alarm& a = d.alarms().at(3);
    CHECK(a.kind == control::skew_kind::heavy_hitter);
    CHECK(a.basis == control::skew_basis::syns);
    REQUIRE(a.clients.size() == 1);
    CHECK(a.clients[0].client == "198.18.9.9");
    CHECK(a.clients[0].to_backend == 3000);
    CHECK_FALSE(control::causes_rollback(a));
    std::string why = control::explain(a, d.view(3));
    INFO(why);
    CHECK(why.find("SYNs (unverified") != std::string::npos);

    control::skew_detector spread(ten_second_window());
    client_traffic many{{0.25, 0.25, 0.25, 0.25}};
    many.tick(spread);
    for (int s = 0; s < 3; ++s) {
        many.crowd(rng, many.expected, 1000, false);
        many.tick(spread);
    }
    CHECK(spread.alarms().empty());
}

TEST_CASE("skew: many addresses of one /24 on one backend are named as their network") {
    // 40 addresses of 10.10.9.0/24 each open 10 connections a second, all to
    // 10.20.0.12: none is 10% of the excess, their network is.
    control::skew_detector d(ten_second_window());
    client_traffic web{{0.25, 0.25, 0.25, 0.25}};
    std::mt19937_64 rng(25);
    web.tick(d);
    for (int s = 0; s < 12; ++s) {
        web.crowd(rng, web.expected, 300);
        for (uint32_t host = 1; host <= 40; ++host) {
            for (int i = 0; i < 10; ++i) {
                web.connect(net::ip_addr::from_v4_be(__builtin_bswap32(0x0a0a0900u + host)), 1);
            }
        }
        web.tick(d);
    }
    REQUIRE(d.alarms().count(2));
    const control::skew_alarm& a = d.alarms().at(2);
    CHECK(a.kind == control::skew_kind::heavy_hitter);
    REQUIRE(a.clients.size() == 1);
    CHECK(a.clients[0].client == "10.10.9.0/24");
}

// ---- the series baseline: a series of applies is judged against a stable reference ----

namespace {

using sys_clock = std::chrono::system_clock;

// A synthetic history: version, minutes after t0 it started, how it came to run.
struct step {
    uint64_t version;
    int minute;
    bool accepted = false;
    uint64_t rollback_of = 0;
};

std::deque<control::history_entry> history_of(std::initializer_list<step> steps) {
    std::deque<control::history_entry> h;
    for (const step& s : steps) {
        control::history_entry e;
        e.version = s.version;
        e.at = sys_clock::time_point{} + std::chrono::minutes(s.minute);
        e.accepted_shift = s.accepted;
        e.rollback_of = s.rollback_of;
        h.push_back(std::move(e));
    }
    return h;
}

uint64_t baseline_at(const std::deque<control::history_entry>& h, std::chrono::seconds now,
                     std::chrono::minutes window = std::chrono::minutes(60)) {
    return control::series_baseline(h, sys_clock::time_point{} + now, window);
}

using std::chrono::minutes;
using std::chrono::seconds;

} // namespace

TEST_CASE("series baseline: the last version that ran a whole window, at its edges") {
    // v1 runs five hours; v2..v4 follow ten minutes apart.
    auto h = history_of({{1, 0}, {2, 300}, {3, 310}, {4, 320}});
    CHECK(baseline_at(h, minutes(330)) == 1);
    CHECK(baseline_at(h, minutes(380) - seconds(1)) == 1); // v4 one second short
    CHECK(baseline_at(h, minutes(380)) == 4);              // v4 has run the whole window
    // A version in the middle that ran exactly the window is the baseline after it...
    CHECK(baseline_at(history_of({{1, 0}, {2, 10}, {3, 70}, {4, 75}}), minutes(80)) == 2);
    // ...a second less and it is not: steps spaced just under the window stay one series.
    auto spaced = history_of({{1, 0}, {2, 10}});
    spaced.push_back(spaced.back());
    spaced.back().version = 3;
    spaced.back().at = sys_clock::time_point{} + minutes(70) - seconds(1);
    CHECK(baseline_at(spaced, minutes(80)) == 1);
    // The first version is the baseline until another one has run a window.
    CHECK(baseline_at(history_of({{1, 0}, {2, 1}, {3, 2}}), minutes(3)) == 1);
    // A zero window: the running version, the old one-step guard.
    CHECK(baseline_at(h, minutes(330), minutes(0)) == 4);
    CHECK(control::series_baseline({}, sys_clock::now(), minutes(60)) == 0);
}

TEST_CASE("series baseline: an accepted shift moves it, a rollback brings the old one back") {
    // v3 was applied with --accept-shift: the baseline from then on, window or not.
    auto accepted = history_of({{1, 0}, {2, 100}, {3, 105, true}, {4, 110}});
    CHECK(baseline_at(accepted, minutes(112)) == 3);
    // Rolled back to v1 inside the window: the accepted shift is undone, v1's baseline
    // (v1 itself, it ran long) is back.
    auto undone = history_of({{1, 0}, {2, 100}, {3, 105, true}, {4, 110, false, 1}});
    CHECK(baseline_at(undone, minutes(112)) == 1);
    // Rolled back to v3 (the accepted one): its baseline, v3.
    auto back_to_accepted = history_of({{1, 0}, {3, 105, true}, {4, 110}, {5, 111, false, 3}});
    CHECK(baseline_at(back_to_accepted, minutes(112)) == 3);
    // Rolled back to v2, which ran under v1's baseline: v1.
    auto to_step = history_of({{1, 0}, {2, 100}, {3, 105}, {4, 110, false, 2}});
    CHECK(baseline_at(to_step, minutes(112)) == 1);
    // A rollback that then runs a whole window is a baseline like any other version.
    CHECK(baseline_at(undone, minutes(170)) == 4);
    // The walk starts from the oldest kept entry's recorded baseline.
    auto kept = history_of({{5, 0}, {6, 10}});
    kept.front().baseline = 3;
    CHECK(baseline_at(kept, minutes(20)) == 3);
}

TEST_CASE("manager: the baseline is recorded, kept past the history cap, moved by acceptance") {
    pipeline_driver d({}, {}, "", 3); // three versions kept
    control::config_manager& m = d.manager();
    control::actor who{1000, 42, "socket"};
    auto cfg_with = [](int weight) {
        return std::make_shared<const config::config>(load_or_fail(basic_config_text(
            "", fmt::format("  {{ address = \"10.20.0.11\", port = 8080, weight = {} }},\n"
                            "  {{ address = \"10.20.0.12\", port = 8080, weight = 1 }},\n",
                            weight))));
    };
    REQUIRE(d.start(*cfg_with(1)).ok);
    for (int w = 2; w <= 6; ++w) { // five quick applies: v2..v6, all inside the window
        m.record(cfg_with(w), who, fmt::format("apply w{}", w), {});
    }
    auto now = sys_clock::now();
    REQUIRE(m.history().front().version == 4);
    auto view = m.baseline(now);
    REQUIRE(view.entry != nullptr);
    CHECK(view.entry->version == 1); // fell out of the kept three, still there
    CHECK(view.entry->cfg->pools[0].backends[0].weight == 1);
    REQUIRE(view.since.size() == 3);
    CHECK(view.since.front()->version == 4);
    CHECK(m.history().front().baseline == 1);

    m.record(cfg_with(9), who, "apply w9 --accept-shift", {}, {true, 0});
    view = m.baseline(sys_clock::now());
    CHECK(view.entry->version == 7);
    CHECK(view.entry->accepted_shift);
    CHECK(view.entry->who.uid == 1000);
    REQUIRE(view.accepted_from != nullptr);
    CHECK(view.accepted_from->version == 1); // what the shift was accepted against
    CHECK(view.since.empty());

    auto back = d.rollback(6, who); // inside the window: always allowed
    REQUIRE(back.ok());
    CHECK(m.history().back().rollback_of == 6);
    CHECK(m.baseline(sys_clock::now()).entry->version == 1); // v6 ran under v1's
}

namespace {

// Four equal backends, 10.20.0.11 at `weight`; `skew_extra` appended to [skew].
std::shared_ptr<const config::config> funnel_config(int weight, const std::string& skew = "") {
    std::string text = basic_config_text(
        "", fmt::format("  {{ address = \"10.20.0.11\", port = 8080, weight = {} }},\n"
                        "  {{ address = \"10.20.0.12\", port = 8080, weight = 1 }},\n"
                        "  {{ address = \"10.20.0.13\", port = 8080, weight = 1 }},\n"
                        "  {{ address = \"10.20.0.14\", port = 8080, weight = 1 }},\n",
                        weight));
    if (!skew.empty()) {
        text += "\n[skew]\n" + skew + "\n";
    }
    return std::make_shared<const config::config>(load_or_fail(text));
}

config::load_result loaded(const std::shared_ptr<const config::config>& cfg) {
    config::load_result r;
    r.value = *cfg;
    return r;
}

} // namespace

TEST_CASE("guard: the funnel 1 -> 2 -> 6 -> 18 is refused at the step that crosses, naming the "
          "baseline") {
    auto v1 = funnel_config(1);
    auto v2 = funnel_config(2);
    control::series none;
    // Step one (25% -> 40%): within every limit.
    CHECK(control::evaluate_apply(loaded(v2), v1, false, none).verdict ==
          control::apply_verdict::accept);
    // Step two (40% -> 66.7%): x1.7 from the running version, x2.7 from the baseline.
    control::series story;
    story.baseline_version = 1;
    story.baseline_at = sys_clock::from_time_t(19 * 3600 + 50 * 60 + 2);
    story.baseline = v1;
    story.steps = {"v2 uid 1000"};
    auto e = control::evaluate_apply(loaded(funnel_config(6)), v2, false, story);
    CHECK(e.verdict == control::apply_verdict::shift);
    REQUIRE(e.shift_lines.size() == 2);
    CHECK(e.shift_lines[0] == "service web: backend 10.20.0.11:8080 expected share 25.0% "
                              "(baseline v1, 19:50:02) -> 66.7% across 2 applies (v2 uid 1000, "
                              "candidate): x2.7, limit x2.0");
    CHECK(e.shift_lines[1] == "service web: backend 10.20.0.11:8080 expected share 25.0% "
                              "(baseline v1, 19:50:02) -> 66.7% across 2 applies (v2 uid 1000, "
                              "candidate): more than all the others together: the funnel "
                              "`evenctl check` warns about");
    // Accepted: applies, and says it needed acceptance (the history makes it the baseline).
    auto accepted = control::evaluate_apply(loaded(funnel_config(6)), v2, true, story);
    CHECK(accepted.verdict == control::apply_verdict::accept);
    CHECK(accepted.shift_accepted);
    // Against the accepted baseline, step three (66.7% -> 85.7%) is within the limits.
    control::series moved;
    moved.baseline_version = 3;
    moved.baseline = funnel_config(6);
    auto third = control::evaluate_apply(loaded(funnel_config(18)), funnel_config(6), false, moved);
    CHECK(third.verdict == control::apply_verdict::accept);
    CHECK_FALSE(third.shift_accepted);
    // An ordinary apply with --accept-shift that needed none does not move the baseline.
    CHECK_FALSE(control::evaluate_apply(loaded(v2), v1, true, none).shift_accepted);
}

TEST_CASE("guard: a new funnel is refused even in one small step; max_share is a limit") {
    // Two backends 1:1 -> 3:2: x1.2, but 60% is more than the other one.
    auto two = [](int a, int b) {
        return std::make_shared<const config::config>(load_or_fail(basic_config_text(
            "", fmt::format("  {{ address = \"10.20.0.11\", port = 8080, weight = {} }},\n"
                            "  {{ address = \"10.20.0.12\", port = 8080, weight = {} }},\n",
                            a, b))));
    };
    auto e = control::evaluate_apply(loaded(two(3, 2)), two(1, 1), false);
    CHECK(e.verdict == control::apply_verdict::shift);
    REQUIRE(e.shift_lines.size() == 1);
    CHECK(e.shift_lines[0] == "service web: backend 10.20.0.11:8080 expected share 50.0% -> 60.0% "
                              "(more than all the others together: the funnel `evenctl check` "
                              "warns about)");
    // A new backend that comes in with most of the weight is a funnel too.
    auto newcomer = control::evaluate_apply(
        loaded(std::make_shared<const config::config>(load_or_fail(
            basic_config_text("", "  { address = \"10.20.0.11\", port = 8080, weight = 1 },\n"
                                  "  { address = \"10.20.0.12\", port = 8080, weight = 1 },\n"
                                  "  { address = \"10.20.0.19\", port = 8080, weight = 5 },\n")))),
        two(1, 1), false);
    CHECK(newcomer.verdict == control::apply_verdict::shift);
    REQUIRE(newcomer.shift_lines.size() == 1);
    CHECK(newcomer.shift_lines[0] == "service web: new backend 10.20.0.19:8080 expected share "
                                     "71.4% (more than all the others together: the funnel "
                                     "`evenctl check` warns about)");
    // A funnel the running version already has (accepted before) is no new refusal.
    CHECK(control::evaluate_apply(loaded(two(4, 2)), two(3, 2), false).verdict ==
          control::apply_verdict::accept);

    // max_share 0.45 set by the running config: 25% -> 50% is within x2.0 but above it.
    auto running = funnel_config(1, "max_share = 0.45");
    auto over =
        control::evaluate_apply(loaded(funnel_config(3, "max_share = 0.45")), running, false);
    CHECK(over.verdict == control::apply_verdict::shift);
    REQUIRE(over.shift_lines.size() == 1);
    CHECK(over.shift_lines[0] == "service web: backend 10.20.0.11:8080 expected share 25.0% -> "
                                 "50.0% (above [skew] max_share 45.0% in a pool of 4)");
    // A candidate cannot loosen it by dropping it; it can tighten it.
    CHECK(control::evaluate_apply(loaded(funnel_config(3)), running, false).verdict ==
          control::apply_verdict::shift);
    CHECK(control::evaluate_apply(loaded(funnel_config(2, "max_share = 0.3")), funnel_config(1),
                                  false)
              .verdict == control::apply_verdict::shift);
    // check reports a backend above max_share as an error.
    auto msgs = lint_messages(
        basic_config_text("", "  { address = \"10.20.0.11\", port = 8080, weight = 2 },\n"
                              "  { address = \"10.20.0.12\", port = 8080, weight = 1 },\n"
                              "  { address = \"10.20.0.13\", port = 8080, weight = 1 },\n") +
        "\n[skew]\nmax_share = 0.4\n");
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0] == "test.toml: error: pools[0].backends[0].weight: backend 10.20.0.11:8080 "
                     "holds 50.0% of pool web's weight (2 of 4): above [skew] max_share 40.0%");
}

TEST_CASE("guard: the series alone refuses what each step would pass (no funnel involved)") {
    // Eight equal backends, one raised 1 -> 2 -> 4: 12.5% -> 22.2% -> 36.4%, each step
    // under x2.0 and no backend above half; from the baseline, x2.9.
    auto eight = [](int weight) {
        std::string backends =
            fmt::format("  {{ address = \"10.20.0.11\", port = 8080, weight = {} }},\n", weight);
        for (int b = 12; b <= 18; ++b) {
            backends += fmt::format("  {{ address = \"10.20.0.{}\", port = 8080 }},\n", b);
        }
        return std::make_shared<const config::config>(
            load_or_fail(basic_config_text("", backends)));
    };
    CHECK(control::evaluate_apply(loaded(eight(4)), eight(2), false).verdict ==
          control::apply_verdict::accept); // judged step by step: accepted
    control::series story;
    story.baseline_version = 4;
    story.baseline_at = sys_clock::from_time_t(3600);
    story.baseline = eight(1);
    story.steps = {"v5 uid 0", "v6 uid 1000 rollback", "v7 uid 1000"};
    auto e = control::evaluate_apply(loaded(eight(4)), eight(2), false, story);
    CHECK(e.verdict == control::apply_verdict::shift);
    REQUIRE(e.shift_lines.size() == 1);
    CHECK(e.shift_lines[0] == "service web: backend 10.20.0.11:8080 expected share 12.5% "
                              "(baseline v4, 01:00:00) -> 36.4% across 4 applies (v5 uid 0, v6 "
                              "uid 1000 rollback, v7 uid 1000, candidate): x2.9, limit x2.0");
    // A zero-length series (the baseline is running) is the one-step review.
    control::series running_is_base;
    running_is_base.baseline_version = 7;
    running_is_base.baseline = eight(2);
    CHECK(control::evaluate_apply(loaded(eight(4)), eight(2), false, running_is_base).verdict ==
          control::apply_verdict::accept);
}
