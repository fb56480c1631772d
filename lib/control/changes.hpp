// The one path by which configurations and backend states reach the workers: an apply
// (evenctl apply, SIGHUP), a rollback (by an operator or by the guard), an admin state
// (drain / enable / disable) and health verdicts. Every change waits its turn in one
// queue and goes through the same transaction:
//   1. review: an apply is parsed and judged (guard, restart check, diff) on a thread of
//      its own, pure work on immutable inputs (guard.hpp); a rollback or an admin state
//      is checked against what runs;
//   2. build: its snapshot is built a slice at a time (snapshot_builder) between the
//      host's other work, sharing the tables of services it does not touch;
//   3. save: the version, or the admin state, is written to [control] state_dir
//      (state_store.hpp) before it takes effect, so a crash from then on resumes it;
//   4. record: a new version joins the history (config_manager);
//   5. publish: the host's publish callback hands the snapshot to the workers (RCU);
//      it is logged in one format (event, version, origin, uid, pid, via, one
//      apply_change line per change) and the client that asked gets its answer then.
// Health verdicts that arrive while a build runs are batched into one rebuild after it.
//
// Pure (no DPDK, no sockets): evenflowd drives it from its control loop, and the unit
// tests (test/unit/test_changes.cpp) drive the same code in-process.
#pragma once

#include "api/protocol.hpp"
#include "config/load.hpp"
#include "control/guard.hpp"
#include "control/log.hpp"
#include "control/manager.hpp"
#include "control/policy.hpp"
#include "control/state_store.hpp"

#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace evenflow::control {

enum class change_kind : uint8_t { apply, rollback, admin, states };

// What a publication was, for the host's follow-up work.
struct publication {
    change_kind kind = change_kind::states;
    bool new_version = false;        // a config version (apply, rollback), not states only
    bool automatic_rollback = false; // the guard's: the skew windows start again
};

// Figures of the pipeline since start (status, /metrics).
struct change_counters {
    uint64_t applies = 0;
    std::map<std::string, uint64_t> refused;   // by reason: invalid, shift, restart, state
    std::map<std::string, uint64_t> rollbacks; // by trigger: operator, automatic
};

// How a daemon started: from the saved state or from the file, and why.
struct start_origin {
    std::string from = "file"; // "resumed" (state_dir) or "file"
    uint64_t version = 0;
    std::string reason;
};

class change_pipeline {
public:
    // The ways out of the pipeline; everything else is its own state.
    struct host {
        // Makes a snapshot the one the workers read; called once it is saved and recorded.
        std::function<void(std::unique_ptr<snapshot>, const publication&)> publish;
        // The snapshot running now, whose tables a build may share (may return null).
        std::function<const snapshot*()> running_snapshot;
        // Whether a flow still holds a backend id (before its id is reused).
        std::function<bool(uint32_t)> backend_in_use;
        // Before an automatic rollback builds: verdicts reached under the bad config go.
        std::function<void()> on_automatic_rollback;
    };
    // An answer to whoever asked; empty when nobody waits (SIGHUP, the guard).
    using reply_fn = std::function<void(const api::json&)>;
    // Reads the candidate of an apply, on the review's thread.
    using loader = std::function<config::load_result()>;

    // `config_path`: the file SIGHUP reads, whose text decides whether a saved state is
    // resumed. `build_slice`: the longest a build holds the host's loop in one advance()
    // (zero: one service per call).
    change_pipeline(host h, std::string config_path,
                    std::chrono::steady_clock::duration build_slice = std::chrono::milliseconds(4),
                    size_t keep_versions = 32);
    ~change_pipeline();

    // The first version: the saved one when state_dir holds it and the file is the one
    // last read, else the file's (`file_cfg`). Saved at once, so that a crash from here
    // on resumes it. Its snapshot is the caller's to publish (before any worker runs).
    change_result start(const config::config& file_cfg);

    // Asks for a change; it is answered through `reply` once published or refused.
    void request_apply(loader load, const actor& who, std::string origin, bool accept_shift,
                       reply_fn reply, bool dry_run = false);
    void request_reload(); // SIGHUP: the file again, unguarded shifts refused
    void request_rollback(std::optional<uint64_t> version, const actor& who, std::string why,
                          reply_fn reply);
    void request_admin(std::string service, std::string backend, admin_state state,
                       const actor& who, reply_fn reply);
    // Health or admin states changed: one rebuild of the running config.
    void request_states_rebuild();
    // With [skew] action = "rollback": back to the previous version when an alarm rises
    // within `probation` of an apply, unless such a rollback is already on its way.
    // True when one was asked for.
    bool roll_back_automatically(const std::string& why);

    // Moves the queue on: one deferred item, or at most one build slice and at most one
    // publication. The host calls it every loop iteration while pending().
    void advance();
    bool pending() const { return !m_queue.empty() || !m_deferred.empty(); }
    size_t queued() const { return m_queue.size(); }
    // Work that follows a publication, one item per advance(), in order (the host's
    // too: a publication at ten thousand backends does not hold the loop in one piece).
    void defer(std::function<void()> work) { m_deferred.push_back(std::move(work)); }

    config_manager& manager() { return m_manager; }
    const config_manager& manager() const { return m_manager; }
    const class probation& probation() const { return m_probation; }
    const change_counters& counters() const { return m_counters; }
    const struct start_origin& start_origin() const { return m_start_origin; }
    const state_store& state() const { return m_state; }
    // The last failed save, "" after a good one.
    const std::string& state_error() const { return m_state_error; }
    // The config file's text hash as last read.
    const std::string& file_hash() const { return m_file_hash; }

private:
    struct change;
    change& enqueue(change_kind what, const actor& who, reply_fn reply);
    bool prepare(change& c, bool* wait);
    void finish(change& c);
    void answer_dry_run(change& c, const apply_evaluation& e);
    void refuse(change& c, const std::string& counter, const std::string& reason, api::json reply,
                std::initializer_list<log_field> extra = {});
    void log_change(const char* event, uint64_t version, const change& c,
                    std::initializer_list<log_field> extra = {});
    void reclaim_ids_if_short();
    change_result first_version(const config::config& file_cfg);
    bool save_state(const history_entry* pending, std::string* error);
    bool note_file_text(const std::string& text, bool from_file);
    net::hash_seed host_hash_seed();

    host m_host;
    std::string m_config_path;
    std::chrono::steady_clock::duration m_build_slice;
    config_manager m_manager;
    class probation m_probation;
    state_store m_state;
    change_counters m_counters;
    struct start_origin m_start_origin;
    std::string m_file_hash;
    std::string m_state_error;
    std::deque<std::unique_ptr<change>> m_queue; // in the order they were asked for
    std::deque<std::function<void()>> m_deferred;
};

} // namespace evenflow::control
