#include "dataplane/slow_path.hpp"

#include "net/bytes.hpp"
#include "net/reply.hpp"

#include <rte_ether.h>
#include <rte_mbuf.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace evenflow::dataplane {

namespace {

net::mac_addr to_mac(const rte_ether_addr& a) {
    net::mac_addr m;
    std::memcpy(m.data(), a.addr_bytes, 6);
    return m;
}

} // namespace

void slow_path::inject(rte_mbuf* m, uint16_t iface) {
    m->port = iface;
    if (m_inject == nullptr || rte_ring_sp_enqueue(m_inject, m) != 0) {
        rte_pktmbuf_free(m);
    }
}

void slow_path::to_kernel(rte_mbuf* m) {
    if (m_kernel == nullptr) {
        rte_pktmbuf_free(m);
        return;
    }
    m_kernel->deliver(m);
}

void slow_path::send_arp(uint16_t iface, uint16_t op, const net::ip_addr& sender,
                         const net::ip_addr& target, const rte_ether_addr* target_mac,
                         const net::mac_addr* sender_mac) {
    rte_mbuf* m = rte_pktmbuf_alloc(m_pool);
    if (m == nullptr) {
        return;
    }
    constexpr uint16_t min_frame = 60; // minimum Ethernet frame without FCS, zero padded
    char* data = rte_pktmbuf_append(m, min_frame);
    std::memset(data, 0, min_frame);
    net::mac_addr target_mac_bytes{};
    if (target_mac != nullptr) {
        target_mac_bytes = to_mac(*target_mac);
    }
    net::build_arp({reinterpret_cast<uint8_t*>(data), min_frame}, op,
                   sender_mac != nullptr ? *sender_mac : to_mac(m_shared.interfaces[iface].mac),
                   sender, target_mac_bytes, target);
    inject(m, iface);
}

void slow_path::handle_arp(rte_mbuf* m) {
    uint16_t iface = m->port;
    std::span<const uint8_t> frame{rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)};
    net::packet_meta meta;
    net::arp_fields arp;
    if (iface >= m_shared.interfaces.size() ||
        net::parse_frame(frame, meta) != net::drop_reason::none ||
        !net::read_arp(frame, meta, arp)) {
        rte_pktmbuf_free(m);
        return;
    }
    const interface_info& ifc = m_shared.interfaces[iface];
    // Requests for our addresses were answered by the worker; here is only what we
    // may learn: replies to our requests, and news of neighbors we already know.
    if (ifc.address.contains(arp.sender_ip) && !arp.sender_ip.is_unspecified() &&
        arp.sender_ip != ifc.address.addr) {
        rte_ether_addr mac;
        std::memcpy(mac.addr_bytes, arp.sender_mac.data(), 6);
        auto learnt = m_resolver.learn(iface, arp.sender_ip, mac, arp.op == net::arp_op_reply,
                                       std::chrono::steady_clock::now());
        if (learnt.mac_changed) {
            m_events.push_back({iface, arp.sender_ip, learnt.old_mac, mac});
        }
        for (rte_mbuf* waiting : learnt.released) {
            auto* eth = rte_pktmbuf_mtod(waiting, rte_ether_hdr*);
            rte_ether_addr_copy(&mac, &eth->dst_addr);
            rte_ether_addr_copy(&ifc.mac, &eth->src_addr);
            inject(waiting, iface);
        }
    }
    // The kernel side resolves its own next hops (the BGP peer): it sees the same.
    if (!ifc.kernel_interface.empty()) {
        to_kernel(m);
        return;
    }
    rte_pktmbuf_free(m);
}

