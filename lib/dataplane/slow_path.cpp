#include "dataplane/slow_path.hpp"

#include "net/reply.hpp"

#include <rte_ether.h>
#include <rte_mbuf.h>

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

void slow_path::send_arp(uint16_t iface, uint16_t op, const net::ip_addr& sender,
                         const net::ip_addr& target, const rte_ether_addr* target_mac) {
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
                   to_mac(m_shared.interfaces[iface].mac), sender, target_mac_bytes, target);
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
    // Learn the sender when it is on this interface's subnet (replies and requests
    // alike: a host that asks for us will be answered, and we will talk back).
    if (ifc.address.contains(arp.sender_ip) && !arp.sender_ip.is_unspecified() &&
        arp.sender_ip != ifc.address.addr) {
        rte_ether_addr mac;
        std::memcpy(mac.addr_bytes, arp.sender_mac.data(), 6);
        for (rte_mbuf* waiting :
             m_resolver.learn(iface, arp.sender_ip, mac, std::chrono::steady_clock::now())) {
            auto* eth = rte_pktmbuf_mtod(waiting, rte_ether_hdr*);
            rte_ether_addr_copy(&mac, &eth->dst_addr);
            rte_ether_addr_copy(&ifc.mac, &eth->src_addr);
            inject(waiting, iface);
        }
    }
    if (arp.op == net::arp_op_request && arp.target_ip != arp.sender_ip) {
        const snapshot* snap = m_shared.snap.load();
        bool ours =
            arp.target_ip == ifc.address.addr || (snap != nullptr && snap->is_vip(arp.target_ip));
        if (ours) {
            rte_ether_addr requester;
            std::memcpy(requester.addr_bytes, arp.sender_mac.data(), 6);
            send_arp(iface, net::arp_op_reply, arp.target_ip, arp.sender_ip, &requester);
            ++m_arp_replies;
        }
    }
    rte_pktmbuf_free(m);
}

void slow_path::handle_unresolved(rte_mbuf* m) {
    std::span<const uint8_t> frame{rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)};
    net::packet_meta meta;
    if (net::parse_frame(frame, meta) != net::drop_reason::none) {
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

void slow_path::handle_local_tcp(rte_mbuf* m) {
    uint16_t iface = m->port;
    std::span<uint8_t> frame{rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m)};
    net::packet_meta meta;
    if (iface >= m_shared.interfaces.size() ||
        net::parse_frame(frame, meta) != net::drop_reason::none || !m_local_tcp ||
        !m_local_tcp(meta)) {
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
    rte_mbuf* pkts[64];
    unsigned n =
        rte_ring_sc_dequeue_burst(m_shared.to_control, reinterpret_cast<void**>(pkts), 64, nullptr);
    for (unsigned i = 0; i < n; ++i) {
        switch (control_reason(pkts[i]->hash.usr)) {
        case control_reason::arp:
            handle_arp(pkts[i]);
            break;
        case control_reason::unresolved:
            handle_unresolved(pkts[i]);
            break;
        case control_reason::local_tcp:
            handle_local_tcp(pkts[i]);
            break;
        default:
            rte_pktmbuf_free(pkts[i]);
            break;
        }
    }
    if (m_resolve_now) {
        tick(std::chrono::steady_clock::now());
    }
    if (m_resolver.changed()) {
        m_shared.neighbors.publish(m_resolver.build(), *m_shared.qsbr);
    }
    return n;
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
                m_resolver.want(out->iface, out->next_hop);
            }
        }
    }
    for (const interface_info& i : m_shared.interfaces) {
        if (i.gateway && i.gateway->is_v4()) {
            m_resolver.want(i.index, *i.gateway);
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
