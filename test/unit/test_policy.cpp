// The guard's policy around a change (lib/control/policy.hpp) and the command
// vocabulary (lib/api/commands.hpp): pure code, tested without a daemon.
#include "api/commands.hpp"
#include "control/manager.hpp"
#include "control/policy.hpp"
#include "support/changes.hpp"
#include "support/configs.hpp"

#include <catch2/catch.hpp>

using namespace evenflow;
using namespace std::chrono_literals;
using evenflow::testing::backend_by_key;
using evenflow::testing::basic_config_text;
using evenflow::testing::load_or_fail;
using evenflow::testing::pipeline_driver;

namespace {

config::skew_config rollback_guard(std::chrono::milliseconds probation = 60s) {
    config::skew_config guard;
    guard.action = config::skew_action::rollback;
    guard.probation = probation;
    return guard;
}

} // namespace

// ---- probation ----

TEST_CASE("probation: starts with an apply, lasts `probation`, ends with a rollback") {
    control::probation p;
    auto t0 = control::probation::clock::time_point{} + 1000s;
    auto guard = rollback_guard(60s);
    CHECK_FALSE(p.active(t0, guard));
    CHECK_FALSE(p.since_apply(t0));

    p.on_apply(t0);
    CHECK(p.active(t0, guard));
    CHECK(p.active(t0 + 60s, guard)); // the edge is inside
    CHECK_FALSE(p.active(t0 + 60s + 1ms, guard));
    CHECK(*p.since_apply(t0 + 2500ms) == Approx(2.5));

    p.on_rollback();
    CHECK_FALSE(p.active(t0 + 1s, guard));
}

TEST_CASE("probation: a rollback needs action=rollback, probation and an earlier version") {
    control::probation p;
    auto t0 = control::probation::clock::time_point{} + 1000s;
    p.on_apply(t0);
    CHECK(p.should_roll_back(t0 + 5s, rollback_guard(), 2));
    CHECK_FALSE(p.should_roll_back(t0 + 5s, rollback_guard(), 1));  // nothing to go back to
    CHECK_FALSE(p.should_roll_back(t0 + 61s, rollback_guard(), 2)); // probation over
    config::skew_config alert = rollback_guard();
    alert.action = config::skew_action::alert;
    CHECK_FALSE(p.should_roll_back(t0 + 5s, alert, 2));
    config::skew_config no_probation = rollback_guard(0s);
    CHECK_FALSE(p.should_roll_back(t0 + 5s, no_probation, 2));
}

// ---- no-backend alarms ----

TEST_CASE("no-backend alarms rise once, keep their start time, and clear") {
    pipeline_driver d;
    REQUIRE(d.start(load_or_fail(basic_config_text())).ok);
    control::no_backend_alarms alarms;
    auto t0 = std::chrono::system_clock::time_point{} + 100s;
    CHECK(alarms.update(*d.running(), t0).empty());

    std::vector<uint32_t> ids;
    for (const auto& b : d.running()->backends) {
        ids.push_back(b.id);
    }
    for (uint32_t id : ids) {
        CHECK(d.set_health(id, control::health_verdict::down) == 1);
    }
    REQUIRE_FALSE(d.running()->services[0].has_backend_up);
    auto raised = alarms.update(*d.running(), t0 + 1s);
    REQUIRE(raised.size() == 1);
    CHECK(raised[0].service == "web");
    CHECK(raised[0].raised);
    CHECK(alarms.update(*d.running(), t0 + 5s).empty()); // still down: no second event
    CHECK(alarms.active().at("web") == t0 + 1s);

    CHECK(d.set_health(ids[0], control::health_verdict::up) == 1);
    auto cleared = alarms.update(*d.running(), t0 + 9s);
    REQUIRE(cleared.size() == 1);
    CHECK_FALSE(cleared[0].raised);
    CHECK(alarms.active().empty());
}

// ---- runtime stamping ----

