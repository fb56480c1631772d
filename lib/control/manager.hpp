// The control plane's model of what is running: the config, its version history,
// operator and health states of backends, and the snapshot built from all of them.
// Pure (no DPDK): the daemon publishes the snapshots it returns.
#pragma once

#include "config/choices.hpp"
#include "config/config.hpp"
#include "snapshot/snapshot.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace evenflow::control {

// Who asked for a change (SO_PEERCRED of the control socket peer, or the daemon).
struct actor {
    uint32_t uid = 0;
    int32_t pid = 0;
    std::string via; // "socket", "sighup", "startup", "skew-guard"
};

struct history_entry {
    uint64_t version = 0;
    std::chrono::system_clock::time_point at;
    actor who;
    std::string origin;            // "apply FILE", "rollback to 3", ...
    std::vector<std::string> diff; // against the version it replaced
    std::shared_ptr<const config::config> cfg;
    // The series baseline (series_baseline below) is derived from these fields.
    bool accepted_shift = false; // applied with --accept-shift past a refusal: a new baseline
    uint64_t accepted_from = 0;  // accepted_shift: the baseline it replaced
    uint64_t rollback_of = 0;    // a rollback: the version it went back to
    uint64_t baseline = 0;       // the series baseline when this version started running
};

// How a version came to run, for the series baseline.
struct record_flags {
    bool accepted_shift = false;
    uint64_t rollback_of = 0;
};

// The series baseline at `now`: the version the guard judges a candidate against
// (README "The apply guard"). It is the last version that ran for a whole `window`
// without being replaced, or the last one applied with --accept-shift if that is
// newer; a rollback to version N brings back the baseline N ran under. With a zero
// window it is the running version. Walks the history oldest first, starting from the
// oldest entry's recorded `baseline` (so it survives versions falling out of the kept
// history); 0 for an empty history.
uint64_t series_baseline(const std::deque<history_entry>& history,
                         std::chrono::system_clock::time_point now,
                         std::chrono::system_clock::duration window);

// What an operator set on a backend; orthogonal to health.
enum class admin_state : uint8_t { enabled, draining, disabled };
constexpr auto choice_names(admin_state) { // config/choices.hpp
    return std::to_array<std::string_view>({"enabled", "draining", "disabled"});
}

enum class health_verdict : uint8_t { unknown, up, down };
constexpr auto choice_names(health_verdict) { // config/choices.hpp
    return std::to_array<std::string_view>({"unknown", "up", "down"});
}

struct change_result {
    bool ok = false;
    std::string error;              // why it was refused, when !ok
    uint64_t version = 0;           // the running config version afterwards
    std::vector<std::string> diff;  // what changed
    std::unique_ptr<snapshot> snap; // to publish, when ok
};

class config_manager {
public:
    explicit config_manager(size_t keep_versions = 32) : m_keep(keep_versions) {}

    // The first config (version 1).
    change_result start(const config::config& cfg, const actor& who, std::string origin);

    // Resumes saved versions (state_dir): `entries` oldest first, the last one runs;
    // operator states by (service, "ADDR:PORT"). Those naming a backend the running
    // config lacks are skipped and listed in *skipped.
    using named_admin = std::tuple<std::string, std::string, admin_state>;
    change_result resume(std::vector<history_entry> entries, uint64_t next_version,
                         const std::vector<named_admin>& admin, std::vector<std::string>* skipped);
    // Operator states (not `enabled`) of the backends of `cfg`, by name.
    std::vector<named_admin> admin_states(const config::config& cfg) const;
    size_t keep() const { return m_keep; }
    // The pick hash's seed when a config sets no [dataplane] hash_seed (the daemon's
    // generated one, evenflowd::host_hash_seed); before start(). Default: the public zero seed.
    void set_fallback_seed(const net::hash_seed& seed) { m_fallback_seed = seed; }
    const net::hash_seed& fallback_seed() const { return m_fallback_seed; }

    // Forgets every health verdict (all back to unknown, which takes traffic): after
    // an automatic rollback, verdicts reached under the bad config are suspect.
    void forget_health() {
        m_health.clear();
        ++m_states_generation;
    }

    const config::config& running() const { return *m_history.back().cfg; }
    uint64_t version() const { return m_history.empty() ? 0 : m_history.back().version; }
    uint64_t generation() const { return m_generation; } // snapshots built so far
    const std::deque<history_entry>& history() const { return m_history; }
    // Versions out of the kept history that the series baseline still refers to.
    const std::vector<history_entry>& pinned() const { return m_pinned; }
    backend_registry& registry() { return m_registry; }
    const backend_registry& registry() const { return m_registry; }
    admin_state admin_of(uint32_t backend_id) const;
    health_verdict health_of(uint32_t backend_id) const;

