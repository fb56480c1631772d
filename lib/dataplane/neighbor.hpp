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
class neighbor_resolver {
public:
    using clock = std::chrono::steady_clock;
    static constexpr size_t max_waiting_per_neighbor = 16;
    static constexpr std::chrono::seconds reachable_for{30}; // then re-ARP (refresh)
    static constexpr std::chrono::seconds retry_every{1};
    static constexpr int max_tries = 5; // then the neighbor is failed; waiting packets freed

    struct request {
        uint16_t iface;
        net::ip_addr ip;
    };

    // A mapping learnt from an ARP reply or request. Returns the packets that were
    // waiting for it (the caller fills in the MAC and transmits them).
    std::vector<rte_mbuf*> learn(uint16_t iface, const net::ip_addr& ip, const rte_ether_addr& mac,
                                 clock::time_point now);
    // Declares interest (e.g. a configured backend or gateway) so it is resolved and
    // kept fresh even before traffic needs it.
    void want(uint16_t iface, const net::ip_addr& ip);
    // A packet that needs `ip` resolved. Takes ownership; returns false (and does not
    // take it) when the neighbor's queue is full.
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

private:
    struct state {
        rte_ether_addr mac{};
        bool resolved = false;
        bool failed = false;
        int tries = 0;
        clock::time_point resolved_at{};
        clock::time_point last_request{};
        std::deque<rte_mbuf*> waiting;
    };
    std::map<std::pair<uint16_t, net::ip_addr>, state> m_neighbors;
    bool m_changed = false;
    uint64_t m_dropped = 0;
};

} // namespace evenflow::dataplane
