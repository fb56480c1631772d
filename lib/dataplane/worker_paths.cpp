// A worker's packet paths, one packet at a time after the burst passes of
// worker.cpp: L2/L3 checks, ARP and ICMP answered in place, ICMP errors translated
// for their flow, the forward path (client -> VIP -> backend), the return path
// (backend -> client), routing to the next hop, and resets.
#include "dataplane/worker.hpp"

#include "dataplane/flow_rules.hpp"
#include "net/bytes.hpp"
#include "net/checksum.hpp"
#include "net/icmp.hpp"
#include "net/nat.hpp"
#include "net/reply.hpp"
#include "net/tunnel.hpp"
#include "net/vrrp.hpp"

#include <rte_ethdev.h>
#include <rte_ip.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace evenflow::dataplane {

using net::drop_reason;
using net::load16;
using net::packet_meta;
using net::store16;
namespace tcp_flag = net::tcp_flag;

bool worker::admitted(uint16_t iface, rx_item& item) {
    rte_mbuf* m = item.mbuf;
    const interface_info& ifc = m_shared.interfaces[iface];
    // Ports may be promiscuous: unicast for another host is not ours to act on.
    const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    if (!rte_is_multicast_ether_addr(&eth->dst_addr) &&
        !rte_is_same_ether_addr(&eth->dst_addr, &ifc.mac) && !to_held_gateway(iface, m)) {
        return false;
    }
    const packet_meta& meta = item.meta;
    const uint16_t vid = meta.has_vlan ? uint16_t(meta.vlan_tci & 0x0fff) : 0;
    if (vid != ifc.vlan) {
        drop(m, drop_reason::vlan_mismatch);
        return false;
    }
    if (meta.l3 == net::l3_type::ipv4) {
        // A NIC that checks it says so; otherwise the sum of a valid header is 0xffff.
        const uint64_t verdict = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
        bool ok = verdict == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
        if (verdict != RTE_MBUF_F_RX_IP_CKSUM_GOOD && verdict != RTE_MBUF_F_RX_IP_CKSUM_BAD) {
            const uint8_t* ip = rte_pktmbuf_mtod(m, const uint8_t*) + meta.l3_offset;
            ok = rte_raw_cksum(ip, size_t(ip[0] & 0x0f) * 4) == 0xffff;
        }
        if (!ok) {
            drop(m, drop_reason::bad_ipv4_checksum);
            return false;
        }
    }
    return true;
}

// Out of line (rare, and kept off the per-packet path's code): a unicast frame for
// another MAC is taken only when it is the backends' gateway's and this host holds it.
__attribute__((noinline, cold)) bool worker::to_held_gateway(uint16_t iface, rte_mbuf* m) {
    const interface_info& ifc = m_shared.interfaces[iface];
    const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    if (ifc.vrrp_id == 0 || !rte_is_same_ether_addr(&eth->dst_addr, &ifc.vrrp_mac)) {
        drop(m, drop_reason::not_our_mac);
        return false;
    }
    if (!m_shared.gateway_holding[iface].accept.load(std::memory_order_relaxed)) {
        drop(m, drop_reason::gateway_not_held);
        return false;
    }
    return true;
}

// Out of line too: what the parser did not take is dropped, except a protocol other
// than TCP and ICMP that is the host's own (UDP: BFD, say) or a VRRP advert where this
// host runs the election for the backends' gateway.
__attribute__((noinline, cold)) void worker::handle_unparsed(uint16_t iface, rx_item& item) {
    rte_mbuf* m = item.mbuf;
    const packet_meta& meta = item.meta;
    const bool unsupported = item.parsed == drop_reason::unsupported_l4;
    const bool vrrp = unsupported && meta.l4_proto == net::ipproto_vrrp &&
                      m_shared.interfaces[iface].vrrp_id != 0;
    const bool host_only = unsupported && !vrrp && for_kernel(iface, meta);
    if (!vrrp && !host_only) {
        drop(m, item.parsed);
        return;
    }
    if (m->nb_segs > 1) {
        drop(m, drop_reason::chained_mbuf);
        return;
    }
    if (!admitted(iface, item)) {
        return;
    }
    if (vrrp) {
        to_control(iface, m, control_reason::vrrp);
        return;
    }
    to_host(iface, m, meta, drop_reason::unsupported_l4);
}

