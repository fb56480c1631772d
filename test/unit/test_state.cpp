// The state directory (lib/control/state_store.hpp): what a crash must not lose is
// saved and read back; what is damaged is reported, never trusted.
#include "control/manager.hpp"
#include "control/state_store.hpp"
#include "support/configs.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace evenflow;

namespace {

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/evenflow-state-test.XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

std::shared_ptr<const config::config> cfg_of(const std::string& text) {
    return std::make_shared<const config::config>(testing::load_or_fail(text));
}

} // namespace

TEST_CASE("state: versions, admin states and the file's hash survive a save and a load") {
    temp_dir dir;
    control::config_manager m;
    control::actor who{0, 1, "socket"};
    auto v1 = testing::load_or_fail(testing::basic_config_text());
    REQUIRE(m.start(v1, who, "start").ok);
    auto v2 = cfg_of(testing::basic_config_text(
        "", "  { address = \"10.20.0.11\", port = 8080, weight = 1 },\n"));
    m.record(v2, who, "apply v2", {"- backend"});
    std::string error;
    REQUIRE(m.set_admin_state("web", "10.20.0.11:8080", control::admin_state::disabled, &error));

    control::state_store store;
    REQUIRE(store.open(dir.path, &error));
    REQUIRE(store.save(control::capture_state(m, "abc"), &error));
    CHECK_FALSE(std::filesystem::exists(dir.path + "/.tmp-state.json"));

    control::state_store other;
    CHECK_FALSE(other.open(dir.path, &error)); // one daemon per directory
    CHECK(error.find("in use") != std::string::npos);

    std::string why;
    auto saved = store.load(&why);
    REQUIRE(saved);
    CHECK(saved->file_hash == "abc");
    REQUIRE(saved->history.size() == 2);
    CHECK(saved->history.back().version == 2);
    CHECK(saved->history.back().text == v2->source_text);
    CHECK(saved->next_version == 3);
    REQUIRE(saved->admin.size() == 1);
    CHECK(saved->admin[0].backend == "10.20.0.11:8080");
    CHECK(saved->admin[0].state == control::admin_state::disabled);
    CHECK(store.highest_version_file() == 2);

    // Resumed in a fresh manager: version 2 runs with b1 disabled.
    control::config_manager fresh;
    std::vector<control::history_entry> entries;
    for (const auto& v : saved->history) {
        control::history_entry e;
        e.version = v.version;
        e.cfg = cfg_of(v.text);
        entries.push_back(e);
    }
    std::vector<std::string> skipped;
    auto r = fresh.resume(std::move(entries), saved->next_version,
                          {{"web", "10.20.0.11:8080", control::admin_state::disabled},
                           {"web", "10.20.0.99:8080", control::admin_state::draining}},
                          &skipped);
    REQUIRE(r.ok);
    CHECK(fresh.version() == 2);
    CHECK(fresh.next_version() == 3);
    CHECK(skipped.size() == 1);
    CHECK(testing::backend_by_key(*r.snap, "10.20.0.11:8080").state == backend_state::disabled);
}

TEST_CASE("state: a damaged state is reported, not trusted") {
    temp_dir dir;
    control::config_manager m;
    control::actor who{0, 1, "socket"};
    REQUIRE(m.start(testing::load_or_fail(testing::basic_config_text()), who, "start").ok);
    control::state_store store;
    std::string error, why;
    REQUIRE(store.open(dir.path, &error));
    CHECK_FALSE(store.load(&why));
    CHECK(why.find("no state saved") == 0);
    REQUIRE(store.save(control::capture_state(m, "h"), &error));

    SECTION("state.json cut short") {
        std::filesystem::resize_file(dir.path + "/state.json", 20);
        CHECK_FALSE(store.load(&why));
        CHECK(why.find("not valid JSON") != std::string::npos);
    }
    SECTION("a version file altered") {
        std::ofstream(dir.path + "/v1.toml", std::ios::app) << "# changed\n";
        CHECK_FALSE(store.load(&why));
        CHECK(why.find("does not match its hash") != std::string::npos);
    }
    SECTION("a version file gone") {
        std::filesystem::remove(dir.path + "/v1.toml");
        CHECK_FALSE(store.load(&why));
        CHECK(why.find("cannot read") != std::string::npos);
    }
}

