// The slow path's part of the backends' moving gateways: adverts in (from the workers'
// vrrp lane), the election (net/vrrp.hpp), and what it decides: adverts and gratuitous
// ARP out through worker 0, and the flags the workers read to answer ARP for the
// address and take frames for its MAC.
#include "dataplane/slow_path.hpp"

#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>

namespace evenflow::dataplane {

namespace {

// After a hand-over, frames already on their way to the old holder (sent before the
// switches learnt the MAC's new port) are still forwarded for this long: every host
// rewrites replies it has no flow for (worker::handle_backend_to_client).
constexpr auto accept_after_release = std::chrono::seconds(1);

uint16_t centiseconds(std::chrono::nanoseconds d) {
    return uint16_t(std::chrono::duration_cast<std::chrono::milliseconds>(d).count() / 10);
}

} // namespace

void slow_path::start_gateways(const std::vector<config::interface_config>& interfaces,
                               std::chrono::steady_clock::time_point now) {
    m_gateway_now = now;
    m_gateways.clear();
    for (size_t i = 0; i < interfaces.size() && i < m_shared.interfaces.size(); ++i) {
        const auto& v = interfaces[i].vrrp;
        if (!v || m_shared.interfaces[i].vrrp_id == 0) {
            continue;
        }
        gateway g{uint16_t(i), *v,
                  net::vrrp_election(
                      v->priority,
                      std::chrono::duration_cast<std::chrono::milliseconds>(v->advert_interval),
                      m_shared.interfaces[i].address.addr),
                  now, std::nullopt};
        apply(g, g.election.start(now), now);
        m_gateways.push_back(std::move(g));
    }
}

void slow_path::tick_gateways(bool in_service, std::chrono::steady_clock::time_point now) {
    m_gateway_now = now;
    for (gateway& g : m_gateways) {
        apply(g, g.election.set_in_service(in_service, now), now);
        apply(g, g.election.tick(now), now);
        if (g.release_at && now >= *g.release_at) {
            m_shared.gateway_holding[g.iface].accept.store(false, std::memory_order_relaxed);
            g.release_at.reset();
        }
    }
}

bool slow_path::gateway_handover_pending(std::chrono::steady_clock::time_point now) const {
    return std::any_of(m_gateways.begin(), m_gateways.end(), [&](const gateway& g) {
        return g.release_at.has_value() && now < *g.release_at;
    });
}

void slow_path::resign_gateways(std::chrono::steady_clock::time_point now) {
    for (gateway& g : m_gateways) {
        apply(g, g.election.leave(now), now);
    }
}

void slow_path::apply(gateway& g, const net::vrrp_election::actions& a,
                      std::chrono::steady_clock::time_point now) {
    auto& flags = m_shared.gateway_holding[g.iface];
    if (a.became_master) {
        g.since = now;
        g.release_at.reset();
        flags.accept.store(true, std::memory_order_relaxed);
        flags.answer.store(true, std::memory_order_relaxed);
    }
    if (a.send_advert) {
        send_vrrp_advert(g, a.advert_priority);
    }
    if (a.became_master) {
        // Switches learn the MAC's new port, and hosts that cached another MAC for the
        // address (none should: it is always the virtual one) correct it.
        send_gateway_arp(g);
    }
    if (a.became_backup) {
        g.since = now;
        flags.answer.store(false, std::memory_order_relaxed);
        g.release_at = now + accept_after_release;
    }
}

void slow_path::send_vrrp_advert(gateway& g, uint8_t priority) {
    rte_mbuf* m = rte_pktmbuf_alloc(m_pool);
    if (m == nullptr) {
        return;
    }
    auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, net::vrrp_frame_length));
    net::vrrp_advert advert;
    advert.sender = m_shared.interfaces[g.iface].address.addr;
    advert.id = g.settings.id;
    advert.priority = priority;
    advert.interval_cs = centiseconds(g.settings.advert_interval);
    advert.address = g.settings.address;
    if (data == nullptr || net::build_vrrp_advert({data, net::vrrp_frame_length}, advert) == 0) {
        rte_pktmbuf_free(m);
        return;
    }
    ++g.adverts_sent;
    inject(m, g.iface);
}

void slow_path::send_gateway_arp(const gateway& g) {
    const net::mac_addr virtual_mac = net::vrrp_virtual_mac(g.settings.id);
    send_arp(g.iface, net::arp_op_request, g.settings.address, g.settings.address, nullptr,
             &virtual_mac);
}

void slow_path::handle_vrrp(rte_mbuf* m) {
    const uint16_t iface = m->port;
    std::span<const uint8_t> frame{rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)};
    net::packet_meta meta;
    net::vrrp_advert advert;
    auto it = std::find_if(m_gateways.begin(), m_gateways.end(),
                           [&](const gateway& g) { return g.iface == iface; });
    const bool readable = net::parse_frame(frame, meta) == net::drop_reason::unsupported_l4 &&
                          net::read_vrrp_advert(frame, meta, advert);
    rte_pktmbuf_free(m);
    if (it == m_gateways.end()) {
        return;
    }
    gateway& g = *it;
    const interface_info& ifc = m_shared.interfaces[iface];
    // Another virtual router on the same network is not ours to count.
    if (readable && advert.id != g.settings.id) {
        return;
    }
    // Believed only from the configured peers (or, with none, any on-link host), for
    // this gateway's address: a backend cannot take the gateway by advertising.
    const bool sender_ok =
        g.settings.peers.empty()
            ? ifc.address.contains(advert.sender) && advert.sender != ifc.address.addr
            : std::find(g.settings.peers.begin(), g.settings.peers.end(), advert.sender) !=
                  g.settings.peers.end();
    if (!readable || !sender_ok || advert.address != g.settings.address) {
        ++g.adverts_refused;
        return;
    }
    ++g.adverts_received;
    // Never before the latest tick: the election's times only move forward.
    const auto now = std::max(m_gateway_now, std::chrono::steady_clock::now());
    apply(g, g.election.receive(advert, now), now);
}

} // namespace evenflow::dataplane