void worker::handle(uint16_t iface, rx_item& item, const snapshot& snap,
                    const neighbor_table* neigh, uint32_t now) {
    rte_mbuf* m = item.mbuf;
    packet_meta& meta = item.meta;
    if (item.parsed != drop_reason::none) [[unlikely]] {
        handle_unparsed(iface, item);
        return;
    }
    if (m->nb_segs > 1) {
        // Virtual devices here never chain buffers below the MTU; a chained frame
        // would have its headers split, which the parser does not follow.
        drop(m, drop_reason::chained_mbuf);
        return;
    }
    if (!admitted(iface, item)) {
        return;
    }
    switch (meta.l3) {
    case net::l3_type::arp:
        handle_arp(iface, item, snap);
        return;
    case net::l3_type::ipv4:
    case net::l3_type::ipv6:
        break;
    default:
        drop(m, drop_reason::unsupported_ethertype);
        return;
    }
    if (meta.l4_proto == net::ipproto_tcp) {
        if (meta.l3 == net::l3_type::ipv4 && meta.has_ip_options) {
            // Source routes, record route and friends have no business through a
            // balancer; rare enough in legitimate traffic that dropping is the norm.
            drop(m, drop_reason::ip_options);
            return;
        }
        if (item.svc != nullptr) {
            handle_client_to_vip(iface, item, *item.svc, snap, neigh, now);
        } else {
            handle_backend_to_client(iface, item, snap, neigh, now);
        }
        return;
    }
    if (meta.l4_proto == net::ipproto_icmp || meta.l4_proto == net::ipproto_icmpv6) {
        handle_icmp(iface, item, snap, neigh, now);
        return;
    }
    drop(m, drop_reason::not_for_us);
}

void worker::handle_arp(uint16_t iface, rx_item& item, const snapshot& snap) {
    rte_mbuf* m = item.mbuf;
    const interface_info& ifc = m_shared.interfaces[iface];
    net::arp_fields arp;
    if (!net::read_arp(frame_of(m), item.meta, arp)) {
        drop(m, drop_reason::unsupported_arp);
        return;
    }
    // A request for our address or a VIP is answered here, so an ARP storm sent to
    // the control thread (learning, below) never delays the answer for a VIP.
    bool for_us = arp.target_ip == ifc.address.addr || snap.is_vip(arp.target_ip);
    // The backends' gateway is answered by the host that holds it, with its MAC.
    const bool gateway = ifc.vrrp_id != 0 && arp.target_ip == ifc.vrrp_address &&
                         m_shared.gateway_holding[iface].answer.load(std::memory_order_relaxed);
    if (arp.op == net::arp_op_request && (for_us || gateway) && arp.sender_ip != arp.target_ip) {
        net::mac_addr mac;
        std::memcpy(mac.data(), (gateway ? ifc.vrrp_mac : ifc.mac).addr_bytes, 6);
        net::make_arp_reply(frame_of(m), item.meta, mac);
        m_stats.totals.arp_replies.add();
        transmit(iface, m);
        return;
    }
    // Replies (to our requests) and the rest: the control thread learns what it may.
    to_control(iface, m, control_reason::arp);
}

