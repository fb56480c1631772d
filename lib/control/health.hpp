// Active TCP health checking, the bookkeeping half: which endpoints to probe when,
// which probe a reply answers, and rise/fall counting into up/down verdicts.
// Pure; the daemon sends the SYNs through the data plane and feeds replies back.
//
// Built for thousands of backends: one target per (address, port) however many
// pools list it (a verdict applies to every backend id behind it); first probes
// spread evenly over the interval; probes and timeouts kept in time order, so a
// call costs what is due, not what is configured; a global rate limit; and probes
// in flight registered in a probe_table the workers read, so they drop forged replies
// before those cost anything (each endpoint has at most one probe outstanding).
#pragma once

#include "config/config.hpp"
#include "control/manager.hpp"
#include "net/probe_table.hpp"
#include "net/reply.hpp"
#include "snapshot/snapshot.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace evenflow::control {

class health_checker {
public:
    using clock = std::chrono::steady_clock;
    // Probes leave from the balancer's interface address with a source port from this
    // range, so replies are told apart from client traffic by (address, port) alone.
    static constexpr uint16_t first_probe_port = net::first_probe_port;
    static constexpr uint16_t probe_ports = net::probe_ports;
    // Probes sent per second at most, all targets together (a burst of a tenth of a
    // second is allowed); the default probes 10,000 backends at a 1 s interval.
    static constexpr double default_rate_limit = 20'000;

    explicit health_checker(double rate_limit = default_rate_limit) : m_rate(rate_limit) {}

    struct probe {
        uint32_t backend_id; // the first backend behind the endpoint
        net::ip_addr address;
        uint16_t port;     // host order: the backend's port or the pool's health port
        uint16_t src_port; // host order
        uint32_t seq;
    };
    struct transition {
        uint32_t backend_id;
        std::string service;
        std::string backend; // "ADDR:PORT"
        health_verdict from, to;
        std::string reason; // "syn-ack", "rst", "timeout"
    };
    enum class reply_kind : uint8_t { syn_ack, rst };

    // Follows the running snapshot: starts probing new endpoints (health kind tcp),
    // forgets removed ones, keeps the counts of those that stay.
    void sync(const snapshot& snap, clock::time_point now);

    // Probes due now (within the rate limit); each is outstanding until answered or
    // timed out.
    std::vector<probe> due(clock::time_point now);

    // A TCP segment from (address, src_port) to our probe port `dst_port`, carrying
    // acknowledgment number `ack`. It answers a probe only when the probe to that
    // endpoint left from that port and the segment acknowledges its random initial
    // sequence number; a segment that names an outstanding probe but not its sequence
    // is counted as forged and changes nothing. Returns whether it answered a probe.
    // (The workers already matched it against probes(); this is the second check.)
    bool on_reply(const net::ip_addr& address, uint16_t src_port, uint16_t dst_port,
                  reply_kind kind, uint32_t ack, clock::time_point now);

    // Verdict changes since the last call (after replies and timeouts), one per backend.
    // A probe whose reply a worker matched but dropped (its own overload, marked in
    // probes()) timed out proving nothing: it counts neither way (inconclusive) and is
    // sent again. Only that probe: a flood of anything else changes no verdict.
    std::vector<transition> take_transitions(clock::time_point now);

    // The probes in flight, for the workers to match replies against.
    net::probe_table& probes() { return m_probes; }

    // Every target back to unknown with fresh counts (see config_manager::forget_health).
    void forget_verdicts();

    size_t targets() const { return m_targets.size(); }
    uint64_t probes_sent() const { return m_sent; }
    uint64_t probes_deferred() const { return m_deferred; }  // rate limit or full table
    uint64_t forged_replies() const { return m_forged; }     // right endpoint, wrong sequence
    uint64_t inconclusive() const { return m_inconclusive; } // timeouts in our own overload

private:
    using endpoint = std::pair<net::ip_addr, uint16_t>;
    struct member {
        uint32_t id;
        std::string service;
        std::string backend;
    };
    struct target {
        std::vector<member> members;
        config::health_config cfg;
        health_verdict verdict = health_verdict::unknown;
        uint32_t successes = 0; // consecutive
        uint32_t failures = 0;  // consecutive
        clock::time_point next_probe{};
        std::optional<net::probe_table::ticket> outstanding;
        uint32_t outstanding_seq = 0;
        clock::time_point deadline{}; // of the outstanding probe
    };
    void record(target& t, bool success, const char* reason);

    std::shared_ptr<const config::config> m_synced; // targets depend on the config only
    std::map<endpoint, target> m_targets;
    std::set<std::pair<clock::time_point, endpoint>> m_schedule; // next probe of each target
    std::set<std::pair<clock::time_point, endpoint>> m_timeouts; // outstanding probes
    std::vector<transition> m_transitions;
    uint32_t next_isn();
    uint64_t m_isn_state = 0; // xorshift64*, reseeded from the system's entropy
    uint32_t m_isn_left = 0;  // numbers until the next reseed
    uint64_t m_forged = 0;
    uint64_t m_inconclusive = 0;
    uint64_t m_sent = 0;
    uint64_t m_deferred = 0;
    net::probe_table m_probes;
    double m_rate;
    double m_tokens = 0;
    std::optional<clock::time_point> m_tokens_at;
};

} // namespace evenflow::control
