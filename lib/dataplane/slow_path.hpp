// The control thread's half of the packet path: ARP (answer, learn), packets held
// while their next hop resolves, neighbor refresh, gratuitous ARP for VIPs, and the
// host's own traffic to and from its kernel interfaces (kernel_interfaces.hpp).
// Control thread only; packets it originates go out through worker 0's inject ring.
#pragma once

#include "config/config.hpp"
#include "dataplane/kernel_interfaces.hpp"
#include "dataplane/neighbor.hpp"
#include "dataplane/worker.hpp"
#include "net/vrrp.hpp"

#include <rte_mempool.h>
#include <rte_ring.h>

#include <chrono>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

namespace evenflow::dataplane {

class slow_path {
public:
    // Called for a SYN-ACK or RST that arrived on the interface its source is reached
    // by, to our address there, at a probe port, with its acknowledgment number.
    // Returns whether it answers an outstanding probe (a SYN-ACK that does is answered
    // with RST).
    using probe_reply_handler = std::function<bool(const net::packet_meta&, uint32_t ack)>;
    // A neighbor's MAC changed (see neighbor_resolver::learn).
    struct neighbor_event {
        uint16_t iface;
        net::ip_addr ip;
        rte_ether_addr old_mac, new_mac;
    };

    // `kernel` (may be null: no interface has a kernel side) outlives the slow path.
    slow_path(dataplane_shared& shared, rte_mempool* pool, rte_ring* inject,
              kernel_interfaces* kernel = nullptr)
        : m_shared(shared), m_pool(pool), m_inject(inject), m_kernel(kernel) {}

    // Handles what the workers handed over and what the kernel interfaces sent;
    // republishes the neighbor table when it changed. Returns the number of packets
    // taken from the rings and the kernel.
    unsigned drain();
    // Sends due ARP requests (new, retried, refreshing); frees packets given up on.
    void tick(std::chrono::steady_clock::time_point now);
    // Sends a TCP SYN from the egress interface's address (a health probe), through
    // worker 0, holding it until the next hop resolves if need be.
    void send_tcp_syn(const net::ip_addr& dst, uint16_t dst_port, uint16_t src_port, uint32_t seq);
    void on_probe_reply(probe_reply_handler handler) { m_probe_reply = std::move(handler); }
    std::vector<neighbor_event> take_events() { return std::exchange(m_events, {}); }
    uint64_t forged_probe_replies() const { return m_forged_probe_replies; }

    // Resolves backends' and gateways' next hops ahead of traffic.
    void want_neighbors(const config::config& cfg);
    // Gratuitous ARP for VIPs not announced yet.
    void announce_vips(const snapshot& snap);
    // True when a packet waits for a resolution that should be asked for now.
    bool resolution_pending() const { return m_resolve_now; }

    const neighbor_resolver& resolver() const { return m_resolver; }

    // ---- the backends' moving gateways (config vrrp; net/vrrp.hpp), slow_path_vrrp.cpp

    // Starts an election per interface with a vrrp gateway (as a backup: the address is
    // taken when no better host advertises for three intervals).
    void start_gateways(const std::vector<config::interface_config>& interfaces,
                        std::chrono::steady_clock::time_point now);
    // Timers, and whether this host should hold gateways (live, not drained, not
    // stopping): out of service, a holder hands over to a peer at once.
    void tick_gateways(bool in_service, std::chrono::steady_clock::time_point now);
    // Whether a gateway was just handed over and frames sent to it before the peer
    // took it may still arrive (SIGTERM waits for this).
    bool gateway_handover_pending(std::chrono::steady_clock::time_point now) const;
    // A last priority-0 advert from each gateway held (the daemon is stopping).
    void resign_gateways(std::chrono::steady_clock::time_point now);
    struct gateway {
        uint16_t iface = 0;
        config::vrrp_config settings;
        net::vrrp_election election;
        std::chrono::steady_clock::time_point since{};                   // of its current role
        std::optional<std::chrono::steady_clock::time_point> release_at; // stop accepting
        uint64_t adverts_sent = 0, adverts_received = 0, adverts_refused = 0;
    };
    const std::vector<gateway>& gateways() const { return m_gateways; }

private:
    void handle_vrrp(rte_mbuf* m);
    void apply(gateway& g, const net::vrrp_election::actions& a,
               std::chrono::steady_clock::time_point now);
    void send_vrrp_advert(gateway& g, uint8_t priority);
    void send_gateway_arp(const gateway& g);

    void handle_arp(rte_mbuf* m);
    void handle_unresolved(rte_mbuf* m);
    void handle_probe_reply(rte_mbuf* m);
    // From the interface's MAC, or from `sender_mac` (a vrrp gateway's virtual MAC).
    void send_arp(uint16_t iface, uint16_t op, const net::ip_addr& sender,
                  const net::ip_addr& target, const rte_ether_addr* target_mac,
                  const net::mac_addr* sender_mac = nullptr);
    void inject(rte_mbuf* m, uint16_t iface);
    // To the kernel side of m->port's interface, or freed when it has none.
    void to_kernel(rte_mbuf* m);

    dataplane_shared& m_shared;
    rte_mempool* m_pool;
    rte_ring* m_inject;
    kernel_interfaces* m_kernel;
    neighbor_resolver m_resolver;
    std::vector<net::ip_addr> m_announced_vips;
    probe_reply_handler m_probe_reply;
    std::vector<neighbor_event> m_events;
    std::vector<gateway> m_gateways;
    std::chrono::steady_clock::time_point m_gateway_now{}; // of the latest tick
    uint64_t m_forged_probe_replies = 0;                   // wrong interface or address
    bool m_resolve_now = false;
};

} // namespace evenflow::dataplane