void worker::handle_local_tcp(uint16_t iface, rte_mbuf* m, const packet_meta& meta) {
    // A probe's answer (SYN-ACK or RST) acknowledges its initial sequence number; a
    // segment that does not, from the probed endpoint to the probe's port, arriving
    // where the endpoint is reached, to our address there, answers nothing and is
    // dropped here, before it costs slow-path budget (see net::probe_table).
    const uint8_t flags = meta.tcp_flags;
    const bool answer = (flags & tcp_flag::ack) != 0 && (flags & (tcp_flag::syn | tcp_flag::rst));
    const uint16_t dst_port = ntohs(meta.key.dst_port);
    net::probe_table* probes = m_shared.probes;
    if (answer && probes != nullptr && net::is_probe_port(dst_port)) {
        const uint32_t ack =
            ntohl(net::load32(rte_pktmbuf_mtod(m, const uint8_t*) + meta.l4_offset + 8));
        const int slot = probes->match(meta.key.src, ntohs(meta.key.src_port), dst_port, ack);
        std::optional<egress> way_back =
            slot < 0 ? std::nullopt : route(m_shared.interfaces, meta.key.src);
        if (way_back && way_back->iface == iface &&
            meta.key.dst == m_shared.interfaces[iface].address.addr) {
            if (!to_control(iface, m, control_reason::probe)) {
                probes->mark_lost(dst_port, slot, ack); // that probe's timeout proves nothing
            }
            return;
        }
    }
    if (net::is_probe_port(dst_port)) {
        drop(m, drop_reason::not_a_probe_reply); // the kernel's ports are below that range
        return;
    }
    to_host(iface, m, meta, drop_reason::not_a_probe_reply);
}

bool worker::for_kernel(uint16_t iface, const packet_meta& meta) const {
    const interface_info& ifc = m_shared.interfaces[iface];
    return !ifc.kernel_interface.empty() && meta.key.dst == ifc.address.addr;
}

void worker::to_host(uint16_t iface, rte_mbuf* m, const packet_meta& meta, drop_reason otherwise) {
    if (!for_kernel(iface, meta)) {
        drop(m, otherwise);
        return;
    }
    const auto& peers = m_shared.routing_peers;
    const bool from_peer = std::find(peers.begin(), peers.end(), meta.key.src) != peers.end();
    if (to_control(iface, m, from_peer ? control_reason::peer : control_reason::host)) {
        (from_peer ? m_stats.totals.to_host_peer : m_stats.totals.to_host).add();
    }
}

void worker::handle_icmp(uint16_t iface, rx_item& item, const snapshot& snap,
                         const neighbor_table* neigh, uint32_t now) {
    rte_mbuf* m = item.mbuf;
    packet_meta& meta = item.meta;
    const bool to_vip = snap.is_vip(meta.key.dst);
    if (to_vip || is_interface_address(m_shared.interfaces, meta.key.dst)) {
        if (net::make_echo_reply(frame_of(m), meta)) {
            m_stats.totals.icmp_echo_replies.add();
            transmit(iface, m);
            return;
        }
    }
    net::icmp_quote quote;
    if (!net::read_icmp_error(frame_of(m), meta, quote)) {
        to_host(iface, m, meta, drop_reason::not_for_us); // an echo reply to the kernel's ping
        return;
    }
    if (to_vip) {
        // From the client's side, about a packet the VIP sent the client (MTU too
        // small on the way, say): the flow's backend must hear of it.
        net::flow_key forward = quote.key.reversed();
        flow::flow_entry* e = m_flows->lookup(forward, net::flow_hash(forward), now);
        if (e == nullptr || e->value.direction != flow::flow_direction::client_to_backend) {
            drop(m, drop_reason::icmp_no_flow);
            return;
        }
        net::rewrite_icmp_error(frame_of(m), meta, quote, net::icmp_side::source, e->value.nat_addr,
                                e->value.nat_port, net::icmp_side::destination, e->value.nat_addr);
    } else {
        // From the backends' side, about a packet sent to a backend: the client hears
        // of it from the VIP, as if the VIP had answered.
        // An error about a packet of the host's own (a BGP segment too big for the
        // path, say) comes to our address, on either side.
        if (m_shared.interfaces[iface].role == port_role::client) {
            to_host(iface, m, meta, drop_reason::reply_on_client_side);
            return;
        }
        net::flow_key reverse = quote.key.reversed();
        flow::flow_entry* e = m_flows->lookup(reverse, net::flow_hash(reverse), now);
        if (e == nullptr || e->value.direction != flow::flow_direction::backend_to_client) {
            to_host(iface, m, meta, drop_reason::icmp_no_flow);
            return;
        }
        net::rewrite_icmp_error(frame_of(m), meta, quote, net::icmp_side::destination,
                                e->value.nat_addr, e->value.nat_port, net::icmp_side::source,
                                e->value.nat_addr);
    }
    m_stats.totals.icmp_errors_translated.add();
    forward(m, meta, neigh);
}