    // Builds a snapshot of the running config with current states (e.g. at start).
    build_result rebuild(const snapshot* previous = nullptr);

    // ---- the steps of a change, for the change pipeline (changes.hpp), which builds a
    // ---- slice at a time, saves, then records the version once the build is done.

    // A build of `cfg` as version `version` with the current operator and health states,
    // sharing the tables of `previous` where a service did not change.
    std::unique_ptr<snapshot_builder> builder_for(std::shared_ptr<const config::config> cfg,
                                                  uint64_t version, const snapshot* previous);
    uint64_t next_version() const { return m_next_version; }
    // Numbers continue those of an earlier run (state_dir) when no version runs yet.
    void continue_numbering(uint64_t next) {
        if (m_history.empty()) {
            m_next_version = std::max(m_next_version, next);
        }
    }
    // Makes `cfg` (built as next_version()) the running version. Returns it.
    uint64_t record(std::shared_ptr<const config::config> cfg, const actor& who, std::string origin,
                    std::vector<std::string> diff, record_flags flags = {});

    // The series baseline at `now` (series_baseline over the history, with the running
    // config's [skew] baseline_window): its entry, the entry an accepted shift replaced
    // (when the baseline is one), and the versions since, oldest first. The baseline's
    // entry is kept even after it falls out of the kept history; `entry` is never null
    // once a config runs (the oldest kept version stands in if the baseline is lost).
    struct baseline_view {
        const history_entry* entry = nullptr;
        const history_entry* accepted_from = nullptr;
        std::vector<const history_entry*> since;
    };
    baseline_view baseline(std::chrono::system_clock::time_point now) const;
    // A kept version to roll back to (the previous one by default): its config and
    // number, or nullptr and *error.
    std::shared_ptr<const config::config>
    rollback_target(std::optional<uint64_t> version, uint64_t* target, std::string* error) const;
    // An operator state, no rebuild. False with *error when there is no such backend.
    bool set_admin_state(const std::string& service, const std::string& backend, admin_state state,
                         std::string* error);
    // A health verdict, no rebuild. True when it changed the backend's verdict.
    bool record_health(uint32_t backend_id, health_verdict verdict);
    // Grows with every operator or health state change: a build made before the last
    // change is stale.
    uint64_t states_generation() const { return m_states_generation; }
    // Grows with every admin state change (drain, disable, enable): what the
    // fingerprint depends on besides the version.
    uint64_t admin_generation() const { return m_admin_generation; }

    // Frees the ids of backends that no kept version names, that have been out of the
    // running config for `hold` at least, and that `in_use(id)` says no flow holds
    // (the workers' live flows per backend). Refused applies never took ids: this is
    // for churn, where backends come and go faster than the id space allows. Returns
    // how many were freed.
    size_t reclaim_ids(std::chrono::steady_clock::time_point now,
                       std::chrono::steady_clock::duration hold,
                       const std::function<bool(uint32_t)>& in_use);

private:
    change_result commit(std::shared_ptr<const config::config> cfg, const actor& who,
                         std::string origin, record_flags flags = {});
    const history_entry* find_entry(uint64_t version) const;
    std::map<uint32_t, backend_state> effective_states(const config::config& cfg);

    size_t m_keep;
    net::hash_seed m_fallback_seed{};
    std::deque<history_entry> m_history;
    // Entries the baseline still refers to after they left m_history (its own, and the
    // one an accepted shift replaced).
    std::vector<history_entry> m_pinned;
    uint64_t m_next_version = 1;
    uint64_t m_generation = 0;
    backend_registry m_registry;
    std::map<uint32_t, admin_state> m_admin;
    std::map<uint32_t, health_verdict> m_health;
    uint64_t m_states_generation = 0;
    uint64_t m_admin_generation = 0;
    // When each id was last in the running config (for reclaim_ids).
    std::map<uint32_t, std::chrono::steady_clock::time_point> m_last_running;
    void note_running(std::chrono::steady_clock::time_point now);
    // Drops the oldest versions past `m_keep`, keeping (pinned) those the series
    // baseline refers to.
    void trim_history(std::chrono::system_clock::time_point now);
};

std::string_view to_string(admin_state s);
std::string_view to_string(health_verdict v);

} // namespace evenflow::control
