#include "dataplane/worker.hpp"

#include "net/bytes.hpp"
#include "net/checksum.hpp"
#include "net/nat.hpp"
#include "net/reply.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include <fmt/format.h>

#include <cstring>

namespace evenflow::dataplane {

using net::drop_reason;
using net::load16;
using net::packet_meta;
using net::store16;
namespace tcp_flag = net::tcp_flag;

namespace {

std::span<uint8_t> frame_of(rte_mbuf* m) {
    return {rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m)};
}

// The state a flow moves to on a client's segment with these flags: only FIN and RST
// change it. A client cannot make its own flow established (and so pinned): that
// takes the backend's answer (see verified_state).
flow::flow_state next_state(flow::flow_state current, uint8_t flags) {
    if (flags & (tcp_flag::rst | tcp_flag::fin)) {
        return flow::flow_state::closing;
    }
    return current;
}

// The state on a backend's segment: its answer verifies a syn or unverified flow.
flow::flow_state verified_state(flow::flow_state current, uint8_t flags) {
    if (flags & (tcp_flag::rst | tcp_flag::fin)) {
        return flow::flow_state::closing;
    }
    if (current == flow::flow_state::syn || current == flow::flow_state::unverified) {
        return flow::flow_state::established;
    }
    return current;
}

// Whether a draining backend's drain_timeout has passed (clock compared modulo 2^32).
bool drain_expired(const snapshot_backend& b, uint32_t now) {
    return b.state == backend_state::draining && b.drain_deadline_ms != 0 &&
           int32_t(now - uint32_t(b.drain_deadline_ms)) >= 0;
}

// The key under which a backend's replies to this client are found.
net::flow_key backend_side_key(const net::ip_addr& backend, uint16_t backend_port_be,
                               const net::flow_key& client_key) {
    net::flow_key k;
    k.src = backend;
    k.src_port = backend_port_be;
    k.dst = client_key.src;
    k.dst_port = client_key.src_port;
    k.proto = client_key.proto;
    return k;
}

} // namespace

worker_config worker_config::from(const config::dataplane_config& dataplane, uint32_t index) {
    worker_config wc;
    wc.index = index;
    wc.flow_capacity = dataplane.flow_capacity;
    wc.timeouts.syn = uint32_t(dataplane.timeouts.syn.count());
    wc.timeouts.established = uint32_t(dataplane.timeouts.established.count());
    wc.timeouts.closing = uint32_t(dataplane.timeouts.closing.count());
    return wc;
}

uint64_t worker::now_ms() {
    return rte_get_tsc_cycles() / (rte_get_tsc_hz() / 1000);
}

worker::worker(const worker_config& cfg, dataplane_shared& shared) : m_cfg(cfg), m_shared(shared) {}

worker::~worker() {
    if (m_inject != nullptr) {
        rte_mbuf* m;
        while (rte_ring_dequeue(m_inject, reinterpret_cast<void**>(&m)) == 0) {
            rte_pktmbuf_free(m);
        }
        rte_ring_free(m_inject);
    }
}