void worker::follow_state(const net::flow_key& other_side, flow::flow_state state, uint32_t now) {
    if (flow::flow_entry* e = m_flows->lookup(other_side, net::flow_hash(other_side), now);
        e != nullptr && e->value.state != flow::flow_state::closing) {
        m_flows->refresh(e, state, now);
    }
}

void worker::forget_flow(flow::flow_entry* forward_entry, const net::flow_key& client_key,
                         uint32_t now) {
    net::flow_key reverse =
        backend_side_key(forward_entry->value.nat_addr, forward_entry->value.nat_port, client_key);
    m_flows->remove(forward_entry);
    if (flow::flow_entry* r = m_flows->lookup(reverse, net::flow_hash(reverse), now)) {
        m_flows->remove(r);
    }
}

void worker::to_backend(rte_mbuf* m, net::packet_meta& meta, uint32_t backend_id,
                        const net::ip_addr& addr, uint16_t port_be, const neighbor_table* neigh) {
    backend_counters& bc = m_stats.backends[backend_id];
    bc.packets_to.add();
    bc.bytes_to.add(rte_pktmbuf_pkt_len(m));
    net::nat_rewrite(frame_of(m), meta, net::nat_side::destination, addr, port_be);
    m_stats.totals.to_backend.add();
    forward(m, meta, neigh);
}

