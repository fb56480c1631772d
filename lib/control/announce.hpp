// Which VIPs a host announces over BGP, and the fingerprint that says whether hosts
// behind one ECMP group map flows alike. Pure: the daemon drives the speaker
// (app/evenflowd/bgp.cpp) with what this decides.
//
// A VIP is announced while (a) the daemon is live: its control loop and every
// worker's loop have made progress within [bgp] detection; (b) the host is not
// drained (evenctl drain-host, SIGTERM); (c) at least one service on the VIP has a
// backend that takes new flows. Anything else withdraws it.
#pragma once

#include "config/config.hpp"
#include "control/manager.hpp"
#include "snapshot/snapshot.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace evenflow::control {

// A hash (16 hex digits) of everything that decides a new flow's backend: the pick
// hash's seed, each service's address, port, pool, hash mode and table size, its
// backend set with weights, and operator states (drain, disable). Health is left out:
// it is per host and transient, and flapping must not page anyone. Equal on hosts whose flows map
// identically; independent of the order services and backends are listed in.
std::string fingerprint(const config::config& cfg, const config_manager& manager);

struct vip_announcement {
    net::ip_addr vip;
    bool announce = false;
    std::string why; // "announced", "no backend up", "host drained", "not live"
};

// The VIPs of `snap` and whether each is announced now.
std::vector<vip_announcement> decide_announcements(const snapshot& snap, bool live, bool drained);

// Progress of the control loop and the workers, for liveness: live while every
// counter moved within `detection` of `now`.
class liveness {
public:
    // counters: the control loop's iteration count first, then one per worker.
    void observe(const std::vector<uint64_t>& counters, std::chrono::steady_clock::time_point now);
    bool live(std::chrono::steady_clock::time_point now,
              std::chrono::steady_clock::duration detection) const;
    // When the counter that moved longest ago last moved: the daemon's heartbeat.
    std::chrono::steady_clock::time_point oldest() const;
    // Which counter is stuck ("" when none): "control loop" or "worker N".
    std::string stuck(std::chrono::steady_clock::time_point now,
                      std::chrono::steady_clock::duration detection) const;

private:
    std::vector<uint64_t> m_last;
    std::vector<std::chrono::steady_clock::time_point> m_moved;
};

// BIRD 2's configuration for a host: one BGP session per [bgp] peer, exporting the
// routes of static protocols named vip_N (one per VIP, enabled when it is announced,
// disabled when not: the daemon enables and disables them at run time, and keeps the
// file saying the same, so that a reconfigure or a restart of BIRD changes nothing).
// The routes are blackholes that only BGP exports (no kernel protocol).
std::string render_bird_config(const config::bgp_config& bgp,
                               const std::vector<vip_announcement>& vips,
                               const std::string& log_path);
// BIRD's log (in the run directory, a tmpfs) is rotated at this size, one old file
// kept: a peer that keeps failing cannot fill memory.
inline constexpr size_t bird_log_limit = 4'000'000;
// The static protocol of a VIP in that configuration.
std::string bird_protocol(const net::ip_addr& vip);

} // namespace evenflow::control
