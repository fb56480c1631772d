// Per-worker connection tracking: a fixed-capacity hash table of flows with
// per-state timeouts and lazy expiry. Single writer (its worker); no allocation,
// no locks after create().
#pragma once

#include "net/flow_key.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace evenflow::flow {

// A flow is pinned (never evicted) only once the backend's side of it has been seen:
// a SYN, or a mid-flow packet for which no entry existed (a restart, another host's
// flow, or a forged ACK), gives an evictable entry until the backend answers.
enum class flow_state : uint8_t {
    syn,         // the client's SYN: evictable, syn timeout
    unverified,  // a mid-flow packet made the entry: evictable, syn timeout
    established, // the backend has answered: pinned, established timeout
    closing,     // FIN or RST seen: evictable, closing timeout
};

enum class flow_direction : uint8_t { client_to_backend, backend_to_client };

// What the worker needs to forward a packet of this flow without asking the
// snapshot: the address/port to rewrite to and the backend it counts against.
// Laid out to fill the 24 bytes left beside the key in one cache line.
struct flow_value {
    uint32_t backend_id = 0;
    net::ip_addr nat_addr; // backend (forward) or VIP (reverse)
    uint16_t nat_port = 0; // network byte order
    flow_state state = flow_state::syn;
    flow_direction direction = flow_direction::client_to_backend;
};
static_assert(sizeof(flow_value) == 24);

struct alignas(64) flow_entry {
    net::flow_key key;
    flow_value value;
};
static_assert(sizeof(flow_entry) == 64);

// Timeouts in milliseconds of the worker's coarse clock. No defaults here: the
// config's [dataplane] timeouts are the only ones (see dataplane::worker_config).
struct flow_timeouts_ms {
    uint32_t syn = 0;
    uint32_t established = 0;
    uint32_t closing = 0;
};

struct flow_table_stats {
    uint64_t lookups = 0;
    uint64_t hits = 0;
    uint64_t inserts = 0;
    uint64_t expired = 0;         // entries found past their deadline and freed
    uint64_t evictions = 0;       // live syn/closing entries replaced when a bucket was full
    uint64_t insert_failures = 0; // bucket full of established flows: not inserted
    uint64_t removals = 0;
};

enum class insert_outcome : uint8_t { inserted, evicted_other, full };

class flow_table {
public:
    // Capacity is rounded up to a power of two number of 8-way buckets.
    // Memory is reserved and touched once here; nullptr if it cannot be had.
    static std::unique_ptr<flow_table> create(size_t capacity, flow_timeouts_ms timeouts);
    ~flow_table();
    flow_table(const flow_table&) = delete;
    flow_table& operator=(const flow_table&) = delete;

    // Pull the bucket for `hash` into cache ahead of lookup (the burst's first pass).
    void prefetch(uint32_t hash) const;
    // Optional middle pass, once the bucket has arrived: pull in the entry whose
    // signature matches, so lookup() does not wait on a second cache miss.
    void prefetch_entry(uint32_t hash) const;
    // Both candidate buckets of a key about to be inserted (a new flow's SYN, and its
    // reverse key), for writing.
    void prefetch_for_insert(uint32_t hash) const;
    // Once those buckets have arrived: the entry an insert would fill (the first free
    // way, primary bucket first), for writing.
    void prefetch_insert_slot(uint32_t hash) const;

    // The live entry for `key`, or nullptr. An entry past its deadline counts as a
    // miss and is freed. `now_ms` is the worker's coarse clock (wraps; compared modulo 2^32).
    flow_entry* lookup(const net::flow_key& key, uint32_t hash, uint32_t now_ms);

    // Adds a flow (the caller has checked it is absent). Policy when the key's bucket
    // is full: reuse an expired slot; else replace the live syn/closing entry nearest
    // its deadline (counted as an eviction); else refuse (counted as a failure, the
    // caller forwards statelessly). Returns the entry or nullptr with `outcome` set.
    // A key has two candidate buckets (see flow_table.cpp); "its bucket" means both,
    // and an insert may move one other entry to that entry's other bucket, so entry
    // pointers are valid only until the next insert or remove.
    // `keep`, when given, is never chosen as the victim: a flow's reverse entry must
    // not evict the forward entry inserted just before it.
    flow_entry* insert(const net::flow_key& key, uint32_t hash, const flow_value& value,
                       uint32_t now_ms, insert_outcome* outcome = nullptr,
                       const net::flow_key* keep = nullptr);