TEST_CASE("state: the generated pick seed is kept, and a damaged one reported without its text") {
    temp_dir dir;
    control::state_store store;
    std::string error;
    REQUIRE(store.open(dir.path, &error));
    CHECK_FALSE(store.load_hash_seed(&error)); // none kept yet: not an error
    CHECK(error.empty());
    const net::hash_seed seed = *net::hash_seed::parse("5be1c0ffee00d15ea5e0123456789abc");
    REQUIRE(store.save_hash_seed(seed, &error));
    auto kept = store.load_hash_seed(&error);
    REQUIRE(kept);
    CHECK(*kept == seed);
    std::ofstream(dir.path + "/hash_seed") << "5be1c0ffee00d15ea5e0123456789ab\n";
    CHECK_FALSE(store.load_hash_seed(&error));
    CHECK(error.find("not 32 hex digits") != std::string::npos);
    CHECK(error.find("c0ffee") == std::string::npos);
}

TEST_CASE("state: version files neither the history nor the baseline names are removed") {
    temp_dir dir;
    control::config_manager m(2); // keeps two versions
    control::actor who{0, 1, "socket"};
    REQUIRE(m.start(testing::load_or_fail(testing::basic_config_text()), who, "start").ok);
    control::state_store store;
    std::string error;
    REQUIRE(store.open(dir.path, &error));
    for (int i = 0; i < 3; ++i) {
        auto next = cfg_of(testing::basic_config_text() + "# " + std::to_string(i) + "\n");
        control::history_entry pending;
        pending.version = m.next_version();
        pending.cfg = next;
        REQUIRE(store.save(control::capture_state(m, "h", &pending), &error));
        m.record(next, who, "apply", {});
    }
    // v1 stays: it is still the series baseline (nothing has run a whole
    // baseline_window since), which a restart needs to judge applies against.
    CHECK(std::filesystem::exists(dir.path + "/v1.toml"));
    CHECK_FALSE(std::filesystem::exists(dir.path + "/v2.toml"));
    CHECK(std::filesystem::exists(dir.path + "/v3.toml"));
    CHECK(std::filesystem::exists(dir.path + "/v4.toml"));
}

TEST_CASE("state: the series baseline survives a restart (accepted shifts, pinned versions)") {
    temp_dir dir;
    control::config_manager m;
    control::actor who{0, 1, "socket"};
    REQUIRE(m.start(testing::load_or_fail(testing::basic_config_text()), who, "start").ok);
    // v2 applied with --accept-shift past a refusal: the baseline from now on.
    auto shifted = cfg_of(testing::basic_config_text(
        "", "  { address = \"10.20.0.11\", port = 8080, weight = 9 },\n"
            "  { address = \"10.20.0.12\", port = 8080, weight = 1 },\n"));
    m.record(shifted, who, "apply shift", {"~ weight"}, control::record_flags{true, 0});
    // Enough later versions that v2 leaves the kept history (and stays pinned).
    for (size_t i = 0; i < m.keep() + 2; ++i) {
        auto next = cfg_of(testing::basic_config_text(
            "", fmt::format("  {{ address = \"10.20.0.11\", port = 8080, weight = 9 }},\n"
                            "  {{ address = \"10.20.0.12\", port = 8080, weight = {} }},\n",
                            1 + i % 2)));
        m.record(next, who, "apply", {});
    }
    auto now = std::chrono::system_clock::now();
    REQUIRE(m.baseline(now).entry->version == 2);
    REQUIRE(m.history().front().version > 2); // v2 is pinned, not in the kept history

    std::string error;
    control::state_store store;
    REQUIRE(store.open(dir.path, &error));
    REQUIRE(store.save(control::capture_state(m, "h"), &error));
    std::string why;
    auto saved = store.load(&why);
    REQUIRE(saved);
    // v1 (what the accepted shift replaced) and v2 (the baseline) are both kept.
    REQUIRE(saved->history.size() >= 2);
    CHECK(saved->history[0].version == 1);
    REQUIRE(saved->history[1].version == 2);
    CHECK(saved->history[1].accepted_shift);
    CHECK(saved->history[1].accepted_from == 1);

    control::config_manager fresh;
    std::vector<control::history_entry> entries;
    for (const auto& v : saved->history) {
        control::history_entry e;
        e.version = v.version;
        e.at = std::chrono::system_clock::time_point(std::chrono::milliseconds(v.at_ms));
        e.cfg = cfg_of(v.text);
        e.accepted_shift = v.accepted_shift;
        e.accepted_from = v.accepted_from;
        e.rollback_of = v.rollback_of;
        e.baseline = v.baseline;
        entries.push_back(e);
    }
    std::vector<std::string> skipped;
    REQUIRE(fresh.resume(std::move(entries), saved->next_version, {}, &skipped).ok);
    CHECK(fresh.history().size() == m.history().size());
    CHECK(fresh.baseline(now).entry->version == 2);
    CHECK(fresh.baseline(now).entry->accepted_shift);
}
