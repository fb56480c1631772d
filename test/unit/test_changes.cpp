// The change pipeline (lib/control/changes.hpp) driven in-process, as evenflowd's
// control loop drives it: review, the build a slice at a time, the save before it takes
// effect, the record, the publication, and the answer that waits for it.
#include "control/changes.hpp"
#include "support/changes.hpp"
#include "support/configs.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <thread>

using namespace evenflow;
using evenflow::testing::backend_by_key;
using evenflow::testing::basic_config_text;
using evenflow::testing::ip;
using evenflow::testing::load_or_fail;
using evenflow::testing::pipeline_driver;

namespace {

namespace fs = std::filesystem;

// A fresh directory for one test's state_dir and config file, removed after it.
struct scratch_dir {
    fs::path path;
    scratch_dir() {
        char name[] = "/tmp/evenflow-changes-XXXXXX";
        path = mkdtemp(name);
    }
    ~scratch_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

// basic_config_text with `services` more services (each its own VIP, the same pool),
// state kept in `state_dir`, and `extra` appended.
std::string config_text(const std::string& state_dir, int services = 0,
                        const std::string& backends_extra = "", const std::string& extra = "") {
    std::string text = basic_config_text(backends_extra);
    text.replace(text.find("state_dir = \"\""), 14, fmt::format("state_dir = \"{}\"", state_dir));
    for (int i = 0; i < services; ++i) {
        text += fmt::format("\n[[services]]\nname = \"web{}\"\nvip = \"10.10.0.{}\"\nport = 80\n"
                            "protocol = \"tcp\"\npool = \"web\"\ntable_size = 65537\n",
                            i, 101 + i);
    }
    return text + extra;
}

std::string write_file(const fs::path& path, const std::string& text) {
    std::ofstream(path) << text;
    return path.string();
}

const control::actor operator_who{1000, 4242, "socket"};

} // namespace

TEST_CASE("changes: an apply is reviewed, built a slice at a time, saved, recorded, published "
          "and only then answered") {
    scratch_dir dir;
    std::string file = write_file(dir.path / "evenflow.toml", config_text(dir.path / "state"));
    fs::path state = dir.path / "state";
    std::unique_ptr<snapshot> running;
    control::change_pipeline* self = nullptr;
    control::change_pipeline::host host;
    host.publish = [&](std::unique_ptr<snapshot> snap, const control::publication& what) {
        CHECK(what.kind == control::change_kind::apply);
        CHECK(what.new_version);
        // Saved before it takes effect: a crash from here on resumes it.
        CHECK(fs::exists(state / fmt::format("v{}.toml", snap->version)));
        CHECK(self->manager().version() == snap->version); // recorded, then published
        running = std::move(snap);
    };
    host.running_snapshot = [&] {
        return running.get();
    };
    control::change_pipeline pipeline(host, file, std::chrono::seconds(0)); // one service a call
    self = &pipeline;

    auto first = pipeline.start(load_or_fail(config_text(dir.path / "state")));
    REQUIRE(first.ok);
    running = std::move(first.snap);
    CHECK(pipeline.start_origin().from == "file");
    CHECK(fs::exists(state / "v1.toml")); // what runs is saved at once

    // Five services more: six tables to build, one per advance().
    std::string text = config_text(dir.path / "state", 5);
    std::optional<api::json> reply;
    pipeline.request_apply([text] { return config::load_string(text, "next.toml"); }, operator_who,
                           "apply next.toml", false, [&](const api::json& r) { reply = r; });
    CHECK(pipeline.pending());
    CHECK(pipeline.queued() == 1);
    int calls = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!reply && std::chrono::steady_clock::now() < deadline) {
        pipeline.advance();
        ++calls;
        if (!reply) {
            REQUIRE(running->version == 1); // nothing takes effect before the whole build
            std::this_thread::yield();      // the review runs on a thread of its own
        }
    }
    REQUIRE(reply);
    CHECK(calls >= 6); // the review, then a slice per service
    CHECK((*reply)["ok"] == true);
    CHECK((*reply)["changed"] == true);
    CHECK((*reply)["version"] == 2);
    CHECK((*reply)["diff"].size() == 5);
    REQUIRE(running->version == 2);
    CHECK(running->services.size() == 6);
    const control::history_entry& entry = pipeline.manager().history().back();
    CHECK(entry.version == 2);
    CHECK(entry.origin == "apply next.toml");
    CHECK(entry.who.uid == 1000);
    CHECK(entry.who.pid == 4242);
    CHECK(pipeline.counters().applies == 1);
    // The follow-ups (one apply_change line per change) run one per call.
    while (pipeline.pending()) {
        pipeline.advance();
    }
    CHECK_FALSE(pipeline.pending());
}