TEST_CASE("stamper: drain deadlines start when a backend is first seen draining") {
    pipeline_driver d;
    REQUIRE(d.start(load_or_fail(basic_config_text())).ok);
    control::runtime_stamper stamper;

    REQUIRE(d.set_admin("web", "10.20.0.11:8080", control::admin_state::draining).ok());
    stamper.stamp(d.latest(), 5'000, false);
    CHECK(backend_by_key(d.latest(), "10.20.0.11:8080").drain_deadline_ms == 35'000);
    CHECK(backend_by_key(d.latest(), "10.20.0.12:8080").drain_deadline_ms == 0);

    // A later snapshot (another change) keeps the first deadline.
    REQUIRE(d.set_admin("web", "10.20.0.12:8080", control::admin_state::disabled).ok());
    stamper.stamp(d.latest(), 20'000, false);
    CHECK(backend_by_key(d.latest(), "10.20.0.11:8080").drain_deadline_ms == 35'000);

    // Enabled again, then drained again: a new clock.
    REQUIRE(d.set_admin("web", "10.20.0.11:8080", control::admin_state::enabled).ok());
    stamper.stamp(d.latest(), 21'000, false);
    REQUIRE(d.set_admin("web", "10.20.0.11:8080", control::admin_state::draining).ok());
    stamper.stamp(d.latest(), 40'000, false);
    CHECK(backend_by_key(d.latest(), "10.20.0.11:8080").drain_deadline_ms == 70'000);
}

TEST_CASE("stamper: a zero drain_timeout means no deadline") {
    pipeline_driver d;
    std::string text = basic_config_text();
    text.replace(text.find("health = "), 0, "drain_timeout = \"0s\"\n");
    REQUIRE(d.start(load_or_fail(text)).ok);
    control::runtime_stamper stamper;
    REQUIRE(d.set_admin("web", "10.20.0.13:8080", control::admin_state::draining).ok());
    stamper.stamp(d.latest(), 5'000, false);
    CHECK(backend_by_key(d.latest(), "10.20.0.13:8080").drain_deadline_ms == 0);
}

TEST_CASE("stamper: in probation, services with down backends keep their pinned flows") {
    pipeline_driver d;
    REQUIRE(d.start(load_or_fail(basic_config_text())).ok);
    control::runtime_stamper stamper;
    auto id = d.manager().registry().id_for("web", *net::ip_addr::parse("10.20.0.13"), 8080);
    REQUIRE(d.set_health(id, control::health_verdict::down) == 1);
    snapshot* down = &d.latest();

    auto kept = stamper.stamp(*down, 1'000, true);
    CHECK(down->services[0].keep_pinned_flows);
    REQUIRE(kept.size() == 1);
    CHECK(kept[0].service == "web");
    CHECK(kept[0].down_weight == 2);
    CHECK(kept[0].total_weight == 4);

    // Out of probation the same snapshot resets them.
    CHECK(stamper.stamp(*down, 2'000, false).empty());
    CHECK_FALSE(down->services[0].keep_pinned_flows);
}

// ---- command vocabulary ----

TEST_CASE("commands: every command has a unique name and a spec in enum order") {
    auto all = api::all_commands();
    REQUIRE(all.size() == size_t(api::command::count_));
    for (size_t i = 0; i < all.size(); ++i) {
        CHECK(size_t(all[i].id) == i);
        CHECK(api::find_command(all[i].name) == &all[i]);
        CHECK(&api::spec_of(all[i].id) == &all[i]);
    }
    CHECK(api::find_command("frobnicate") == nullptr);
    CHECK(api::spec_of(api::command::apply).changes_state);
    CHECK_FALSE(api::spec_of(api::command::status).changes_state);
    CHECK_FALSE(api::spec_of(api::command::check).needs_daemon);
}

TEST_CASE("commands: words become a request, or a usage error naming the argument") {
    auto parse = [](api::command id, std::vector<std::string> words) {
        return api::parse_arguments(api::spec_of(id), words);
    };
    auto ok = [](const api::parse_result& r) {
        return std::get<api::json>(r);
    };
    auto why = [](const api::parse_result& r) {
        return std::get<std::string>(r);
    };

    CHECK(ok(parse(api::command::status, {})) == api::json{{"cmd", "status"}});
    CHECK(why(parse(api::command::status, {"x"})).find("unexpected argument \"x\"") !=
          std::string::npos);

    auto drain = ok(parse(api::command::drain, {"web", "10.20.0.11:8080"}));
    CHECK(drain["service"] == "web");
    CHECK(drain["backend"] == "10.20.0.11:8080");
    CHECK(why(parse(api::command::drain, {"web"})).find("missing BACKEND") != std::string::npos);

    auto apply = ok(parse(api::command::apply, {"v2.toml", "--accept-shift"}));
    CHECK(apply["config"] == "v2.toml"); // evenctl replaces the path by the file's text
    CHECK(apply["accept_shift"] == true);
    CHECK(why(parse(api::command::apply, {"v2.toml", "--force"})).find("unknown option --force") !=
          std::string::npos);

    CHECK(ok(parse(api::command::rollback, {})) == api::json{{"cmd", "rollback"}});
    CHECK(ok(parse(api::command::rollback, {"3"}))["version"] == 3);
    for (const char* bad : {"0", "-1", "x", "3x", "99999999999999999999"}) {
        INFO(bad);
        CHECK(why(parse(api::command::rollback, {bad})).find("VERSION must be a positive") !=
              std::string::npos);
    }
    CHECK(ok(parse(api::command::top, {"--iterations", "2"}))["iterations"] == 2);
    CHECK(why(parse(api::command::top, {"--iterations"})).find("needs a value N") !=
          std::string::npos);
    CHECK(api::usage_line(api::spec_of(api::command::apply)) == "apply FILE [--accept-shift]");
}

TEST_CASE("commands: diff takes apply's file and changes nothing") {
    const api::command_spec* diff = api::find_command("diff");
    REQUIRE(diff != nullptr);
    CHECK(diff->id == api::command::diff);
    CHECK_FALSE(diff->changes_state);
    CHECK(diff->needs_daemon);
    REQUIRE(diff->args.size() == 1);
    CHECK(diff->args[0].kind == api::value_kind::file);
    CHECK(diff->args[0].key == api::spec_of(api::command::apply).args[0].key);
    CHECK(api::usage_line(*diff) == "diff FILE");
    auto request = api::parse_arguments(*diff, std::vector<std::string>{"v2.toml"});
    CHECK(std::get<api::json>(request) == api::json{{"cmd", "diff"}, {"config", "v2.toml"}});
    auto missing = api::parse_arguments(*diff, std::vector<std::string>{});
    CHECK(std::get<std::string>(missing).find("missing FILE") != std::string::npos);
    CHECK(std::get<std::string>(
              api::parse_arguments(*diff, std::vector<std::string>{"v2.toml", "--accept-shift"}))
              .find("unknown option --accept-shift") != std::string::npos);
}

TEST_CASE("commands: every positional says what it is, for evenctl COMMAND --help") {
    for (const api::command_spec& spec : api::all_commands()) {
        for (const api::positional& p : spec.args) {
            INFO(spec.name << " " << p.metavar);
            CHECK_FALSE(p.help.empty());
        }
    }
}