    // Sets the state and pushes the deadline out by that state's timeout.
    void refresh(flow_entry* entry, flow_state state, uint32_t now_ms);

    void remove(flow_entry* entry);

    size_t capacity() const;
    size_t size() const; // live entries, counting ones that expired but were not yet freed
    const flow_table_stats& stats() const;

    // Visits every live entry (control-plane or test use, not the hot path).
    template <typename F>
    void for_each(uint32_t now_ms, F&& visit);

    // Incremental housekeeping for the worker's idle time: looks at up to `max_slots`
    // slots starting at `cursor`, frees the expired ones (counted in `expired`) and
    // calls `visit(const flow_entry&)` for each live one. Returns the cursor to pass
    // next time; 0 means the pass reached the end of the table.
    template <typename F>
    size_t sweep(size_t cursor, size_t max_slots, uint32_t now_ms, F&& visit);

private:
    flow_table() = default;
    struct bucket;
    static constexpr unsigned max_move_tries = 8;
    bucket* m_buckets = nullptr;
    flow_entry* m_entries = nullptr;
    // One byte per bucket, bit w set when way w holds an established flow (never
    // evicted). A copy of the entries' state kept beside them so that choosing a
    // victim in a full bucket pair reads two bytes, not 16 entries: a SYN flood into
    // a full table would otherwise pay 16 cache misses per new flow.
    uint8_t* m_pinned_ways = nullptr;
    bool is_pinned(size_t slot) const { return (m_pinned_ways[slot / 8] >> (slot % 8)) & 1; }
    void set_pinned(size_t slot, bool pinned) {
        uint8_t bit = uint8_t(1u << (slot % 8));
        m_pinned_ways[slot / 8] =
            uint8_t(pinned ? m_pinned_ways[slot / 8] | bit : m_pinned_ways[slot / 8] & ~bit);
    }
    size_t m_bucket_mask = 0;
    void* m_map = nullptr; // the one mapping holding buckets then entries
    size_t m_bytes = 0;    // its length
    size_t m_live = 0;
    flow_timeouts_ms m_timeouts;
    flow_table_stats m_stats;
    bool deadline_passed(uint32_t deadline, uint32_t now) const;
    uint32_t deadline_for(flow_state state, uint32_t now) const;
    // for_each/sweep support; `slot` is an entry index (bucket * 8 + way).
    uint32_t slot_deadline(size_t slot) const;
    bool slot_used(size_t slot) const;
    void free_slot(size_t slot);
};

template <typename F>
void flow_table::for_each(uint32_t now_ms, F&& visit) {
    size_t slots = (m_bucket_mask + 1) * 8;
    for (size_t i = 0; i < slots; ++i) {
        if (slot_used(i) && !deadline_passed(slot_deadline(i), now_ms)) {
            visit(m_entries[i]);
        }
    }
}

template <typename F>
size_t flow_table::sweep(size_t cursor, size_t max_slots, uint32_t now_ms, F&& visit) {
    const size_t slots = (m_bucket_mask + 1) * 8;
    if (cursor >= slots) {
        cursor = 0;
    }
    if (max_slots == 0) {
        max_slots = 1;
    }
    const size_t end = slots - cursor > max_slots ? cursor + max_slots : slots;
    for (size_t i = cursor; i < end; ++i) {
        if (!slot_used(i)) {
            continue;
        }
        if (deadline_passed(slot_deadline(i), now_ms)) {
            free_slot(i);
            ++m_stats.expired;
        } else {
            visit(static_cast<const flow_entry&>(m_entries[i]));
        }
    }
    return end == slots ? 0 : end;
}

} // namespace evenflow::flow