TEST_CASE("changes: refusals and reviews are answered, and nothing is published") {
    scratch_dir dir;
    pipeline_driver d;
    REQUIRE(d.start(load_or_fail(config_text(dir.path / "state"))).ok);
    size_t published = d.publications();

    auto invalid = d.apply_text("[[services]]\nname = 7\n");
    CHECK_FALSE(invalid.ok());
    CHECK(invalid.error().find("test.toml") != std::string::npos);

    // 10.20.0.13 from half of the pool to 20/22: the guard refuses it.
    std::string funnel = config_text(dir.path / "state");
    funnel.replace(funnel.find("port = 8080, weight = 2"), 23, "port = 8080, weight = 20");
    auto shift = d.apply_text(funnel);
    CHECK_FALSE(shift.ok());
    CHECK(shift.error().rfind("refused: this config shifts traffic too far", 0) == 0);
    CHECK_FALSE(shift.reply["shift"].empty());

    config::config restart = load_or_fail(config_text(dir.path / "state"));
    restart.dataplane.workers = {1, 2};
    auto needs_restart = d.apply(restart);
    CHECK(needs_restart.error() ==
          "dataplane.workers cannot change while evenflowd runs: restart it to change this");

    auto same = d.apply_text(config_text(dir.path / "state"));
    CHECK(same.ok());
    CHECK_FALSE(same.changed());

    // evenctl diff: the verdict, nothing applied (even for what apply would take).
    auto review = d.apply_text(config_text(dir.path / "state", 1), false, {0, 0, "socket"}, true);
    CHECK(review.ok());
    CHECK(review.reply["verdict"] == "accept");
    CHECK(review.reply["diff"].size() == 1);
    auto review_shift = d.apply_text(funnel, false, {0, 0, "socket"}, true);
    CHECK(review_shift.reply["verdict"] == "shift");

    CHECK(d.publications() == published);
    CHECK(d.manager().version() == 1);
    const control::change_counters& c = d.pipeline.counters();
    CHECK(c.applies == 0);
    CHECK(c.refused.at("invalid") == 1);
    CHECK(c.refused.at("shift") == 1);
    CHECK(c.refused.at("restart") == 1);

    // --accept-shift lets the refused one through, and it becomes the new baseline.
    auto accepted = d.apply_text(funnel, true);
    CHECK(accepted.ok());
    CHECK(accepted.publications == 1);
    CHECK(d.manager().history().back().accepted_shift);
}

TEST_CASE("changes: health verdicts during a build are batched into one rebuild after it") {
    scratch_dir dir;
    pipeline_driver d({}, {}, "", 32, std::chrono::seconds(0));
    REQUIRE(d.start(load_or_fail(config_text("", 3))).ok);
    size_t before = d.publications();
    std::optional<api::json> reply;
    d.pipeline.request_admin("web", "10.20.0.11:8080", control::admin_state::draining, operator_who,
                             [&](const api::json& r) { reply = r; });
    d.pipeline.advance(); // reviewed, first slice built
    REQUIRE(d.pipeline.queued() == 1);
    // Three verdicts arrive while it builds, as three health ticks would hand them over.
    for (const char* addr : {"10.20.0.12", "10.20.0.13"}) {
        uint32_t id = d.manager().registry().id_for("web", ip(addr), 8080);
        REQUIRE(d.manager().record_health(id, control::health_verdict::down));
        d.pipeline.request_states_rebuild();
    }
    uint32_t id11 = d.manager().registry().id_for("web", ip("10.20.0.11"), 8080);
    REQUIRE(d.manager().record_health(id11, control::health_verdict::up));
    d.pipeline.request_states_rebuild();
    CHECK(d.pipeline.queued() == 2); // the admin change and one rebuild, however many verdicts
    d.settle();
    REQUIRE(reply);
    CHECK((*reply)["ok"] == true);
    CHECK(d.publications() == before + 2);
    const snapshot& now = *d.running();
    CHECK(backend_by_key(now, "10.20.0.11:8080").state == backend_state::draining);
    CHECK(backend_by_key(now, "10.20.0.12:8080").state == backend_state::down);
    CHECK(backend_by_key(now, "10.20.0.13:8080").state == backend_state::down);
    CHECK(d.published().back().kind == control::change_kind::states);
    CHECK_FALSE(d.published().back().new_version);
    CHECK(d.manager().version() == 1); // states are no version
}