void slow_path::handle_unresolved(rte_mbuf* m) {
    std::span<const uint8_t> frame{rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)};
    net::packet_meta meta;
    // A tunnel-mode packet is IPIP, which the parser does not walk into: its outer
    // header's addresses are all this needs.
    if (net::drop_reason r = net::parse_frame(frame, meta);
        r != net::drop_reason::none &&
        !(r == net::drop_reason::unsupported_l4 && meta.l3 == net::l3_type::ipv4)) {
        rte_pktmbuf_free(m);
        return;
    }
    std::optional<egress> out = route(m_shared.interfaces, meta.key.dst);
    if (!out || !out->next_hop.is_v4() || !m_resolver.hold(out->iface, out->next_hop, m)) {
        rte_pktmbuf_free(m);
        return;
    }
    m_resolve_now = true; // ask at once: the first SYN of a flow is waiting
}

void slow_path::handle_probe_reply(rte_mbuf* m) {
    uint16_t iface = m->port;
    std::span<uint8_t> frame{rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m)};
    net::packet_meta meta;
    if (iface >= m_shared.interfaces.size() ||
        net::parse_frame(frame, meta) != net::drop_reason::none ||
        meta.l4_proto != net::ipproto_tcp) {
        rte_pktmbuf_free(m);
        return;
    }
    // A probe left from the address of the interface its backend is reached by; its
    // answer comes back there, to that address, or it is not an answer.
    std::optional<egress> out = route(m_shared.interfaces, meta.key.src);
    if (!out || out->iface != iface || meta.key.dst != m_shared.interfaces[iface].address.addr) {
        ++m_forged_probe_replies;
        rte_pktmbuf_free(m);
        return;
    }
    uint32_t ack = ntohl(net::load32(frame.data() + meta.l4_offset + 8));
    if (!m_probe_reply || !m_probe_reply(meta, ack)) {
        rte_pktmbuf_free(m); // no probe of ours (the handler counts forgeries)
        return;
    }
    // A SYN-ACK to a probe is answered with RST: the backend frees its half-open
    // connection at once.
    if ((meta.tcp_flags & net::tcp_flag::rst) != 0) {
        rte_pktmbuf_free(m);
        return;
    }
    size_t length = net::make_tcp_reset(frame, meta);
    if (length == 0) {
        rte_pktmbuf_free(m);
        return;
    }
    rte_pktmbuf_trim(m, uint16_t(rte_pktmbuf_data_len(m) - length));
    inject(m, iface); // make_tcp_reset swapped the MACs: back to the sender
}

void slow_path::send_tcp_syn(const net::ip_addr& dst, uint16_t dst_port, uint16_t src_port,
                             uint32_t seq) {
    std::optional<egress> out = route(m_shared.interfaces, dst);
    if (!out) {
        return;
    }
    rte_mbuf* m = rte_pktmbuf_alloc(m_pool);
    if (m == nullptr) {
        return;
    }
    const interface_info& ifc = m_shared.interfaces[out->iface];
    const neighbor_table* neighbors = m_shared.neighbors.load();
    const rte_ether_addr* mac = neighbors ? neighbors->find(out->iface, out->next_hop) : nullptr;
    auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, net::tcp_syn_frame_length));
    size_t length = net::build_tcp_syn({data, net::tcp_syn_frame_length}, to_mac(ifc.mac),
                                       mac ? to_mac(*mac) : net::mac_addr{}, ifc.address.addr, dst,
                                       src_port, dst_port, seq);
    if (length == 0) {
        rte_pktmbuf_free(m);
        return;
    }
    if (mac != nullptr) {
        inject(m, out->iface);
    } else if (!m_resolver.hold(out->iface, out->next_hop, m)) {
        rte_pktmbuf_free(m);
    } else {
        m_resolve_now = true;
    }
}

