// Active TCP health checking, the bookkeeping half: which backends to probe when,
// which probe a reply answers, and rise/fall counting into up/down verdicts.
// Pure; the daemon sends the SYNs through the data plane and feeds replies back.
#pragma once

#include "config/config.hpp"
#include "control/manager.hpp"
#include "snapshot/snapshot.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace evenflow::control {

class health_checker {
public:
    using clock = std::chrono::steady_clock;
    // Probes leave from the balancer's interface address with a source port from this
    // range, so replies are told apart from client traffic by (address, port) alone.
    static constexpr uint16_t first_probe_port = 61000;
    static constexpr uint16_t probe_ports = 4000;

    struct probe {
        uint32_t backend_id;
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

    // Follows the running snapshot: starts probing new backends (health kind tcp),
    // forgets removed ones, keeps the counts of those that stay.
    void sync(const snapshot& snap, clock::time_point now);

    // Probes due now; each is remembered as outstanding until answered or timed out.
    std::vector<probe> due(clock::time_point now);

    // A TCP segment from (address, src_port) to our probe port `dst_port`.
    // Returns false when it answers no outstanding probe.
    bool on_reply(const net::ip_addr& address, uint16_t src_port, uint16_t dst_port,
                  reply_kind kind, clock::time_point now);

    // Verdict changes since the last call (after replies and timeouts).
    std::vector<transition> take_transitions(clock::time_point now);

    // Every target back to unknown with fresh counts (see config_manager::forget_health).
    void forget_verdicts();

    size_t targets() const { return m_targets.size(); }
    uint64_t probes_sent() const { return m_sent; }

private:
    struct target {
        std::string service;
        std::string backend;
        net::ip_addr address;
        uint16_t port = 0;
        config::health_config cfg;
        health_verdict verdict = health_verdict::unknown;
        uint32_t successes = 0; // consecutive
        uint32_t failures = 0;  // consecutive
        clock::time_point next_probe{};
        std::optional<uint16_t> outstanding_port;
        clock::time_point outstanding_since{};
    };
    void record(uint32_t id, target& t, bool success, const char* reason);

    std::map<uint32_t, target> m_targets;
    std::map<uint16_t, uint32_t> m_by_port; // outstanding probe port -> backend id
    std::vector<transition> m_transitions;
    uint16_t m_next_port = 0;
    uint32_t m_seq = 0x1a2b3c4d;
    uint64_t m_sent = 0;
};

} // namespace evenflow::control