TEST_CASE("changes: a change that cannot be saved is refused, and an admin state undone") {
    scratch_dir dir;
    pipeline_driver d;
    REQUIRE(d.start(load_or_fail(config_text(dir.path / "state"))).ok);
    size_t before = d.publications();
    // The directory goes away under the daemon (a full or failing disk does the same).
    fs::remove_all(dir.path / "state");
    auto drained = d.set_admin("web", "10.20.0.11:8080", control::admin_state::draining);
    CHECK_FALSE(drained.ok());
    CHECK(drained.error().rfind("refused: cannot save it in state_dir: ", 0) == 0);
    auto applied = d.apply_text(config_text(dir.path / "state", 1));
    CHECK_FALSE(applied.ok());
    CHECK(d.publications() == before);
    CHECK(d.manager().version() == 1);
    uint32_t id = d.manager().registry().id_for("web", ip("10.20.0.11"), 8080);
    CHECK(d.manager().admin_of(id) == control::admin_state::enabled);
    CHECK(d.pipeline.counters().refused.at("state") == 2);
    CHECK_FALSE(d.pipeline.state_error().empty());
    // Once it can save again, the same change goes through.
    fs::create_directories(dir.path / "state");
    CHECK(d.set_admin("web", "10.20.0.11:8080", control::admin_state::draining).ok());
    CHECK(d.pipeline.state_error().empty());
}

TEST_CASE("changes: a crash between save and publish resumes the saved version at start") {
    scratch_dir dir;
    std::string state = (dir.path / "state").string();
    std::string file = write_file(dir.path / "evenflow.toml", config_text(state));
    struct crashed {};
    {
        control::change_pipeline::host host;
        host.publish = [](std::unique_ptr<snapshot>, const control::publication& what) {
            if (what.kind == control::change_kind::apply) {
                throw crashed{}; // saved and recorded; the workers never saw it
            }
        };
        host.running_snapshot = [] {
            return nullptr;
        };
        control::change_pipeline pipeline(host, file);
        REQUIRE(pipeline.start(load_or_fail(config_text(state))).ok);
        std::string next = config_text(state, 2);
        pipeline.request_apply([next] { return config::load_string(next, "next.toml"); },
                               operator_who, "apply next.toml", false, {});
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        bool crash = false;
        while (!crash && std::chrono::steady_clock::now() < deadline) {
            try {
                pipeline.advance();
            } catch (const crashed&) {
                crash = true;
            }
        }
        REQUIRE(crash);
    } // the process is gone: its lock on the state directory with it

    pipeline_driver restarted({}, {}, file);
    auto resumed = restarted.start(load_or_fail(config_text(state)));
    REQUIRE(resumed.ok);
    CHECK(resumed.version == 2);
    CHECK(restarted.pipeline.start_origin().from == "resumed");
    CHECK(restarted.running()->services.size() == 3);
    CHECK(restarted.manager().history().back().origin == "apply next.toml");
    CHECK(restarted.manager().history().back().who.uid == 1000);
    // Numbering goes on from there.
    CHECK(restarted.rollback(std::nullopt).version() == 3);
}

TEST_CASE("changes: an automatic rollback in probation forgets verdicts and ends probation") {
    pipeline_driver d;
    std::string guard = "\n[skew]\naction = \"rollback\"\nprobation = \"60s\"\n";
    REQUIRE(d.start(load_or_fail(config_text("", 0, "", guard))).ok);
    CHECK_FALSE(d.pipeline.roll_back_automatically("no apply yet"));
    REQUIRE(d.apply_text(config_text("", 1, "", guard)).ok());
    uint32_t id = d.manager().registry().id_for("web", ip("10.20.0.12"), 8080);
    REQUIRE(d.manager().record_health(id, control::health_verdict::down));

    CHECK(d.pipeline.roll_back_automatically("skew alarm: test"));
    CHECK_FALSE(d.pipeline.roll_back_automatically("skew alarm: again")); // one on its way
    d.settle();
    CHECK(d.manager().version() == 3);
    CHECK(d.manager().history().back().rollback_of == 1);
    CHECK(d.manager().history().back().who.via == "skew-guard");
    CHECK(d.published().back().automatic_rollback);
    CHECK(d.forgotten == 1);
    CHECK(d.manager().health_of(id) == control::health_verdict::unknown);
    CHECK(d.pipeline.counters().rollbacks.at("automatic") == 1);
    CHECK(d.running()->services.size() == 1);
    // Probation ended with it: the next alarm does not roll back again.
    CHECK_FALSE(d.pipeline.roll_back_automatically("skew alarm: later"));
}
