#include "dataplane/worker.hpp"

#include "dataplane/flow_rules.hpp"

#include "net/bytes.hpp"
#include "net/checksum.hpp"
#include "net/icmp.hpp"
#include "net/nat.hpp"
#include "net/reply.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_random.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace evenflow::dataplane {

using net::drop_reason;
using net::load16;
using net::packet_meta;
using net::store16;
namespace tcp_flag = net::tcp_flag;

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
    w->m_clients = std::make_unique<flow::client_sketches>(uint32_t(rte_rand()));
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
        // Test hook (EVENFLOW_TEST_WEDGE_FILE): a wedged worker stops polling, as one
        // stuck in a bug would; liveness must notice.
        while (m_shared.wedge_worker.load(std::memory_order_relaxed) == m_cfg.index + 1 &&
               !m_shared.stop.load(std::memory_order_relaxed)) {
            rte_pause();
        }
        poll_once(now_ms());
    }
    m_shared.qsbr->offline(m_cfg.index);
    m_shared.qsbr->unregister_reader(m_cfg.index);
    return 0;
}

void worker::poll_once(uint64_t now_ms64) {
    auto now = uint32_t(now_ms64);
    worker_counters& c = m_stats.totals;
    c.loops.add();
    m_clients->poll();
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
        if (!set_vlan(iface, injected[i])) {
            drop(injected[i], drop_reason::tx_full);
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
        } else if (check_owner && it.parsed == drop_reason::none &&
                   (it.meta.l4_proto == net::ipproto_icmp ||
                    it.meta.l4_proto == net::ipproto_icmpv6) &&
                   hand_off(it)) {
            continue;
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
    // else (a backend's reply): its address and port choose the owner. An ICMP error
    // names its flow in the packet it quotes.
    const net::flow_key& k = item.meta.key;
    net::ip_addr client;
    uint16_t client_port = 0;
    if (item.meta.l4_proto == net::ipproto_tcp) {
        const bool to_vip = item.svc != nullptr;
        client = to_vip ? k.src : k.dst;
        client_port = to_vip ? k.src_port : k.dst_port;
    } else {
        net::icmp_quote quote;
        const snapshot* snap = m_shared.snap.load();
        if (snap == nullptr || !net::read_icmp_error(frame_of(item.mbuf), item.meta, quote)) {
            return false; // echo, ARP and the like: any worker answers them
        }
        // To a VIP: it quotes the VIP's packet to the client; else our packet from it.
        const bool to_vip = snap->is_vip(k.dst);
        client = to_vip ? quote.key.dst : quote.key.src;
        client_port = to_vip ? quote.key.dst_port : quote.key.src_port;
    }
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
    const uint32_t pick = svc->pick(svc->flow_hash(key));
    if (const snapshot_backend* b = snap.find_backend(pick)) {
        net::flow_key reverse = backend_side_key(b->address, b->port_be, key);
        item.reverse_hash = net::flow_hash(reverse);
        item.pick = pick;
        m_flows->prefetch_for_insert(item.reverse_hash);
    }
}

std::string_view to_string(control_reason r) {
    return name_of(r);
}

bool worker::within_budget(control_reason reason) {
    // Only slow-path packets pay for this (a TSC read and some arithmetic).
    budget& b = m_budgets[size_t(reason)];
    const double rate = control_budget_per_s[size_t(reason)];
    const uint64_t now = rte_get_tsc_cycles();
    if (b.last_tsc == 0) {
        b.tokens = rate / 10;
    } else {
        b.tokens = std::min(rate / 10,
                            b.tokens + double(now - b.last_tsc) * rate / double(rte_get_tsc_hz()));
    }
    b.last_tsc = now;
    if (b.tokens < 1) {
        return false;
    }
    b.tokens -= 1;
    return true;
}

bool worker::to_control(uint16_t iface, rte_mbuf* m, control_reason reason) {
    drop_reason lost = drop_reason::none;
    m->port = iface;
    if (!within_budget(reason)) {
        lost = drop_reason::control_budget;
    } else if (rte_ring_mp_enqueue(m_shared.to_control[size_t(reason)], m) != 0) {
        lost = drop_reason::control_ring_full;
    }
    if (lost != drop_reason::none) {
        if (reason == control_reason::probe) {
            // A probe's real answer lost to our own overload (the caller marks that
            // probe inconclusive): forged ones never get this far.
            m_stats.totals.probe_replies_lost.add();
        }
        drop(m, lost);
        return false;
    }
    m_stats.totals.to_control.add();
    return true;
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
    // A backend's active flows are its verified ones (established, or one way in tunnel
    // mode): entries a spoofed SYN made must not count for the skew detector.
    size_t next = m_flows->sweep(
        m_sweep_cursor, m_cfg.sweep_slots_per_poll, now, [this](const flow::flow_entry& e) {
            if (e.value.direction == flow::flow_direction::client_to_backend) {
                ++m_sweep_entries;
                if (e.value.state == flow::flow_state::established ||
                    e.value.state == flow::flow_state::one_way) {
                    ++m_sweep_active[e.value.backend_id];
                }
            }
        });
    if (next == 0) {
        for (size_t id = 0; id < m_sweep_active.size(); ++id) {
            if (m_sweep_active[id] != 0 || m_stats.backends[id].active_flows.get() != 0) {
                m_stats.backends[id].active_flows.set(m_sweep_active[id]);
                m_sweep_active[id] = 0;
            }
        }
        worker_counters& c = m_stats.totals;
        c.flows_active.set(m_sweep_entries);
        m_sweep_entries = 0;
        const flow::flow_table_stats& fs = m_flows->stats();
        c.flow_evictions.set(fs.evictions);
        c.flow_insert_failures.set(fs.insert_failures);
        c.flow_expired.set(fs.expired);
    }
    m_sweep_cursor = next;
}

} // namespace evenflow::dataplane
