// The BGP speaker evenflowd drives ([bgp]): BIRD 2 as a child process that dies with
// the daemon (PR_SET_PDEATHSIG), one static protocol per VIP enabled or disabled over
// BIRD's control socket as lib/control/announce.hpp decides, and a watchdog process
// that kills BIRD when the daemon stops making progress (SIGSTOP, a wedged worker):
// the BGP session drops and routers withdraw at once. The daemon restarts BIRD when
// it is live again.
#pragma once

#include "api/protocol.hpp"
#include "config/config.hpp"
#include "control/announce.hpp"

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace evenflow::daemon {

class bgp_speaker {
public:
    bgp_speaker() = default;
    bgp_speaker(const bgp_speaker&) = delete;
    bgp_speaker& operator=(const bgp_speaker&) = delete;
    ~bgp_speaker();

    // Before the workers run (one thread): makes BIRD's directory `dir` (beside the
    // control socket and named after it: two daemons never share one), writes BIRD's
    // config there (every VIP withdrawn), checks it (bird -p) and forks the watchdog.
    // Run by root, BIRD runs as the user `bird` (Debian bird2's) with only the
    // capabilities BIRD keeps for itself; `dir` is that user's (setgid: the files
    // evenflowd writes there are readable by it). False with *error.
    bool prepare(const config::bgp_config& bgp, const std::vector<net::ip_addr>& vips,
                 const std::string& dir, std::string* error);
    // Every control-loop iteration: the heartbeat when live, BIRD (re)started when it
    // is not running and the daemon is live, and the announcements brought in line.
    // `progress`: when the daemon last made progress everywhere (the heartbeat the
    // watchdog checks against [bgp] detection). BIRD's configuration file says what
    // is announced (rewritten when that changes); a changed VIP set reloads it.
    void tick(const std::vector<control::vip_announcement>& wanted, bool live,
              std::chrono::steady_clock::time_point progress,
              std::chrono::steady_clock::time_point now);
    // Withdraws everything now (SIGTERM, drain-host of all).
    void withdraw_all();
    // Stops BIRD and the watchdog.
    void stop();
    api::json status() const;
    bool running() const { return m_bird_pid > 0; }

private:
    struct shared_page {
        std::atomic<int64_t> heartbeat_ms{0}; // daemon: rw; watchdog: ro
        std::atomic<int32_t> bird_pid{0};     // daemon: rw; watchdog: clears when it kills
        std::atomic<int64_t> detection_ms{1000};
        std::atomic<uint64_t> kills{0}; // watchdog: rw
    };
    bool start_bird(std::string* error);
    // BIRD's user when evenflowd runs as root.
    static constexpr const char* bird_user = "bird";
    // `dir`, made the BIRD user's when there is one and we are root.
    bool make_directory(const std::string& dir, std::string* error);
    // Forks the watchdog (at prepare, and again should it die).
    bool start_watchdog(std::string* error);
    void reap();
    // One command on BIRD's socket; true when BIRD accepted it.
    bool birdc(const std::string& command, std::string* reply);

    config::bgp_config m_bgp;
    std::string m_conf, m_ctl, m_log, m_pidfile;
    bool m_drop_privileges = false; // -u bird -g bird
    shared_page* m_page = nullptr;
    pid_t m_watchdog = -1;
    pid_t m_bird_pid = -1;
    std::map<net::ip_addr, bool> m_applied; // what BIRD was told, since it started
    std::vector<control::vip_announcement> m_wanted;
    std::chrono::steady_clock::time_point m_next_start{}, m_next_reassert{};
    std::chrono::steady_clock::time_point m_socket_ready{}; // BIRD just started: not before
    uint64_t m_starts = 0;
    bool m_live = true;
    std::vector<net::ip_addr> m_vips; // in BIRD's configuration
    std::string m_written;            // the configuration BIRD runs (or will, at start)
    std::vector<std::pair<net::ip_addr, bool>> m_written_state; // its VIPs, announced or not
    std::chrono::steady_clock::time_point m_next_configure{};   // after a failed one
    // enable (true) or disable (false) refused or unanswered: the same is asked again
    // at the next reassert; the other at once (a drain-host must not wait for it).
    std::map<net::ip_addr, bool> m_failed;
    // Writes BIRD's configuration for `wanted` (`said`: its VIPs, announced or not) and
    // reloads BIRD when the VIP set changed; on a refusal BIRD keeps its configuration
    // and so does the file.
    void write_config(const std::vector<control::vip_announcement>& wanted,
                      std::vector<std::pair<net::ip_addr, bool>> said,
                      std::chrono::steady_clock::time_point now);
};

} // namespace evenflow::daemon