void worker::handle_client_to_vip(uint16_t iface, rx_item& item, const snapshot_service& svc,
                                  const snapshot& snap, const neighbor_table* neigh, uint32_t now) {
    rte_mbuf* m = item.mbuf;
    packet_meta& meta = item.meta;
    worker_counters& c = m_stats.totals;
    uint8_t flags = meta.tcp_flags;
    bool opening = (flags & tcp_flag::syn) && !(flags & tcp_flag::ack);

    flow::flow_entry* entry = m_flows->lookup(meta.key, item.hash, now);
    if (entry != nullptr && entry->value.direction == flow::flow_direction::client_to_backend) {
        if (opening && entry->value.state == flow::flow_state::closing) {
            // The client reused its port for a new connection before the old
            // one's entry expired: a new flow, balanced afresh.
            forget_flow(entry, meta.key, now);
            entry = nullptr;
        }
    }
    if (entry != nullptr && entry->value.direction == flow::flow_direction::client_to_backend) {
        const snapshot_backend* b = snap.find_backend(entry->value.backend_id);
        // Rule for pinned flows: a backend removed from the config keeps its
        // established flows until they end; one that is down or disabled, or
        // draining past its drain_timeout, has its flows reset so clients
        // reconnect at once instead of hanging.
        if (b != nullptr && ((b->state == backend_state::down && !svc.keep_pinned_flows) ||
                             b->state == backend_state::disabled || drain_expired(*b, now))) {
            m_stats.backends[entry->value.backend_id].resets.add();
            forget_flow(entry, meta.key, now);
            send_reset(iface, m, meta);
            return;
        }
        const bool tunnel = svc.mode == config::forward_mode::tunnel;
        flow::flow_state before = entry->value.state;
        flow::flow_state after =
            tunnel ? next_state_one_way(before, flags) : next_state(before, flags);
        m_flows->refresh(entry, after, now);
        if (tunnel) {
            if (before == flow::flow_state::syn && after == flow::flow_state::one_way) {
                count_verified(entry->value.backend_id, meta.key.src); // as far as one way can tell
            }
            tunnel_to_backend(iface, m, meta, entry->value.backend_id, entry->value.nat_addr,
                              neigh);
            return;
        }
        if (after != before && after == flow::flow_state::established) {
            // The handshake completed: the backend's side is established with it, and
            // the connection counts (a spoofed SYN never gets this far).
            count_verified(entry->value.backend_id, meta.key.src);
            net::flow_key reverse =
                backend_side_key(entry->value.nat_addr, entry->value.nat_port, meta.key);
            follow_state(reverse, after, now);
        }
        to_backend(m, meta, entry->value.backend_id, entry->value.nat_addr, entry->value.nat_port,
                   neigh);
        return;
    }

    // No flow: pick with Maglev. A SYN starts a flow; anything else is a flow we
    // have no state for (another worker's, or from before a restart) and gets the
    // same answer as long as the backend set is unchanged.
    // (Pass 2 picked already for a SYN, in this same snapshot.)
    uint32_t backend_id = item.reverse_hash != 0 ? item.pick : svc.pick(svc.flow_hash(meta.key));
    const snapshot_backend* b = snap.find_backend(backend_id);
    if (b == nullptr) {
        if (opening) {
            c.drops[size_t(drop_reason::no_backend)].add();
            send_reset(iface, m, meta);
            return;
        }
        drop(m, drop_reason::no_backend);
        return;
    }
    flow::flow_value forward_value{};
    forward_value.nat_addr = b->address;
    forward_value.nat_port = b->port_be;
    forward_value.backend_id = backend_id;
    const bool tunnel = svc.mode == config::forward_mode::tunnel;
    forward_value.state = opening  ? flow::flow_state::syn
                          : tunnel ? next_state_one_way(flow::flow_state::syn, flags)
                                   : next_state(flow::flow_state::unverified, flags);
    forward_value.direction = flow::flow_direction::client_to_backend;
    if (m_flows->insert(meta.key, item.hash, forward_value, now) == nullptr) {
        c.drops[size_t(drop_reason::flow_table_full)].add();
    } else if (!tunnel) { // tunnel mode: the backend answers the client directly
        flow::flow_value reverse_value = forward_value;
        reverse_value.nat_addr = svc.vip;
        reverse_value.nat_port = svc.port_be;
        reverse_value.direction = flow::flow_direction::backend_to_client;
        net::flow_key reverse = backend_side_key(b->address, b->port_be, meta.key);
        // Pass 2 hashed this key already for a SYN (same snapshot, same pick).
        uint32_t reverse_hash =
            item.reverse_hash != 0 ? item.reverse_hash : net::flow_hash(reverse);
        m_flows->insert(reverse, reverse_hash, reverse_value, now, nullptr, &meta.key);
    }
    count_new_flow(opening, backend_id, meta.key.src);
    if (tunnel) {
        tunnel_to_backend(iface, m, meta, backend_id, b->address, neigh);
        return;
    }
    to_backend(m, meta, backend_id, b->address, b->port_be, neigh);
}

void worker::count_new_flow(bool opening, uint32_t backend_id, const net::ip_addr& client) {
    if (opening) {
        // Anyone can send a SYN from any address: it is counted apart, and only the
        // verified handshake (count_verified) is judged as the config's distribution.
        m_stats.totals.syns.add();
        m_stats.backends[backend_id].syns.add();
        m_clients->count(flow::client_event::syn, client, backend_id);
    } else {
        m_stats.totals.stateless_forward.add();
    }
}

void worker::count_verified(uint32_t backend_id, const net::ip_addr& client) {
    m_stats.totals.new_flows.add();
    m_stats.backends[backend_id].new_flows.add();
    m_clients->count(flow::client_event::verified, client, backend_id);
}

