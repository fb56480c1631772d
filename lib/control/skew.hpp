// The skew detector: compares each backend's observed share of its service's new
// flows (over a sliding window), of its active flows, and of the bytes and packets
// it carried in the window (both directions) with the share the operator configured,
// and keeps alarms with hysteresis.
#pragma once

#include "config/config.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace evenflow::control {

// One backend's cumulative figures at one instant (summed over workers).
struct backend_sample {
    uint32_t id = 0;
    std::string service;
    std::string backend;       // "ADDR:PORT"
    double expected_share = 0; // configured weight share
    uint64_t new_flows = 0;    // cumulative
    uint64_t active_flows = 0; // current
    uint64_t bytes = 0;        // cumulative, to and from the backend
    uint64_t packets = 0;      // cumulative, to and from the backend
};

enum class skew_kind : uint8_t { hot, starved };
// What an alarm rests on. Flow counts are what a config decides (weights, health);
// bytes and packets are also what the traffic is (one client's large downloads), so
// only flow-based alarms may trigger the automatic rollback (see causes_rollback).
enum class skew_basis : uint8_t { new_flows, active_flows, bytes, packets };
inline bool causes_rollback(skew_basis b) {
    return b == skew_basis::new_flows || b == skew_basis::active_flows;
}

struct skew_alarm {
    std::string service;
    std::string backend;
    uint32_t id = 0;
    skew_kind kind = skew_kind::hot;
    skew_basis basis = skew_basis::new_flows;
    double observed_share = 0;
    double expected_share = 0;
    uint64_t flows = 0; // the service's flows (or bytes, packets) the verdict rests on
    std::chrono::system_clock::time_point since;
};

struct backend_view {
    double observed_share = 0; // of new flows in the window (0 when no flows)
    double new_flows_per_s = 0;
    double bytes_share = 0;   // of the service's bytes in the window
    double packets_share = 0; // of the service's packets in the window
    bool skewed = false;
};

std::string_view to_string(skew_kind k);
std::string_view to_string(skew_basis b);
// One line for `evenctl skew`: what was seen, and whether it points at the config
// (flows) or at the traffic (bytes, packets over fair flows).
std::string explain(const skew_alarm& a, const backend_view& v);

class skew_detector {
public:
    using clock = std::chrono::steady_clock;
    // Standard deviations a share must stand off its expectation (binomial) to count.
    static constexpr double significance_z = 4.0;
    // Ticks a cleared condition must hold before an alarm is cleared.
    static constexpr int clear_after_ticks = 3;

    explicit skew_detector(config::skew_config cfg = {}) : m_cfg(cfg) {}
    void reconfigure(const config::skew_config& cfg) { m_cfg = cfg; }
    // Forgets the windows: after a rollback they still hold the bad period, and
    // judging the restored config by them would raise stale alarms. Active alarms
    // stay visible and clear through the usual hysteresis.
    void reset_windows() {
        for (auto& [id, h] : m_history) {
            h.points.clear();
        }
    }

    struct event {
        bool raised; // false: cleared
        skew_alarm alarm;
    };
    // Feeds one sample of every configured backend; returns alarms raised or cleared.
    std::vector<event> tick(clock::time_point now, std::chrono::system_clock::time_point wall,
                            const std::vector<backend_sample>& samples);

    const std::map<uint32_t, skew_alarm>& alarms() const { return m_alarms; }
    backend_view view(uint32_t id) const;

private:
    struct point {
        clock::time_point at;
        uint64_t new_flows, bytes, packets; // cumulative
    };
    struct history {
        std::deque<point> points;
        int calm_ticks = 0;
        uint64_t seen_tick = 0;
    };
    config::skew_config m_cfg;
    std::unordered_map<uint32_t, history> m_history;
    std::unordered_map<uint32_t, backend_view> m_views;
    uint64_t m_tick = 0;
    std::map<uint32_t, skew_alarm> m_alarms;
};

} // namespace evenflow::control
