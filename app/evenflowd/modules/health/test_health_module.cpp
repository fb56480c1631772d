// The health module in-process, on a real worker (the dataplane tier's ring_rig): its
// probes leave through the slow path and the worker, the test plays the backends (two
// answer, one does not and later comes back), replies come back through the worker's
// match and the control ring, and the verdicts reach the workers through the real
// change pipeline. Status, stats and /metrics come from the same module.
#include "modules/health/health_module.hpp"

#include "dataplane/connections.hpp"
#include "dataplane/module_context.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <set>
#include <thread>

using namespace evenflow;
using namespace evenflow::testing;
using evenflow::daemon::health_module;

namespace {

// basic_config_text's pool, probed every 100 ms: up after 2 answers, down after 3
// probes unanswered.
std::string health_text() {
    std::string text = basic_config_text();
    const std::string from = "health = { kind = \"tcp\", interval = \"1s\", timeout = \"500ms\"";
    const size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(),
                 "health = { kind = \"tcp\", interval = \"100ms\", timeout = \"50ms\"");
    return text;
}

struct health_rig {
    health_rig() {
        rig.become_reader();
        std::string error;
        REQUIRE(health.start(&error));
        health.on_publish(*rig.shared.snap.load(), {}); // as after the first publication
    }
    ~health_rig() { rig.shared.probes = nullptr; }

    // One control-loop iteration as evenflowd runs it: the module's tick (probes due,
    // verdicts to the pipeline), the worker sending what the slow path injected, the
    // backends in `answering` answering their probes with a SYN-ACK, the worker passing
    // the replies on, the slow path draining them, the pipeline publishing. Returns
    // the probes seen on the wire (their destinations).
    std::vector<std::string> iterate(const std::set<std::string>& answering) {
        health.tick(std::chrono::steady_clock::now());
        rig.poll();
        std::vector<std::string> probed;
        for (const bytes& frame : rig.received(backend_side)) {
            if (frame.size() < 54 || frame[14 + 20 + 13] != tcp_flags::syn) {
                continue; // the RST that closes an answered probe
            }
            const std::string backend = ipv4_text(get32(frame, 30));
            probed.push_back(backend);
            if (answering.count(backend) == 0) {
                continue;
            }
            const int last = int(frame[33]);
            rig.send(backend_side,
                     packet_builder()
                         .eth(backend_mac(last), rig.lb_mac(backend_side))
                         .ipv4(backend, "10.20.0.1")
                         .tcp(get16(frame, 36), get16(frame, 34), tcp_flags::syn | tcp_flags::ack,
                              9000, get32(frame, 38) + 1)
                         .build());
        }
        rig.poll();
        rig.as_control([&] { return slow.drain(); });
        const size_t before = rig.changes.publications();
        rig.changes.settle();
        if (rig.changes.publications() != before) {
            health.on_publish(*rig.shared.snap.load(), rig.changes.published().back());
        }
        return probed;
    }

    // Iterates every 20 ms until `done` or 5 s.
    template <typename Done>
    bool iterate_until(const std::set<std::string>& answering, Done done) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            iterate(answering);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return true;
    }

    backend_state state_of(const std::string& key) {
        return backend_by_key(*rig.shared.snap.load(), key).state;
    }

    ring_rig rig{health_text()};
    dataplane::slow_path slow{rig.shared, test_pool(), rig.worker->inject_ring()};
    rig_module_context context{rig, &slow};
    health_module health{context.ctx};
};

} // namespace

TEST_CASE("health module: probes through the worker, verdicts through the pipeline, a backend "
          "down and back") {
    health_rig r;
    const std::string b11 = "10.20.0.11:8080", b12 = "10.20.0.12:8080", b13 = "10.20.0.13:8080";
    std::set<std::string> answering = {"10.20.0.11", "10.20.0.12"};

    // Every backend is probed; .11 and .12 answer and come up, .13 goes down after its
    // three unanswered probes, in publications of the pipeline.
    std::set<std::string> probed;
    REQUIRE(r.iterate_until(answering, [&] {
        return r.state_of(b11) == backend_state::up && r.state_of(b12) == backend_state::up &&
               r.state_of(b13) == backend_state::down;
    }));
    for (int i = 0; i < 3; ++i) {
        for (const std::string& p : r.iterate(answering)) {
            probed.insert(p);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(probed == std::set<std::string>{"10.20.0.11", "10.20.0.12", "10.20.0.13"});
    // Down: out of the Maglev table, .11 and .12 share it.
    const snapshot& snap = *r.rig.shared.snap.load();
    CHECK(backend_by_key(snap, b13).slots == 0);
    CHECK(backend_by_key(snap, b11).predicted_share == Approx(0.5).margin(0.01));
    CHECK(backend_by_key(snap, b12).predicted_share == Approx(0.5).margin(0.01));
    CHECK(r.rig.changes.manager().version() == 1); // states, not a config version

    // Status, stats and /metrics: three targets, probes sent, nothing forged.
    api::json status = api::json::object(), stats = api::json::object();
    r.health.status(status);
    r.health.stats(stats);
    CHECK(status["health"]["targets"] == 3);
    CHECK(status["health"]["probes_sent"].get<uint64_t>() >= 7);
    CHECK(stats["health"]["forged_replies"] == 0);
    daemon::exposition out;
    r.health.collect_metrics(out);
    CHECK(out.take().find("evenflow_health_forged_replies_total 0\n") != std::string::npos);

    // .13 answers again: up after two answers, back in the table.
    answering.insert("10.20.0.13");
    REQUIRE(r.iterate_until(answering, [&] { return r.state_of(b13) == backend_state::up; }));
    CHECK(backend_by_key(*r.rig.shared.snap.load(), b13).predicted_share ==
          Approx(0.5).margin(0.01)); // weight 2 of 4
}