std::unique_ptr<worker> worker::create(const worker_config& cfg, dataplane_shared& shared,
                                       std::string* error) {
    std::unique_ptr<worker> w(new worker(cfg, shared));
    w->m_flows = flow::flow_table::create(cfg.flow_capacity, cfg.timeouts);
    if (!w->m_flows) {
        *error = fmt::format("worker {}: cannot allocate a flow table of {} flows", cfg.index,
                             cfg.flow_capacity);
        return nullptr;
    }
    std::string ring_name = fmt::format("ef_inject_{}", cfg.index);
    w->m_inject =
        rte_ring_create(ring_name.c_str(), 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (w->m_inject == nullptr) {
        *error = fmt::format("worker {}: cannot create ring {}: {}", cfg.index, ring_name,
                             rte_strerror(rte_errno));
        return nullptr;
    }
    w->m_tx.resize(shared.interfaces.size());
    w->m_check_owner.assign(shared.interfaces.size(), 0);
    for (const interface_info& i : shared.interfaces) {
        w->m_tx[i.index].port_id = i.port_id;
        w->m_check_owner[i.index] = i.steering == steering_mode::handoff ? 1 : 0;
    }
    const size_t workers = shared.steering.workers();
    if (!shared.handoff.empty()) {
        w->m_handoff_out.assign(workers, nullptr);
        for (size_t other = 0; other < workers; ++other) {
            if (other == cfg.index) {
                continue;
            }
            w->m_handoff_out[other] = shared.handoff[cfg.index * workers + other];
            w->m_handoff_in.push_back(shared.handoff[other * workers + cfg.index]);
        }
    }
    w->m_sweep_active.assign(backend_registry::max_ids, 0);
    w->m_stats.totals.flow_capacity.set(w->m_flows->capacity());
    return w;
}

int worker::run() {
    m_shared.qsbr->register_reader(m_cfg.index);
    m_shared.qsbr->online(m_cfg.index);
    while (!m_shared.stop.load(std::memory_order_relaxed)) {
        poll_once(now_ms());
    }
    m_shared.qsbr->offline(m_cfg.index);
    m_shared.qsbr->unregister_reader(m_cfg.index);
    return 0;
}

void worker::poll_once(uint64_t now_ms64) {
    auto now = uint32_t(now_ms64);
    worker_counters& c = m_stats.totals;
    // Busy cycles are those of iterations that received something, as testpmd's
    // --record-core-cycles counts them: cycles per packet is then the cost of a
    // packet, whatever the offered rate.
    const uint64_t start_tsc = rte_rdtsc();

    // Packets the control thread built or released (ARP, resolved, probes).
    rte_mbuf* injected[burst_size];
    unsigned n_injected =
        rte_ring_dequeue_burst(m_inject, reinterpret_cast<void**>(injected), burst_size, nullptr);
    for (unsigned i = 0; i < n_injected; ++i) {
        uint16_t iface = injected[i]->port;
        if (iface >= m_tx.size()) {
            drop(injected[i], drop_reason::not_for_us);
            continue;
        }
        c.from_control.add();
        transmit(iface, injected[i]);
    }

    bool idle = true;
    // Packets other workers received for connections this one owns; each carries the
    // interface it arrived on in mbuf->port.
    for (rte_ring* ring : m_handoff_in) {
        rte_mbuf* pkts[burst_size];
        unsigned n =
            rte_ring_sc_dequeue_burst(ring, reinterpret_cast<void**>(pkts), burst_size, nullptr);
        if (n == 0) {
            continue;
        }
        idle = false;
        c.handoff_in.add(n);
        process_burst(handed_off, pkts, uint16_t(n), now);
    }
    for (const interface_info& i : m_shared.interfaces) {
        rte_mbuf* pkts[burst_size];
        uint16_t n = rte_eth_rx_burst(i.port_id, uint16_t(m_cfg.index), pkts, burst_size);
        if (n == 0) {
            continue;
        }
        idle = false;
        c.bursts.add();
        process_burst(i.index, pkts, n, now);
    }
    flush();
    if (idle) {
        c.idle_polls.add();
        sweep(now);
    } else {
        c.busy_cycles.add(rte_rdtsc() - start_tsc);
    }
    // Nothing from the published objects is held past this point.
    m_shared.qsbr->quiescent(m_cfg.index);
}

void worker::process_burst(uint16_t rx_iface, rte_mbuf** pkts, uint16_t count, uint32_t now) {
    worker_counters& c = m_stats.totals;
    rx_item items[burst_size];
    // The snapshot is loaded once for the whole burst.
    const snapshot* snap = m_shared.snap.load();
    const bool from_handoff = rx_iface == handed_off;
    // Whether packets of this port may belong to another worker: the port does not
    // steer by the client, or the NIC's hash is to be checked against the owner.
    const bool check_owner = !from_handoff && m_check_owner[rx_iface];

    // Pass 1: parse every packet, hand off those another worker owns, hash the key
    // of the rest and prefetch its flow bucket.
    uint16_t kept = 0;
    for (uint16_t i = 0; i < count; ++i) {
        if (i + 1 < count) {
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
        }
        rx_item& it = items[kept];
        it.mbuf = pkts[i];
        it.iface = from_handoff ? pkts[i]->port : rx_iface;
        if (!from_handoff) {
            c.rx_packets.add();
            c.rx_bytes.add(rte_pktmbuf_pkt_len(pkts[i]));
        }
        it.meta = packet_meta{};
        it.parsed = net::parse_frame(frame_of(pkts[i]), it.meta);
        it.hash = 0;
        it.reverse_hash = 0;
        it.svc = nullptr;
        if (it.parsed == drop_reason::none && it.meta.l4_proto == net::ipproto_tcp) {
            const net::flow_key& k = it.meta.key;
            if (snap != nullptr) {
                it.svc = snap->find_service(k.dst, k.dst_port, k.proto);
            }
            if (check_owner && hand_off(it)) {
                continue;
            }
            it.hash = net::flow_hash(k);
            m_flows->prefetch(it.hash);
        }
        ++kept;
    }
    count = kept;

    // Pass 2: with the buckets on their way, prefetch the candidate entries too: at a
    // million flows and more both are cache misses, and overlapping them doubles the
    // lookup rate (bench_micro: flow_lookup/packet_path with entry_prefetch:1).
    // A SYN to a service will most likely insert two keys: its own (both candidate
    // buckets) and the backend's reply key; their buckets are fetched now too, or a
    // new flow waits on three misses in a row (scripts/bench, syn point).
    bool new_flows = false;
    for (uint16_t i = 0; i < count; ++i) {
        rx_item& it = items[i];
        if (it.hash == 0) {
            continue;
        }
        m_flows->prefetch_entry(it.hash);
        if (snap != nullptr &&
            (it.meta.tcp_flags & (tcp_flag::syn | tcp_flag::ack)) == tcp_flag::syn) {
            prefetch_new_flow(it, *snap);
            new_flows = true;
        }
    }
    // Pass 2b, new flows only: their buckets have arrived; fetch the entry slots the
    // two inserts will write, the last miss a new flow would otherwise wait on.
    if (new_flows) {
        for (uint16_t i = 0; i < count; ++i) {
            if (items[i].reverse_hash != 0) {
                m_flows->prefetch_insert_slot(items[i].hash);
                m_flows->prefetch_insert_slot(items[i].reverse_hash);
            }
        }
    }

    // Pass 3: look up and act.
    const neighbor_table* neigh = m_shared.neighbors.load();
    for (next_hop_memo& memo : m_next_hops) {
        memo.iface = UINT16_MAX;
    }
    for (uint16_t i = 0; i < count; ++i) {
        if (snap == nullptr) {
            drop(items[i].mbuf, drop_reason::not_for_us);
            continue;
        }
        handle(items[i].iface, items[i], *snap, neigh, now);
    }
}

bool worker::hand_off(rx_item& item) {
    // The client is the source of a packet to a VIP and the destination of anything
    // else (a backend's reply): its address and port choose the owner.
    const net::flow_key& k = item.meta.key;
    const bool to_vip = item.svc != nullptr;
    const net::ip_addr& client = to_vip ? k.src : k.dst;
    const uint16_t client_port = to_vip ? k.src_port : k.dst_port;
    uint16_t owner = m_shared.steering.owner(client, client_port);
    if (owner == m_cfg.index) {
        return false;
    }
    item.mbuf->port = item.iface; // the owner needs the arrival interface
    if (rte_ring_sp_enqueue(m_handoff_out[owner], item.mbuf) != 0) {
        drop(item.mbuf, drop_reason::handoff_full);
        return true;
    }
    m_stats.totals.handoff_out.add();
    return true;
}

void worker::prefetch_new_flow(rx_item& item, const snapshot& snap) const {
    const net::flow_key& key = item.meta.key;
    const snapshot_service* svc = item.svc;
    if (svc == nullptr) {
        return;
    }
    m_flows->prefetch_for_insert(item.hash);
    if (const snapshot_backend* b = snap.find_backend(svc->pick(svc->flow_hash(key)))) {
        net::flow_key reverse = backend_side_key(b->address, b->port_be, key);
        item.reverse_hash = net::flow_hash(reverse);
        m_flows->prefetch_for_insert(item.reverse_hash);
    }
}

void worker::handle(uint16_t iface, rx_item& item, const snapshot& snap,
                    const neighbor_table* neigh, uint32_t now) {
    rte_mbuf* m = item.mbuf;
    packet_meta& meta = item.meta;
    if (item.parsed != drop_reason::none) {
        drop(m, item.parsed);
        return;
    }
    if (m->nb_segs > 1) {
        // Virtual devices here never chain buffers below the MTU; a chained frame
        // would have its headers split, which the parser does not follow.
        drop(m, drop_reason::chained_mbuf);
        return;
    }
    switch (meta.l3) {
    case net::l3_type::arp:
        to_control(iface, m, control_reason::arp);
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
    // ICMP: answer echo requests to VIPs and to our interface addresses.
    if ((meta.l4_proto == net::ipproto_icmp || meta.l4_proto == net::ipproto_icmpv6) &&
        (is_interface_address(m_shared.interfaces, meta.key.dst) || snap.is_vip(meta.key.dst)) &&
        net::make_echo_reply(frame_of(m), meta)) {
        m_stats.totals.icmp_echo_replies.add();
        transmit(iface, m);
        return;
    }
    drop(m, drop_reason::not_for_us);
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
        m_flows->refresh(entry, next_state(entry->value.state, flags), now);
        to_backend(m, meta, entry->value.backend_id, entry->value.nat_addr, entry->value.nat_port,
                   neigh);
        return;
    }

    // No flow: pick with Maglev. A SYN starts a flow; anything else is a flow we
    // have no state for (another worker's, or from before a restart) and gets the
    // same answer as long as the backend set is unchanged.
    uint32_t backend_id = svc.pick(svc.flow_hash(meta.key));
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
    forward_value.state =
        opening ? flow::flow_state::syn : next_state(flow::flow_state::unverified, flags);
    forward_value.direction = flow::flow_direction::client_to_backend;
    if (m_flows->insert(meta.key, item.hash, forward_value, now) != nullptr) {
        flow::flow_value reverse_value = forward_value;
        reverse_value.nat_addr = svc.vip;
        reverse_value.nat_port = svc.port_be;
        reverse_value.direction = flow::flow_direction::backend_to_client;
        net::flow_key reverse = backend_side_key(b->address, b->port_be, meta.key);
        // Pass 2 hashed this key already for a SYN (same snapshot, same pick).
        uint32_t reverse_hash =
            item.reverse_hash != 0 ? item.reverse_hash : net::flow_hash(reverse);
        m_flows->insert(reverse, reverse_hash, reverse_value, now);
    } else {
        c.drops[size_t(drop_reason::flow_table_full)].add();
    }
    if (opening) {
        c.new_flows.add();
        m_stats.backends[backend_id].new_flows.add();
    } else {
        c.stateless_forward.add();
    }
    to_backend(m, meta, backend_id, b->address, b->port_be, neigh);
}

void worker::handle_backend_to_client(uint16_t iface, rx_item& item, const snapshot& snap,
                                      const neighbor_table* neigh, uint32_t now) {
    rte_mbuf* m = item.mbuf;
    packet_meta& meta = item.meta;
    worker_counters& c = m_stats.totals;

    flow::flow_entry* entry = m_flows->lookup(meta.key, item.hash, now);
    if (entry != nullptr && entry->value.direction == flow::flow_direction::backend_to_client) {
        flow::flow_state before = entry->value.state;
        flow::flow_state after = verified_state(before, meta.tcp_flags);
        m_flows->refresh(entry, after, now);
        if (after == flow::flow_state::established && before != after) {
            // The backend answered: the client's side of the flow is verified too.
            net::flow_key forward;
            forward.src = meta.key.dst;
            forward.src_port = meta.key.dst_port;
            forward.dst = entry->value.nat_addr;
            forward.dst_port = entry->value.nat_port;
            forward.proto = meta.key.proto;
            if (flow::flow_entry* f = m_flows->lookup(forward, net::flow_hash(forward), now);
                f != nullptr && f->value.state != flow::flow_state::closing) {
                m_flows->refresh(f, flow::flow_state::established, now);
            }
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
    if (is_interface_address(m_shared.interfaces, meta.key.dst)) {
        to_control(iface, m, control_reason::local_tcp);
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
    const rte_ether_addr* mac = next_hop_mac(neigh, out->iface, out->next_hop);
    if (mac == nullptr) {
        to_control(out->iface, m, control_reason::unresolved);
        return;
    }
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    rte_ether_addr_copy(mac, &eth->dst_addr);
    rte_ether_addr_copy(&m_shared.interfaces[out->iface].mac, &eth->src_addr);
    transmit(out->iface, m);
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

void worker::to_control(uint16_t iface, rte_mbuf* m, control_reason reason) {
    m->port = iface;
    m->hash.usr = uint32_t(reason);
    if (rte_ring_mp_enqueue(m_shared.to_control, m) != 0) {
        drop(m, drop_reason::control_ring_full);
        return;
    }
    m_stats.totals.to_control.add();
}

void worker::transmit(uint16_t iface, rte_mbuf* m) {
    tx_queue& q = m_tx[iface];
    if (q.count == std::size(q.pkts)) {
        flush();
    }
    q.pkts[q.count++] = m;
}

void worker::drop(rte_mbuf* m, drop_reason reason) {
    m_stats.totals.drops[size_t(reason)].add();
    rte_pktmbuf_free(m);
}

void worker::flush() {
    worker_counters& c = m_stats.totals;
    for (tx_queue& q : m_tx) {
        if (q.count == 0) {
            continue;
        }
        uint64_t bytes = 0;
        for (uint16_t i = 0; i < q.count; ++i) {
            bytes += rte_pktmbuf_pkt_len(q.pkts[i]);
        }
        uint16_t sent = rte_eth_tx_burst(q.port_id, uint16_t(m_cfg.index), q.pkts, q.count);
        for (uint16_t i = sent; i < q.count; ++i) {
            bytes -= rte_pktmbuf_pkt_len(q.pkts[i]);
            c.drops[size_t(drop_reason::tx_full)].add();
            rte_pktmbuf_free(q.pkts[i]);
        }
        c.tx_packets.add(sent);
        c.tx_bytes.add(bytes);
        q.count = 0;
    }
}

void worker::sweep(uint32_t now) {
    // Walks the flow table a slice at a time when there is nothing to receive:
    // frees expired entries and counts live flows per backend. Counts are published
    // once a full pass completes, so a reader never sees a half-counted pass.
    size_t next = m_flows->sweep(
        m_sweep_cursor, m_cfg.sweep_slots_per_poll, now, [this](const flow::flow_entry& e) {
            if (e.value.direction == flow::flow_direction::client_to_backend) {
                ++m_sweep_active[e.value.backend_id];
            }
        });
    if (next == 0) {
        uint64_t total = 0;
        for (size_t id = 0; id < m_sweep_active.size(); ++id) {
            if (m_sweep_active[id] != 0 || m_stats.backends[id].active_flows.get() != 0) {
                m_stats.backends[id].active_flows.set(m_sweep_active[id]);
                total += m_sweep_active[id];
                m_sweep_active[id] = 0;
            }
        }
        worker_counters& c = m_stats.totals;
        c.flows_active.set(total);
        const flow::flow_table_stats& fs = m_flows->stats();
        c.flow_evictions.set(fs.evictions);
        c.flow_insert_failures.set(fs.insert_failures);
        c.flow_expired.set(fs.expired);
    }
    m_sweep_cursor = next;
}

} // namespace evenflow::dataplane
