// The skew detector: compares each backend's observed share of its service's new
// flows (over a sliding window), of its active flows, and of the bytes and packets
// it carried in the window (both directions) with the share the operator configured,
// and keeps alarms with hysteresis.
//
// Who sent the traffic decides what a skew means, where the hash pins each client to
// one backend (hash = "src_ip"; with the source port in the hash a client's own
// connections follow the config, so they prove it wrong as well as anyone's). There,
// a skewed share that is fair again once the window's heaviest clients are taken out
// (control/clients.hpp) is the traffic's doing, not the config's: a `heavy_hitter`
// alarm that names them and never rolls back. The rule: on each hot backend, the
// clients that each opened at least
// heavy_hitter_share (10%) of its excess over the expected count (at most five) are
// taken out, counted by the lower bound of their sketch counts, from the backend and
// from the service's total; every backend of the service is judged again; a backend
// whose verdict goes away is explained by them. A skew that stays is the config's
// (hot or starved, which may roll back): one heavy client cannot hide a bad config,
// since its own connections follow the config too. Addresses are tried first, then
// /24 (IPv6 /64) networks. Unverified SYNs are judged the same way, but only ever
// raise heavy_hitter alarms (they can come from anyone).
#pragma once

#include "config/choices.hpp"
#include "config/config.hpp"
#include "control/clients.hpp"

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
    // The service's hash keeps each client on one backend (hash = "src_ip"): only then
    // can a few clients skew it whatever the config. With a hash over the source port
    // a client's connections spread as the config says, so a skew is the config's
    // even when one client sends them all (a single test client, a NAT gateway).
    bool pins_clients = false;
    uint64_t new_flows = 0;    // cumulative, verified connections
    uint64_t syns = 0;         // cumulative, SYNs that opened a flow (verified or not)
    uint64_t active_flows = 0; // current
    uint64_t bytes = 0;        // cumulative, to and from the backend
    uint64_t packets = 0;      // cumulative, to and from the backend
};

// heavy_hitter: skewed by a few clients (named), not by the config.
enum class skew_kind : uint8_t { hot, starved, heavy_hitter };
constexpr auto choice_names(skew_kind) { // config/choices.hpp
    return std::to_array<std::string_view>({"hot", "starved", "heavy_hitter"});
}
// What an alarm rests on. Flow counts are what a config decides (weights, health);
// bytes and packets are also what the traffic is (one client's large downloads), and
// unverified SYNs are what anyone sends, so only flow-based alarms that no heavy
// client explains may trigger the automatic rollback (see causes_rollback).
enum class skew_basis : uint8_t { new_flows, active_flows, bytes, packets, syns };
constexpr auto choice_names(skew_basis) { // config/choices.hpp
    return std::to_array<std::string_view>(
        {"new_flows", "active_flows", "bytes", "packets", "syns"});
}

// A client that explains a heavy_hitter alarm, with the lower bounds of its counts
// in the window (verified connections, or SYNs for basis syns).
struct heavy_client {
    std::string client; // "198.18.9.9" or "198.18.9.0/24"
    uint64_t to_backend = 0;
    uint64_t to_service = 0;
};

struct skew_alarm {
    std::string service;
    std::string backend;
    uint32_t id = 0;
    skew_kind kind = skew_kind::hot;
    skew_basis basis = skew_basis::new_flows;
    double observed_share = 0;
    double expected_share = 0;
    uint64_t flows = 0; // the service's flows (or bytes, packets) the verdict rests on
    std::vector<heavy_client> clients; // heavy_hitter: who, heaviest first
    std::chrono::system_clock::time_point since;
};
inline bool causes_rollback(const skew_alarm& a) {
    return a.kind != skew_kind::heavy_hitter &&
           (a.basis == skew_basis::new_flows || a.basis == skew_basis::active_flows);
}

struct backend_view {
    double observed_share = 0; // of new flows in the window (0 when no flows)
    double new_flows_per_s = 0;
    double bytes_share = 0;        // of the service's bytes in the window
    double packets_share = 0;      // of the service's packets in the window
    uint64_t window_new_flows = 0; // verified connections in the window
    uint64_t window_syns = 0;      // SYNs in the window, verified or not
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
    // A client explains a hot backend when it opened at least this share of the
    // backend's excess (and the skew goes away without the clients that do).
    static constexpr double heavy_hitter_share = 0.10;
    static constexpr size_t max_named_clients = 5;

    explicit skew_detector(config::skew_config cfg = {}) : m_cfg(cfg), m_clients(cfg.window) {}
    void reconfigure(const config::skew_config& cfg) {
        m_cfg = cfg;
        m_clients.set_window(cfg.window);
    }
    // Forgets the windows: after a rollback they still hold the bad period, and
    // judging the restored config by them would raise stale alarms. Active alarms
    // stay visible and clear through the usual hysteresis.
    void reset_windows() {
        for (auto& [id, h] : m_history) {
            h.points.clear();
        }
        m_clients.reset();
    }
    // The window's heaviest clients: fed every second, before tick(), with the
    // workers' sealed sketches.
    client_window& clients() { return m_clients; }
    const client_window& clients() const { return m_clients; }

    struct event {
        bool raised; // false: cleared
        skew_alarm alarm;
    };
    // Feeds one sample of every configured backend; returns alarms raised or cleared
    // (and raised again when an alarm turns into one that may roll back).
    std::vector<event> tick(clock::time_point now, std::chrono::system_clock::time_point wall,
                            const std::vector<backend_sample>& samples);

    const std::map<uint32_t, skew_alarm>& alarms() const { return m_alarms; }
    backend_view view(uint32_t id) const;

private:
    struct point {
        clock::time_point at;
        uint64_t new_flows, syns, bytes, packets; // cumulative
    };
    struct history {
        std::deque<point> points;
        int calm_ticks = 0;
        uint64_t seen_tick = 0;
    };
    config::skew_config m_cfg;
    client_window m_clients;
    std::unordered_map<uint32_t, history> m_history;
    std::unordered_map<uint32_t, backend_view> m_views;
    uint64_t m_tick = 0;
    std::map<uint32_t, skew_alarm> m_alarms;
};

} // namespace evenflow::control
