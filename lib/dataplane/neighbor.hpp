// Neighbor (ARP) state: an immutable lookup table that workers read, published
// through RCU, and the control thread's resolver that owns the truth.
#pragma once

#include "net/addr.hpp"

#include <rte_ether.h>
#include <rte_mbuf.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace evenflow::dataplane {

// Immutable once published. Open addressing, at most half full.
class neighbor_table {
public:
    struct entry {
        net::ip_addr ip;
        uint16_t iface = 0;
        rte_ether_addr mac{};
    };
    static std::unique_ptr<neighbor_table> build(std::span<const entry> entries);

    // Hot path: the MAC of `ip` on interface `iface`, or nullptr when unresolved.
    const rte_ether_addr* find(uint16_t iface, const net::ip_addr& ip) const;
    size_t size() const { return m_count; }

private:
    struct slot {
        entry e;
        bool used = false;
    };
    std::vector<slot> m_slots;
    size_t m_count = 0;
};

// Control thread only. Tracks what is resolved, what is being resolved, and the
// packets that wait for a resolution (a few per neighbor; more are dropped and counted).
// What it believes comes from answers to its own requests: an ARP frame about a host
// it never asked for is ignored, and a known host's MAC changes at most once a second
// (each change an event), so forged ARP cannot redirect traffic at will, and an ARP
// storm cannot grow the table. The table and the waiting packets are bounded.
class neighbor_resolver {
public:
    using clock = std::chrono::steady_clock;
    static constexpr size_t max_waiting_per_neighbor = 16;
    static constexpr size_t max_waiting = 4096;    // packets waiting, all neighbors
    static constexpr size_t max_neighbors = 65536; // entries, resolved or not
    static constexpr std::chrono::seconds min_change_interval{1};
    static constexpr std::chrono::seconds reachable_for{30}; // then re-ARP (refresh)
    static constexpr std::chrono::seconds retry_every{1};
    static constexpr int max_tries = 5; // then the neighbor is failed; waiting packets freed

    struct request {
        uint16_t iface;
        net::ip_addr ip;
    };

    // What an ARP frame taught. `released`: packets that waited for the address (the
    // caller fills in the MAC and transmits them).
    struct learnt {
        bool accepted = false;
        bool mac_changed = false; // a resolved neighbor moved to another MAC
        rte_ether_addr old_mac{};
        std::vector<rte_mbuf*> released;
    };
    // An ARP frame from `ip` at `mac`: `reply` when it answers a request (an ARP
    // reply). Accepted for a neighbor we asked about (a reply), or one already
    // resolved (a refresh, or a MAC change at most once per min_change_interval).
    learnt learn(uint16_t iface, const net::ip_addr& ip, const rte_ether_addr& mac, bool reply,
                 clock::time_point now);
    // Declares interest (e.g. a configured backend or gateway) so it is resolved and
    // kept fresh even before traffic needs it. False when the table is full.
    bool want(uint16_t iface, const net::ip_addr& ip);
    // A packet that needs `ip` resolved. Takes ownership; returns false (and does not
    // take it) when the neighbor's queue, or the pool of waiting packets, is full.
    bool hold(uint16_t iface, const net::ip_addr& ip, rte_mbuf* packet);
    // Requests to send now (new, retried, or refreshing ones), and packets to free
    // because their neighbor failed to resolve.
    void tick(clock::time_point now, std::vector<request>& to_send,
              std::vector<rte_mbuf*>& to_free);
    // True when the published table is out of date; build() clears it.
    bool changed() const { return m_changed; }
    std::unique_ptr<neighbor_table> build();

    struct view {
        uint16_t iface;
        net::ip_addr ip;
        rte_ether_addr mac;
        bool resolved;
        int tries;
        size_t waiting;
    };
    std::vector<view> list() const;
    uint64_t dropped_waiting() const { return m_dropped; }
    uint64_t ignored() const { return m_ignored; }         // unsolicited or too soon
    uint64_t mac_changes() const { return m_mac_changes; } // accepted changes
    uint64_t table_full() const { return m_table_full; }   // entries refused

private:
    struct state {
        rte_ether_addr mac{};
        bool resolved = false;
        bool failed = false;
        int tries = 0;
        clock::time_point resolved_at{};
        clock::time_point last_request{};
        clock::time_point changed_at{};
        std::deque<rte_mbuf*> waiting;
    };
    state* entry(uint16_t iface, const net::ip_addr& ip); // creates within the bound
    std::map<std::pair<uint16_t, net::ip_addr>, state> m_neighbors;
    bool m_changed = false;
    size_t m_waiting = 0;
    uint64_t m_dropped = 0, m_ignored = 0, m_mac_changes = 0, m_table_full = 0;
};

} // namespace evenflow::dataplane
