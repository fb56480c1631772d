// The guard's policy around a config change, as pure code the daemon consults:
// probation (the window after an apply in which trouble is blamed on the change),
// the automatic rollback it allows, the no-backend alarms, and the runtime fields
// stamped on every snapshot before it is published (pinned flows kept in probation,
// drain deadlines). No DPDK, no sockets, no clocks of its own: callers pass the time.
#pragma once

#include "config/config.hpp"
#include "snapshot/snapshot.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace evenflow::control {

class probation {
public:
    using clock = std::chrono::steady_clock;

    // An apply (operator or SIGHUP) starts probation; a rollback ends it.
    void on_apply(clock::time_point now) { m_last_apply = now; }
    void on_rollback() { m_last_apply.reset(); }

    bool active(clock::time_point now, const config::skew_config& guard) const {
        return m_last_apply && now - *m_last_apply <= guard.probation;
    }
    // Seconds since the apply that started probation, if one did.
    std::optional<double> since_apply(clock::time_point now) const;

    // Whether an alarm raised now should roll the config back: the guard's action is
    // rollback, probation is active, and there is an earlier version to return to.
    bool should_roll_back(clock::time_point now, const config::skew_config& guard,
                          size_t versions_kept) const {
        return guard.action == config::skew_action::rollback && active(now, guard) &&
               versions_kept >= 2;
    }

private:
    std::optional<clock::time_point> m_last_apply;
};

// Services with no backend taking new flows. update() follows each published
// snapshot and says which alarms rose and which cleared.
class no_backend_alarms {
public:
    using wall_clock = std::chrono::system_clock;
    struct change {
        std::string service;
        bool raised; // false: cleared
    };
    std::vector<change> update(const snapshot& snap, wall_clock::time_point now);
    const std::map<std::string, wall_clock::time_point>& active() const { return m_since; }

private:
    std::map<std::string, wall_clock::time_point> m_since; // by service
};

// The fields of a snapshot that only the running daemon knows, stamped on each
// snapshot before it is published.
class runtime_stamper {
public:
    struct kept_flows {
        std::string service;
        uint64_t down_weight = 0;
        uint64_t total_weight = 0;
    };
    // keep_pinned_flows: in probation, a service with down backends keeps their
    //   established flows (the failure may be the new config's, a wrong health port);
    // drain_deadline_ms: a draining backend's clock starts when it is first seen
    //   draining and stops when it leaves that state; `now_ms` is the workers' clock.
    // Returns the services whose pinned flows are kept, for the log.
    std::vector<kept_flows> stamp(snapshot& snap, uint64_t now_ms, bool in_probation);

private:
    std::map<uint32_t, uint64_t> m_draining_since; // backend id -> workers' clock ms
};

// How long the control loop's iterations take: the longest since start and in the
// last `window`, so a stall (ARP, probes, the socket all waiting) shows in status.
class loop_watch {
public:
    using clock = std::chrono::steady_clock;
    explicit loop_watch(clock::duration window = std::chrono::seconds(10)) : m_window(window) {}
    void record(clock::duration iteration, clock::time_point now) {
        ++m_iterations;
        m_max = std::max(m_max, iteration);
        if (now - m_window_start >= m_window) {
            m_previous_max = m_window_max;
            m_window_max = {};
            m_window_start = now;
        }
        m_window_max = std::max(m_window_max, iteration);
    }
    // One named step of an iteration, to tell which one stalls.
    void record_step(const char* name, clock::duration took) {
        if (took > m_slowest_step) {
            m_slowest_step = took;
            m_slowest_step_name = name;
        }
    }
    clock::duration max() const { return m_max; }
    const char* slowest_step() const { return m_slowest_step_name; }
    clock::duration slowest_step_took() const { return m_slowest_step; }
    // The longest over at least the last window (this one and the one before).
    clock::duration recent_max() const { return std::max(m_window_max, m_previous_max); }
    uint64_t iterations() const { return m_iterations; }

private:
    clock::duration m_window;
    clock::duration m_max{}, m_window_max{}, m_previous_max{};
    clock::time_point m_window_start{};
    uint64_t m_iterations = 0;
    clock::duration m_slowest_step{};
    const char* m_slowest_step_name = "";
};

} // namespace evenflow::control
