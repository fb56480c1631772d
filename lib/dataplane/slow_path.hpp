// The control thread's half of the packet path: ARP (answer, learn), packets held
// while their next hop resolves, neighbor refresh, gratuitous ARP for VIPs.
// Control thread only; packets it originates go out through worker 0's inject ring.
#pragma once

#include "config/config.hpp"
#include "dataplane/neighbor.hpp"
#include "dataplane/worker.hpp"

#include <rte_mempool.h>
#include <rte_ring.h>

#include <chrono>
#include <functional>
#include <vector>

namespace evenflow::dataplane {

class slow_path {
public:
    // Called for TCP segments addressed to one of our interface addresses (health
    // probe replies). Returns true when the segment should be answered with a RST
    // (a SYN-ACK to a probe: close the half-open connection at once).
    using local_tcp_handler = std::function<bool(const net::packet_meta&)>;

    slow_path(dataplane_shared& shared, rte_mempool* pool, rte_ring* inject)
        : m_shared(shared), m_pool(pool), m_inject(inject) {}

    // Handles what the workers handed over; republishes the neighbor table when it
    // changed. Returns the number of packets taken from the ring.
    unsigned drain();
    // Sends due ARP requests (new, retried, refreshing); frees packets given up on.
    void tick(std::chrono::steady_clock::time_point now);
    // Sends a TCP SYN from the egress interface's address (a health probe), through
    // worker 0, holding it until the next hop resolves if need be.
    void send_tcp_syn(const net::ip_addr& dst, uint16_t dst_port, uint16_t src_port, uint32_t seq);
    void on_local_tcp(local_tcp_handler handler) { m_local_tcp = std::move(handler); }

    // Resolves backends' and gateways' next hops ahead of traffic.
    void want_neighbors(const config::config& cfg);
    // Gratuitous ARP for VIPs not announced yet.
    void announce_vips(const snapshot& snap);
    // True when a packet waits for a resolution that should be asked for now.
    bool resolution_pending() const { return m_resolve_now; }

    const neighbor_resolver& resolver() const { return m_resolver; }
    uint64_t arp_replies_sent() const { return m_arp_replies; }

private:
    void handle_arp(rte_mbuf* m);
    void handle_unresolved(rte_mbuf* m);
    void handle_local_tcp(rte_mbuf* m);
    void send_arp(uint16_t iface, uint16_t op, const net::ip_addr& sender,
                  const net::ip_addr& target, const rte_ether_addr* target_mac);
    void inject(rte_mbuf* m, uint16_t iface);

    dataplane_shared& m_shared;
    rte_mempool* m_pool;
    rte_ring* m_inject;
    neighbor_resolver m_resolver;
    std::vector<net::ip_addr> m_announced_vips;
    local_tcp_handler m_local_tcp;
    bool m_resolve_now = false;
    uint64_t m_arp_replies = 0;
};

} // namespace evenflow::dataplane