void worker::tunnel_to_backend(uint16_t iface, rte_mbuf* m, packet_meta& meta, uint32_t backend_id,
                               const net::ip_addr& backend, const neighbor_table* neigh) {
    std::optional<egress> out = route(m_shared.interfaces, backend);
    if (!out) {
        drop(m, drop_reason::not_for_us);
        return;
    }
    const interface_info& egress_if = m_shared.interfaces[out->iface];
    if (size_t(meta.l3_length) + net::ipip_overhead > egress_if.mtu) {
        // Path MTU discovery: the client learns the size that fits in the tunnel.
        m_stats.totals.drops[size_t(drop_reason::tunnel_too_big)].add();
        size_t length =
            net::make_frag_needed(frame_of(m), meta, uint16_t(egress_if.mtu - net::ipip_overhead));
        if (length == 0) {
            rte_pktmbuf_free(m);
            return;
        }
        rte_pktmbuf_trim(m, uint16_t(rte_pktmbuf_data_len(m) - length));
        transmit(iface, m);
        return;
    }
    // Room for the outer header in front; the Ethernet header (and any tag) moves up.
    const uint16_t l2 = meta.l3_offset;
    const uint16_t padding = uint16_t(rte_pktmbuf_data_len(m) - l2 - meta.l3_length);
    auto* front = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, net::ipip_overhead));
    if (front == nullptr) {
        drop(m, drop_reason::no_headroom);
        return;
    }
    std::memmove(front, front + net::ipip_overhead, l2);
    if (padding != 0) {
        rte_pktmbuf_trim(m, padding);
    }
    net::write_ipip_header(front + l2, front + l2 + net::ipip_overhead, meta.l3_length,
                           egress_if.address.addr, backend);
    backend_counters& bc = m_stats.backends[backend_id];
    bc.packets_to.add();
    bc.bytes_to.add(rte_pktmbuf_pkt_len(m));
    m_stats.totals.to_backend.add();
    m_stats.totals.tunneled.add();
    send_via(*out, m, neigh);
}

void worker::handle_backend_to_client(uint16_t iface, rx_item& item, const snapshot& snap,
                                      const neighbor_table* neigh, uint32_t now) {
    rte_mbuf* m = item.mbuf;
    packet_meta& meta = item.meta;
    worker_counters& c = m_stats.totals;

    if (is_interface_address(m_shared.interfaces, meta.key.dst)) {
        handle_local_tcp(iface, m, meta);
        return;
    }
    // Only a backend-facing port carries backends' replies: a packet on the clients'
    // side claiming a backend's source is not one, whatever it says.
    if (m_shared.interfaces[iface].role == port_role::client) {
        drop(m, snap.is_backend(meta.key.src, meta.key.src_port) ? drop_reason::reply_on_client_side
                                                                 : drop_reason::not_for_us);
        return;
    }
    flow::flow_entry* entry = m_flows->lookup(meta.key, item.hash, now);
    if (entry != nullptr && entry->value.direction == flow::flow_direction::backend_to_client) {
        flow::flow_state before = entry->value.state;
        flow::flow_state after = verified_state(before, meta.tcp_flags);
        m_flows->refresh(entry, after, now);
        if (after != before) {
            // The backend answered (SYN-ACK, verified a mid-flow entry, or closed
            // it): the client's side of the flow moves with it.
            net::flow_key forward;
            forward.src = meta.key.dst;
            forward.src_port = meta.key.dst_port;
            forward.dst = entry->value.nat_addr;
            forward.dst_port = entry->value.nat_port;
            forward.proto = meta.key.proto;
            follow_state(forward, after, now);
        }
        backend_counters& bc = m_stats.backends[entry->value.backend_id];
        bc.packets_from.add();
        bc.bytes_from.add(rte_pktmbuf_pkt_len(m));
        net::nat_rewrite(frame_of(m), meta, net::nat_side::source, entry->value.nat_addr,
                         entry->value.nat_port);
        c.to_client.add();
        forward(m, meta, neigh);
        return;
    }
    // A reply whose flow entry no worker has (a restart, an expired entry): the
    // snapshot tells which VIP it must carry (see service_of_reply).
    if (const snapshot_service* owner = snap.service_of_reply(meta.key.src, meta.key.src_port,
                                                              meta.key.dst, meta.key.dst_port)) {
        c.reverse_stateless.add();
        net::nat_rewrite(frame_of(m), meta, net::nat_side::source, owner->vip, owner->port_be);
        c.to_client.add();
        forward(m, meta, neigh);
        return;
    }
    drop(m, drop_reason::not_for_us);
}

