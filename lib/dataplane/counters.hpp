// Per-worker counters: written only by their worker, read by the control thread.
#pragma once

#include "net/parse.hpp"
#include "snapshot/snapshot.hpp"

#include <atomic>
#include <cstdint>
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

// Worker-wide counters. worker: rw, control: ro.
struct alignas(64) worker_counters {
    counter rx_packets, rx_bytes, tx_packets, tx_bytes;
    counter to_backend;        // client -> backend packets forwarded
    counter to_client;         // backend -> client packets forwarded
    counter new_flows;         // flows created by a SYN
    counter stateless_forward; // mid-flow packet with no entry: Maglev pick (same answer)
    counter reverse_stateless; // reply with no entry: VIP from the snapshot
    counter resets_sent;       // RSTs toward clients (backend down/disabled, no backend)
    counter icmp_echo_replies;
    counter to_control;   // handed to the control thread (ARP, probes, unresolved)
    counter from_control; // originated by the control thread, transmitted here
    counter bursts, idle_polls;
    counter drops[size_t(net::drop_reason::count_)];
    // Flow-table figures, refreshed by the worker's sweep.
    counter flows_active, flow_capacity, flow_evictions, flow_insert_failures, flow_expired;
};

// Per-backend counters, indexed by backend id. worker: rw, control: ro.
struct backend_counters {
    counter new_flows;
    counter packets_to, bytes_to;     // client -> backend
    counter packets_from, bytes_from; // backend -> client
    counter active_flows;             // live forward entries at the last completed sweep
    counter resets;                   // RSTs sent for flows pinned to it
};

// All of a worker's counters; allocated once at start-up.
struct worker_stats {
    worker_counters totals;
    std::vector<backend_counters> backends =
        std::vector<backend_counters>(backend_registry::max_ids);
};

} // namespace evenflow::dataplane
