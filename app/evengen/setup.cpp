// evengen's set-up: the two ports (or the pcap writer), the links' wait for a memif
// peer, and ARP: answering the balancer for the gateway and the backends, and
// learning the balancer's MACs by asking it for its own addresses.
#include "engine.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace evenflow::gen {

volatile std::sig_atomic_t g_interrupted = 0;

namespace {

void on_signal(int) {
    g_interrupted = 1;
}

} // namespace

bool generator::add_port(const std::string& name, port_state& port, std::string* error) {
    if (rte_eth_dev_get_port_by_name(name.c_str(), &port.id) != 0) {
        *error =
            fmt::format("no DPDK port named {} (give it with --vdev in the EAL arguments)", name);
        return false;
    }
    rte_eth_conf conf{};
    rte_eth_dev_info info{};
    rte_eth_dev_info_get(port.id, &info);
    std::optional<queue_plan> plan =
        plan_queues(m_opts.queues, info.max_rx_queues, info.max_tx_queues, error);
    if (!plan) {
        *error = fmt::format("port {}: {}", name, *error);
        return false;
    }
    port.rx_queues = plan->rx;
    int rc = rte_eth_dev_configure(port.id, plan->rx, plan->tx, &conf);
    for (uint16_t q = 0; rc == 0 && q < plan->rx; ++q) {
        rc = rte_eth_rx_queue_setup(port.id, q, descriptors, rte_eth_dev_socket_id(port.id),
                                    nullptr, m_pool);
    }
    for (uint16_t q = 0; rc == 0 && q < plan->tx; ++q) {
        rc = rte_eth_tx_queue_setup(port.id, q, descriptors, rte_eth_dev_socket_id(port.id),
                                    nullptr);
    }
    if (rc != 0) {
        *error = fmt::format("port {}: cannot set up: {}", name, rte_strerror(-rc));
        return false;
    }
    // A memif client fails to start while its peer is not listening yet: the link
    // wait in set_up() retries.
    rc = rte_eth_dev_start(port.id);
    if (rc != 0 && !m_opts.pcap_path.empty()) {
        *error = fmt::format("port {}: cannot start: {}", name, rte_strerror(-rc));
        return false;
    }
    rte_eth_promiscuous_enable(port.id);
    rte_ether_addr mac{};
    rte_eth_macaddr_get(port.id, &mac);
    std::memcpy(port.mac.data(), mac.addr_bytes, 6);
    return true;
}

bool generator::set_up(std::string* error) {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    m_ns_per_cycle = 1e9 / double(rte_get_tsc_hz());
    m_pool = rte_pktmbuf_pool_create("evengen", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                     int(rte_socket_id()));
    if (m_pool == nullptr) {
        *error = fmt::format("cannot create the packet pool: {}", rte_strerror(rte_errno));
        return false;
    }
    if (!m_opts.pcap_path.empty()) {
        m_port_count = 1;
        m_ports[side_client].peer = m_opts.pcap_dst_mac;
        m_ports[side_client].peer_known = true;
        if (!add_port("net_pcap_evengen", m_ports[side_client], error)) {
            return false;
        }
        rebuild_templates();
        return true;
    }
    if (!add_port(m_opts.client_port, m_ports[side_client], error) ||
        !add_port(m_opts.backend_port, m_ports[side_backend], error)) {
        return false;
    }
    // memif links come up when the peer connects. A memif client tries to connect
    // when the port starts and not again, so a peer that was not listening yet is
    // retried by restarting the port once a second.
    uint64_t hz = rte_get_tsc_hz();
    uint64_t deadline = rte_get_tsc_cycles() + 10 * hz;
    for (size_t s = 0; s < 2; ++s) {
        rte_eth_link link{};
        uint64_t next_retry = rte_get_tsc_cycles() + hz;
        while (rte_eth_link_get_nowait(m_ports[s].id, &link) == 0 && !link.link_status) {
            uint64_t now = rte_get_tsc_cycles();
            if (now > deadline || g_interrupted) {
                *error = fmt::format("port {}: link down after 10 s (is the peer running?)",
                                     s == side_client ? m_opts.client_port : m_opts.backend_port);
                return false;
            }
            if (now > next_retry) {
                rte_eth_dev_stop(m_ports[s].id);
                rte_eth_dev_start(m_ports[s].id);
                next_retry = now + hz;
            }
            rte_delay_ms(10);
        }
    }
    // The peer marks its rings ready a moment after the link is up; packets sent in
    // that moment are lost (seen: one burst per direction on a fresh connection).
    rte_delay_ms(200);
    if (m_opts.reflect) {
        // A 5-tuple swapper does not look at MACs; any unicast address will do.
        for (port_state& p : m_ports) {
            p.peer = {0x02, 0, 0, 0, 0, 0xfe};
            p.peer_known = true;
        }
    }
    rebuild_templates();
    return true;
}