// Inlined into its two callers: it is most of the per-packet egress path.
__attribute__((always_inline)) inline void worker::send_via(const egress& out, rte_mbuf* m,
                                                            const neighbor_table* neigh) {
    const rte_ether_addr* mac = next_hop_mac(neigh, out.iface, out.next_hop);
    if (mac == nullptr) {
        to_control(out.iface, m, control_reason::unresolved);
        return;
    }
    if (!set_vlan(out.iface, m)) {
        drop(m, drop_reason::tx_full);
        return;
    }
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    rte_ether_addr_copy(mac, &eth->dst_addr);
    rte_ether_addr_copy(&m_shared.interfaces[out.iface].mac, &eth->src_addr);
    transmit(out.iface, m);
}

void worker::forward(rte_mbuf* m, packet_meta& meta, const neighbor_table* neigh) {
    uint8_t* ip = rte_pktmbuf_mtod(m, uint8_t*) + meta.l3_offset;
    // We are a router hop for these packets: decrement TTL / hop limit.
    if (meta.l3 == net::l3_type::ipv4) {
        if (ip[8] <= 1) {
            drop(m, drop_reason::ttl_exceeded);
            return;
        }
        uint16_t old_word = load16(ip + 8);
        ip[8] = uint8_t(ip[8] - 1);
        store16(ip + 10, net::checksum_update16(load16(ip + 10), old_word, load16(ip + 8)));
    } else {
        if (ip[7] <= 1) {
            drop(m, drop_reason::ttl_exceeded);
            return;
        }
        ip[7] = uint8_t(ip[7] - 1);
    }

    std::optional<egress> out = route(m_shared.interfaces, meta.key.dst);
    if (!out) {
        drop(m, drop_reason::not_for_us);
        return;
    }
    send_via(*out, m, neigh);
}

bool worker::set_vlan(uint16_t iface, rte_mbuf* m) {
    const uint16_t want = m_shared.interfaces[iface].vlan;
    const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    const bool tagged = eth->ether_type == htons(RTE_ETHER_TYPE_VLAN);
    if (!tagged && want == 0) {
        return true; // the common case: untagged in, untagged out
    }
    if (tagged) {
        auto* vh = reinterpret_cast<rte_vlan_hdr*>(rte_pktmbuf_mtod(m, uint8_t*) + 14);
        if (want != 0) {
            vh->vlan_tci = htons(uint16_t((ntohs(vh->vlan_tci) & 0xf000) | want));
            return true;
        }
        return rte_vlan_strip(m) == 0;
    }
    m->vlan_tci = want;
    return rte_vlan_insert(&m) == 0;
}

const rte_ether_addr* worker::next_hop_mac(const neighbor_table* neigh, uint16_t iface,
                                           const net::ip_addr& ip) {
    if (neigh == nullptr) {
        return nullptr;
    }
    next_hop_memo& memo = m_next_hops[(ip.bytes[15] ^ iface) % m_next_hops.size()];
    if (memo.iface != iface || memo.ip != ip) {
        memo.mac = neigh->find(iface, ip);
        memo.ip = ip;
        memo.iface = iface;
    }
    return memo.mac;
}

void worker::send_reset(uint16_t iface, rte_mbuf* m, const packet_meta& meta) {
    size_t length = net::make_tcp_reset(frame_of(m), meta);
    if (length == 0) {
        rte_pktmbuf_free(m);
        return;
    }
    rte_pktmbuf_trim(m, uint16_t(rte_pktmbuf_data_len(m) - length));
    m_stats.totals.resets_sent.add();
    transmit(iface, m);
}

} // namespace evenflow::dataplane