unsigned slow_path::drain() {
    // Probe replies first, then VRRP adverts, the routing peers' packets, ARP, packets
    // waiting for a next hop and the host's other packets, each with its own cap per call:
    // whatever floods one ring, the others keep moving.
    static constexpr unsigned cap[] = {256, 512, 512, 256, 256, 64}; // by control_reason
    static constexpr control_reason order[] = {control_reason::probe,      control_reason::vrrp,
                                               control_reason::peer,       control_reason::arp,
                                               control_reason::unresolved, control_reason::host};
    static_assert(std::size(cap) == size_t(control_reason::count_));
    unsigned total = 0;
    for (control_reason reason : order) {
        rte_ring* ring = m_shared.to_control[size_t(reason)];
        unsigned taken = 0;
        while (ring != nullptr && taken < cap[size_t(reason)]) {
            rte_mbuf* pkts[64];
            unsigned n =
                rte_ring_sc_dequeue_burst(ring, reinterpret_cast<void**>(pkts), 64, nullptr);
            for (unsigned i = 0; i < n; ++i) {
                switch (reason) {
                case control_reason::arp:
                    handle_arp(pkts[i]);
                    break;
                case control_reason::unresolved:
                    handle_unresolved(pkts[i]);
                    break;
                case control_reason::probe:
                    handle_probe_reply(pkts[i]);
                    break;
                case control_reason::vrrp:
                    handle_vrrp(pkts[i]);
                    break;
                case control_reason::peer:
                case control_reason::host:
                    to_kernel(pkts[i]);
                    break;
                case control_reason::count_:
                    rte_pktmbuf_free(pkts[i]);
                    break;
                }
            }
            taken += n;
            if (n < 64) {
                break;
            }
        }
        total += taken;
    }
    // What the kernel sends leaves by its data port, as the workers' own packets do.
    if (m_kernel != nullptr) {
        constexpr unsigned kernel_cap = 256;
        rte_mbuf* pkts[64];
        unsigned taken = 0, n = 0;
        do {
            n = m_kernel->receive(pkts, 64);
            for (unsigned i = 0; i < n; ++i) {
                inject(pkts[i], pkts[i]->port);
            }
            taken += n;
        } while (n == 64 && taken < kernel_cap);
        total += taken;
    }
    if (m_resolve_now) {
        tick(std::chrono::steady_clock::now());
    }
    if (m_resolver.changed()) {
        m_shared.neighbors.publish(m_resolver.build(), *m_shared.qsbr);
    }
    return total;
}

void slow_path::tick(std::chrono::steady_clock::time_point now) {
    m_resolve_now = false;
    std::vector<neighbor_resolver::request> to_send;
    std::vector<rte_mbuf*> to_free;
    m_resolver.tick(now, to_send, to_free);
    for (rte_mbuf* m : to_free) {
        rte_pktmbuf_free(m);
    }
    for (const auto& r : to_send) {
        send_arp(r.iface, net::arp_op_request, m_shared.interfaces[r.iface].address.addr, r.ip,
                 nullptr);
    }
}

void slow_path::want_neighbors(const config::config& cfg) {
    for (const config::pool_config& pool : cfg.pools) {
        for (const config::backend_config& b : pool.backends) {
            if (auto out = route(m_shared.interfaces, b.address); out && out->next_hop.is_v4()) {
                (void)m_resolver.want(out->iface, out->next_hop); // counted when full
            }
        }
    }
    for (const interface_info& i : m_shared.interfaces) {
        if (i.gateway && i.gateway->is_v4()) {
            (void)m_resolver.want(i.index, *i.gateway);
        }
    }
    m_resolve_now = true;
}

void slow_path::announce_vips(const snapshot& snap) {
    // On the interface whose subnet holds the VIP, or on every interface when none
    // does, so neighbors learn where the VIP lives without having to ask.
    for (const snapshot_service& svc : snap.services) {
        if (!svc.vip.is_v4() || std::find(m_announced_vips.begin(), m_announced_vips.end(),
                                          svc.vip) != m_announced_vips.end()) {
            continue;
        }
        bool sent = false;
        for (const interface_info& i : m_shared.interfaces) {
            if (i.address.contains(svc.vip)) {
                send_arp(i.index, net::arp_op_request, svc.vip, svc.vip, nullptr);
                sent = true;
            }
        }
        if (!sent) {
            for (const interface_info& i : m_shared.interfaces) {
                send_arp(i.index, net::arp_op_request, svc.vip, svc.vip, nullptr);
            }
        }
        m_announced_vips.push_back(svc.vip);
    }
}

} // namespace evenflow::dataplane
