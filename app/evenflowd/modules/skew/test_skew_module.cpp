// The skew module in-process, on a real worker (the dataplane tier's ring_rig): the
// worker counts verified connections and seals its client sketches when the module
// asks; the module samples them once a second (ticks at the test's clock), raises the
// alarm, and rolls the config back through the real change pipeline, or, when one
// client explains the skew, names it and leaves the config alone. What `evenctl skew`
// answers and what /metrics shows come from the same module.
#include "modules/skew/skew_module.hpp"

#include "dataplane/connections.hpp"
#include "dataplane/module_context.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <atomic>
#include <thread>

using namespace evenflow;
using namespace evenflow::testing;
using evenflow::daemon::skew_module;

namespace {

constexpr const char* hot_backend = "10.20.0.11:8080"; // a third of the weight in version 2

// web's pool with .13 at weight `weight_13`, and a skew judgement that acts on a few
// dozen connections: min_flows 20, a rollback in probation. `hash`: how web picks.
std::string skew_text(int weight_13, const std::string& hash = "5tuple") {
    std::string text = basic_config_text(
        "", fmt::format("  {{ address = \"10.20.0.11\", port = 8080, weight = 1 }},\n"
                        "  {{ address = \"10.20.0.12\", port = 8080, weight = 1 }},\n"
                        "  {{ address = \"10.20.0.13\", port = 8080, weight = {} }},\n",
                        weight_13));
    const std::string pool_line = "pool = \"web\"\n";
    text.replace(text.find(pool_line), pool_line.size(), pool_line + "hash = \"" + hash + "\"\n");
    return text + "\n[skew]\nwindow = \"10s\"\nmin_flows = 20\naction = \"rollback\"\n"
                  "probation = \"60s\"\n";
}

// The module as evenflowd runs it, on the rig's worker, pipeline and snapshots.
struct skew_rig {
    explicit skew_rig(const std::string& hash = "5tuple") : rig(skew_text(2, hash)) {
        rig.become_reader();
        std::string error;
        REQUIRE(skew.start(&error));
        // Version 2 (.13's weight 2 -> 1) is in probation: a skew now rolls it back.
        REQUIRE(rig.changes.apply(rig.load(skew_text(1, hash))).version() == 2);
    }

    // One tick of the control loop `seconds` after the start, while the worker polls on
    // a thread of its own as its lcore would (the module asks for a seal of its client
    // sketches and waits for it).
    void tick(int seconds) {
        std::atomic<bool> done{false};
        std::thread lcore([&] {
            while (!done.load()) {
                rig.poll();
                std::this_thread::sleep_for(std::chrono::microseconds(50));
            }
        });
        skew.tick(started + std::chrono::seconds(seconds));
        done.store(true);
        lcore.join();
        rig.changes.settle(); // a rollback the tick asked for
    }

    api::json alarms() {
        auto answer = skew.handle(api::command::skew, api::json::object(), {});
        REQUIRE(answer.has_value());
        REQUIRE(answer->value("ok", false));
        return (*answer)["alarms"];
    }

    std::string metrics() {
        daemon::exposition out;
        skew.collect_metrics(out);
        return out.take();
    }

    ring_rig rig;
    rig_module_context context{rig};
    skew_module skew{context.ctx};
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

} // namespace

TEST_CASE("skew module: many clients' verified connections on one backend roll the config back") {
    skew_rig r;
    // 40 clients, each on a /24 of its own (no client or network explains the skew),
    // whose connection version 2 sends to .11: 100% of the window, a third expected.
    int opened = 0;
    for (int n = 0; n < 1000 && opened < 40; ++n) {
        std::string client = fmt::format("198.18.{}.{}", n % 250, 1 + n / 250);
        if (chosen_backend(r.rig, client, 40000).key() != hot_backend) {
            continue;
        }
        open_connections(r.rig, client, 40000, 1);
        ++opened;
    }
    REQUIRE(opened == 40);
    CHECK(r.rig.worker->stats()
              .backends[backend_by_key(*r.rig.shared.snap.load(), hot_backend).id]
              .new_flows.get() == 40);

    for (int second = 1; second <= 3 && r.rig.changes.manager().version() == 2; ++second) {
        r.tick(second);
    }
    // Rolled back: version 3 is version 1's config, published as an automatic rollback.
    REQUIRE(r.rig.changes.manager().version() == 3);
    CHECK(r.rig.changes.published().back().automatic_rollback);
    CHECK(r.rig.changes.manager().running().find_pool("web")->backends[2].weight == 2);
    const control::history_entry& rolled = r.rig.changes.manager().history().back();
    CHECK(rolled.origin == "rollback to 1");
    CHECK(rolled.who.via == "skew-guard");

    // The alarms as `evenctl skew` lists them: .11 hot, the two others starved, each on
    // the window's 40 verified connections.
    api::json alarms = r.alarms();
    REQUIRE(alarms.size() == 3);
    for (const api::json& a : alarms) {
        CHECK(a["basis"] == "new_flows");
        CHECK(a["flows"] == 40);
        CHECK(a["expected_share"].get<double>() == Approx(1.0 / 3));
        CHECK(!a.contains("clients"));
        if (a["backend"] == hot_backend) {
            CHECK(a["kind"] == "hot");
            CHECK(a["observed_share"].get<double>() == Approx(1.0));
        } else {
            CHECK(a["kind"] == "starved");
            CHECK(a["observed_share"].get<double>() == 0.0);
        }
    }
    CHECK(r.metrics().find("evenflow_alarms_active 3\n") != std::string::npos);
    CHECK(r.metrics().find("evenflow_heavy_hitter_connections{") == std::string::npos);
}

TEST_CASE("skew module: one client's connections on one backend name it and roll nothing back") {
    // web picks by the client's address alone (hash = "src_ip"): every connection of a
    // client goes to one backend, and a busy client can make it hot.
    skew_rig r("src_ip");
    std::string client;
    for (int n = 1; n < 250 && client.empty(); ++n) {
        std::string candidate = fmt::format("198.51.100.{}", n);
        if (chosen_backend(r.rig, candidate, 40000).key() == hot_backend) {
            client = candidate;
        }
    }
    REQUIRE(!client.empty());
    open_connections(r.rig, client, 40000, 40);

    for (int second = 1; second <= 3 && r.alarms().empty(); ++second) {
        r.tick(second);
    }
    api::json alarms = r.alarms();
    REQUIRE(alarms.size() == 1);
    CHECK(alarms[0]["backend"] == hot_backend);
    CHECK(alarms[0]["kind"] == "heavy_hitter");
    REQUIRE(alarms[0].contains("clients"));
    CHECK(alarms[0]["clients"][0]["client"] == client);
    CHECK(alarms[0]["clients"][0]["to_backend"] == 40);
    // The config stays: version 2 runs, nothing was published after the apply.
    CHECK(r.rig.changes.manager().version() == 2);
    CHECK(!r.rig.changes.published().back().automatic_rollback);
    CHECK(r.metrics().find(fmt::format("evenflow_heavy_hitter_connections{{service=\"web\","
                                       "backend=\"{}\",client=\"{}\",basis=\"new_flows\"}} 40\n",
                                       hot_backend, client)) != std::string::npos);

    // `evenctl clients web` names the client with its 40 verified connections.
    auto top = r.skew.handle(api::command::clients, {{"service", "web"}}, {});
    REQUIRE(top.has_value());
    REQUIRE((*top)["addresses"].size() >= 1);
    CHECK((*top)["addresses"][0]["client"] == client);
    CHECK((*top)["addresses"][0]["verified"] == 40);
}
