// Per-worker counters: written only by their worker, read by the control thread.
//
// Every counter is declared once, in the lists below (name, kind, help, whether
// /metrics exports it per worker); the structs, `evenctl stats`, /metrics and the
// skew sampler all iterate the same lists. To add a counter, add one line here and
// count it in the worker.
#pragma once

#include "net/parse.hpp"
#include "snapshot/snapshot.hpp"

#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace evenflow::dataplane {

// A counter with one writer. add() is a relaxed load and store, which compiles to a
// plain add on x86-64 (no lock prefix); the atomic type only makes the control
// thread's concurrent read well defined.
class counter {
public:
    void add(uint64_t n = 1) {
        m_value.store(m_value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void set(uint64_t v) { m_value.store(v, std::memory_order_relaxed); }
    uint64_t get() const { return m_value.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> m_value{0};
    static_assert(std::atomic<uint64_t>::is_always_lock_free);
};

// How a figure behaves over time, as Prometheus types it: a counter only grows, a
// gauge is a current value (set by the worker's sweep).
enum class metric_kind : uint8_t { counter, gauge };

// X(name, kind, help, exported): worker-wide figures. `exported` ones are /metrics
// series evenflow_worker_NAME (with _total for counters), labelled by worker; all of
// them are in `evenctl stats` (summed over workers) in this order.
#define EVENFLOW_WORKER_COUNTERS(X)                                                                \
    X(rx_packets, counter, "Packets received.", true)                                              \
    X(rx_bytes, counter, "Bytes received.", true)                                                  \
    X(tx_packets, counter, "Packets transmitted.", true)                                           \
    X(tx_bytes, counter, "Bytes transmitted.", true)                                               \
    X(to_backend, counter, "Client to backend packets forwarded.", false)                          \
    X(to_client, counter, "Backend to client packets forwarded.", false)                           \
    X(tunneled, counter, "Client packets sent to backends inside IPIP (tunnel mode).", false)      \
    X(syns, counter, "SYNs that opened a flow (verified or not).", false)                          \
    X(new_flows, counter,                                                                          \
      "Connections verified: the backend's SYN-ACK and the client's ACK seen (tunnel: the "        \
      "client's first packet after its SYN).",                                                     \
      false)                                                                                       \
    X(stateless_forward, counter,                                                                  \
      "Mid-flow packets with no entry, sent to the Maglev pick (same answer).", false)             \
    X(reverse_stateless, counter, "Replies with no entry, given the VIP from the snapshot.",       \
      false)                                                                                       \
    X(resets_sent, counter, "RSTs sent toward clients (backend down/disabled, no backend).",       \
      false)                                                                                       \
    X(icmp_echo_replies, counter, "ICMP echo replies sent.", false)                                \
    X(arp_replies, counter, "ARP requests for our addresses and VIPs answered.", false)            \
    X(icmp_errors_translated, counter, "ICMP errors about a flow passed on, translated.", false)   \
    X(probe_replies_lost, counter,                                                                 \
      "Health-probe replies dropped on the way to the control thread.", false)                     \
    X(to_control, counter, "Packets handed to the control thread (ARP, probes, unresolved).",      \
      false)                                                                                       \
    X(from_control, counter, "Packets the control thread originated, transmitted here.", false)    \
    X(to_host, counter,                                                                            \
      "Packets for the host's own kernel interfaces (exception path), routing peers' excluded.",   \
      true)                                                                                        \
    X(to_host_peer, counter,                                                                       \
      "Packets from routing peers ([bgp] peers) for the host's own kernel interfaces.", true)      \
    X(handoff_out, counter, "Packets passed to the worker that owns their connection.", true)      \
    X(handoff_in, counter, "Packets received from other workers for connections owned here.",      \
      true)                                                                                        \
    X(flows_active, gauge, "Flow-table entries in use (both directions).", true)                   \
    X(flow_capacity, gauge, "Flow-table capacity.", true)                                          \
    X(flow_evictions, counter, "Embryonic or closing flows evicted from a full bucket.", true)     \
    X(flow_insert_failures, counter, "New flows that found no room (forwarded statelessly).",      \
      true)                                                                                        \
    X(flow_expired, counter, "Flow-table entries freed at their timeout.", false)                  \
    X(loops, counter, "Poll loop iterations (liveness: [bgp] detection).", false)                  \
    X(busy_cycles, counter,                                                                        \
      "TSC cycles of poll iterations that received packets (over rx_packets: cycles/packet).",     \
      true)

// X(name, help): per backend, summed over workers for `evenctl backends`, /metrics
// and the skew detector.
#define EVENFLOW_BACKEND_COUNTERS(X)                                                               \
    X(syns, "SYNs that opened a flow to the backend, verified or not (spoofable).")                \
    X(new_flows, "Connections to the backend whose handshake was verified (what skew judges).")    \
    X(packets_to, "Packets forwarded client to backend.")                                          \
    X(bytes_to, "Bytes forwarded client to backend.")                                              \
    X(packets_from, "Packets forwarded backend to client.")                                        \
    X(bytes_from, "Bytes forwarded backend to client.")                                            \
    X(active_flows,                                                                                \
      "Live verified flows of the backend (established; tunnel: one way), last sweep.")            \
    X(resets, "RSTs sent for flows pinned to the backend.")

// Worker-wide counters. worker: rw, control: ro.
struct alignas(64) worker_counters {
#define EVENFLOW_DECLARE(name, kind, help, exported) counter name;
    EVENFLOW_WORKER_COUNTERS(EVENFLOW_DECLARE)
#undef EVENFLOW_DECLARE
    counter bursts, idle_polls; // loop shape, for profiling; not reported
    counter drops[size_t(net::drop_reason::count_)];
};

// Per-backend counters, indexed by backend id. worker: rw, control: ro.
struct backend_counters {
#define EVENFLOW_DECLARE(name, help) counter name;
    EVENFLOW_BACKEND_COUNTERS(EVENFLOW_DECLARE)
#undef EVENFLOW_DECLARE
};

struct worker_counter_info {
    std::string_view name;
    metric_kind kind;
    std::string_view help;
    bool exported;
    counter worker_counters::*field;
};

inline constexpr worker_counter_info worker_counter_list[] = {
#define EVENFLOW_ROW(name, kind, help, exported)                                                   \
    {#name, metric_kind::kind, help, exported, &worker_counters::name},
    EVENFLOW_WORKER_COUNTERS(EVENFLOW_ROW)
#undef EVENFLOW_ROW
};

struct backend_counter_info {
    std::string_view name;
    std::string_view help;
    counter backend_counters::*field;
};

inline constexpr backend_counter_info backend_counter_list[] = {
#define EVENFLOW_ROW(name, help) {#name, help, &backend_counters::name},
    EVENFLOW_BACKEND_COUNTERS(EVENFLOW_ROW)
#undef EVENFLOW_ROW
};

// Packets dropped by a worker, all reasons but flow_table_full (which is
// informational: the packet was forwarded statelessly).
inline uint64_t dropped(const worker_counters& c) {
    uint64_t sum = 0;
    for (size_t r = 1; r < size_t(net::drop_reason::count_); ++r) {
        if (net::drop_reason(r) != net::drop_reason::flow_table_full) {
            sum += c.drops[r].get();
        }
    }
    return sum;
}

// All of a worker's counters; allocated once at start-up.
struct worker_stats {
    worker_counters totals;
    std::vector<backend_counters> backends =
        std::vector<backend_counters>(backend_registry::max_ids);
};

// Sums over every worker: the control thread's only way to read the counters, so
// that no reader forgets a worker.
inline uint64_t sum(std::span<const worker_stats* const> workers, counter worker_counters::*field) {
    uint64_t total = 0;
    for (const worker_stats* w : workers) {
        total += (w->totals.*field).get();
    }
    return total;
}
inline uint64_t sum(std::span<const worker_stats* const> workers, uint32_t backend_id,
                    counter backend_counters::*field) {
    uint64_t total = 0;
    for (const worker_stats* w : workers) {
        total += (w->backends[backend_id].*field).get();
    }
    return total;
}
inline uint64_t sum_drops(std::span<const worker_stats* const> workers, net::drop_reason reason) {
    uint64_t total = 0;
    for (const worker_stats* w : workers) {
        total += w->totals.drops[size_t(reason)].get();
    }
    return total;
}

} // namespace evenflow::dataplane