void generator::rebuild_templates() {
    for (size_t s = 0; s < m_port_count; ++s) {
        m_templates[s][1] =
            std::make_unique<frame_template>(m_opts.packet_size, m_ports[s].mac, m_ports[s].peer);
        m_templates[s][0] =
            std::make_unique<frame_template>(min_packet_size, m_ports[s].mac, m_ports[s].peer);
    }
}

void generator::send_arp(size_t side, uint16_t op, const mac_addr& dst, uint32_t sender_ip,
                         uint32_t target_ip) {
    rte_mbuf* m = rte_pktmbuf_alloc(m_pool);
    if (m == nullptr) {
        return;
    }
    arp_message msg;
    msg.op = op;
    msg.sender_mac = m_ports[side].mac;
    msg.sender_ip = sender_ip;
    msg.target_mac = op == 1 ? mac_addr{} : dst;
    msg.target_ip = target_ip;
    write_arp(rte_pktmbuf_mtod(m, uint8_t*), dst, msg);
    rte_pktmbuf_append(m, arp_frame_length);
    m->hash.usr = 0;
    port_state& p = m_ports[side];
    if (p.tx_count == std::size(p.tx)) {
        flush(side);
    }
    if (p.tx_count == std::size(p.tx)) {
        rte_pktmbuf_free(m); // ARP is retried by whoever asked
        return;
    }
    p.tx[p.tx_count++] = m;
}

void generator::on_arp(size_t side, const arp_message& arp) {
    uint32_t lb_address = side == side_client ? m_opts.lb_client : m_opts.lb_backend;
    if (arp.op == 2 && arp.sender_ip == lb_address) {
        m_ports[side].peer = arp.sender_mac;
        m_ports[side].peer_known = true;
        return;
    }
    // Answer for everyone we play (gateway, backends), never for the balancer's own
    // addresses, and never a gratuitous announcement.
    if (arp.op == 1 && arp.sender_ip != arp.target_ip && arp.target_ip != m_opts.lb_client &&
        arp.target_ip != m_opts.lb_backend && arp.target_ip != m_opts.addr.vip.addr) {
        send_arp(side, 2, arp.sender_mac, arp.target_ip, arp.sender_ip);
        m_answered.insert(arp.target_ip);
    }
}

bool generator::resolve(std::string* error) {
    if (m_opts.reflect) {
        return true;
    }
    // Ask the balancer for its MACs, from the addresses it will need to reach: it
    // learns ours from the requests, we learn its from the replies.
    const mac_addr broadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uint64_t hz = rte_get_tsc_hz();
    uint64_t deadline = rte_get_tsc_cycles() + 10 * hz;
    uint64_t next_ask = 0;
    phase_result scratch;
    m_phase = &scratch;
    while (!(m_ports[0].peer_known && m_ports[1].peer_known)) {
        uint64_t now = rte_get_tsc_cycles();
        if (now > deadline || g_interrupted) {
            *error = fmt::format(
                "no ARP reply from the balancer on the {} side after 10 s (is it running, "
                "with the addresses given by --lb-client/--lb-backend?)",
                m_ports[0].peer_known ? "backend" : "client");
            return false;
        }
        if (now >= next_ask) {
            send_arp(side_client, 1, broadcast, m_opts.gateway, m_opts.lb_client);
            for (const endpoint& b : m_opts.addr.backends) {
                send_arp(side_backend, 1, broadcast, b.addr, m_opts.lb_backend);
            }
            flush(side_client);
            flush(side_backend);
            next_ask = now + hz / 5;
        }
        receive(side_client, now);
        receive(side_backend, now);
        flush(side_client);
        flush(side_backend);
    }
    // A balancer that learns only from answers to its own requests (evenflowd) asks for
    // the gateway and the backends on its own schedule: until it has, the first packets
    // wait in its slow path or are dropped. Wait for its requests, up to 3 s (a device
    // that learned from ours never asks).
    auto all_asked = [&] {
        if (m_answered.count(m_opts.gateway) == 0) {
            return false;
        }
        for (const endpoint& b : m_opts.addr.backends) {
            if (m_answered.count(b.addr) == 0) {
                return false;
            }
        }
        return true;
    };
    // Once asked, 200 ms more: its control thread takes our answers in and publishes
    // them to the workers (until then SYNs still went to its slow path: --quick's syn
    // point lost a window, 46 dropped over its budget).
    uint64_t asked_deadline = rte_get_tsc_cycles() + 3 * hz;
    bool asked = false;
    while (rte_get_tsc_cycles() < asked_deadline && !g_interrupted) {
        uint64_t now = rte_get_tsc_cycles();
        if (!asked && all_asked()) {
            asked = true;
            asked_deadline = std::min(asked_deadline, now + hz / 5);
        }
        receive(side_client, now);
        receive(side_backend, now);
        flush(side_client);
        flush(side_backend);
    }
    rebuild_templates();
    return true;
}

} // namespace evenflow::gen
