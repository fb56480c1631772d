// evengen's loop: sends what the mode produces, paced by pacing.hpp, receives and
// checks every packet (verify.hpp), and keeps the per-phase counters and latency.
#include "engine.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include <fmt/format.h>

#include <cstdio>
#include <cstring>

namespace evenflow::gen {

endpoint generator::backend_for(uint64_t flow) const {
    const std::vector<endpoint>& b = m_opts.addr.backends;
    if (m_opts.reflect) {
        return b[flow % b.size()];
    }
    uint8_t landed = m_tracker.backend_of(flow);
    return landed != 0 ? b[landed - 1] : b[0];
}

tcp_fields generator::forward_fields(uint64_t flow, uint32_t seq, uint8_t flags) const {
    tcp_fields f;
    f.src = m_opts.addr.client(flow);
    f.dst = m_opts.addr.vip;
    f.seq = seq;
    f.ack = 1;
    f.flags = flags;
    return f;
}

tcp_fields generator::syn_fields(uint64_t flow) const {
    tcp_fields f = forward_fields(flow, 0, tcp_flags::syn);
    f.ack = 0;
    return f;
}

tcp_fields generator::reverse_fields(uint64_t flow, uint32_t seq, uint8_t flags) const {
    tcp_fields f;
    f.src = backend_for(flow);
    f.dst = m_opts.addr.client(flow);
    f.seq = seq;
    f.ack = 1;
    f.flags = flags;
    return f;
}

tcp_fields generator::flood_syn() {
    // xorshift64: a source address in the flood /16 and a port, a fresh pair each time
    // (repeats only as often as chance makes them).
    uint64_t x = m_flood_random;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    m_flood_random = x;
    tcp_fields f;
    f.src = {(m_opts.flood_base & 0xffff0000) | uint32_t(x & 0xffff),
             uint16_t(1024 + (x >> 16) % 64512)};
    f.dst = m_opts.addr.vip;
    f.seq = uint32_t(x >> 32);
    f.ack = 0;
    f.flags = tcp_flags::syn;
    return f;
}

bool generator::enqueue(size_t side, const tcp_fields& f, bool data, bool flood) {
    rte_mbuf* m = rte_pktmbuf_alloc(m_pool);
    if (m == nullptr) {
        return false;
    }
    const frame_template& t = *m_templates[side][data ? 1 : 0];
    auto* bytes = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(t.frame_length())));
    tcp_fields stamped = f;
    stamped.timestamp = rte_rdtsc();
    t.write(bytes, stamped);
    m->hash.usr = flood ? 2 : 1; // 1: part of the load, counted when sent, expected back
    port_state& p = m_ports[side];
    if (p.tx_count == std::size(p.tx)) {
        flush(side);
        if (flood && p.tx_count == std::size(p.tx)) {
            ++m_phase->count.flood_deficit;
            rte_pktmbuf_free(m);
            return false;
        }
        if (p.tx_count == std::size(p.tx)) {
            ++m_phase->count.tx_busy; // the ring and our queue are full: not sent
            rte_pktmbuf_free(m);
            return false;
        }
    }
    p.tx[p.tx_count++] = m;
    return true;
}

void generator::flush(size_t side) {
    port_state& p = m_ports[side];
    if (p.tx_count == 0) {
        return;
    }
    // Read the marks before the PMD owns the buffers: ARP is not part of the load.
    uint32_t mark[burst * 8];
    for (uint16_t i = 0; i < p.tx_count; ++i) {
        mark[i] = p.tx[i]->hash.usr;
    }
    uint16_t sent = rte_eth_tx_burst(p.id, 0, p.tx, p.tx_count);
    counters& c = m_phase->count;
    for (uint16_t i = 0; i < sent; ++i) {
        c.tx[side == side_client ? 0 : 1] += mark[i] == 1;
        c.flood_sent += mark[i] == 2 && side == side_client;
        c.flood_answers += mark[i] == 2 && side == side_backend;
    }
    if (m_first_tx_tsc == 0 && sent > 0) {
        m_first_tx_tsc = rte_rdtsc();
    }
    // What the ring refused waits for the next flush: a lifecycle's answers must
    // not be dropped here, or its connection never completes.
    std::memmove(p.tx, p.tx + sent, (p.tx_count - sent) * sizeof(rte_mbuf*));
    p.tx_count = uint16_t(p.tx_count - sent);
}

void generator::receive(size_t side, uint64_t now) {
    // One burst from each queue: a device with several workers sends from all of them.
    for (uint16_t q = 0; q < m_ports[side].rx_queues; ++q) {
        receive_queue(side, q, now);
    }
}

void generator::receive_queue(size_t side, uint16_t queue, uint64_t now) {
    port_state& p = m_ports[side];
    rte_mbuf* pkts[burst];
    uint16_t n = rte_eth_rx_burst(p.id, queue, pkts, burst);
    if (n == 0) {
        return;
    }
    for (uint16_t i = 0; i < n; ++i) {
        if (i + 1 < n) {
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
        }
        rte_mbuf* m = pkts[i];
        std::span<const uint8_t> frame{rte_pktmbuf_mtod(m, const uint8_t*),
                                       rte_pktmbuf_data_len(m)};
        received_tcp pkt;
        bool checksums_ok = false;
        switch (read_frame(frame, pkt, checksums_ok)) {
        case frame_kind::arp:
            m_last_rx_tsc = now;
            if (std::optional<arp_message> arp = read_arp(frame)) {
                on_arp(side, *arp);
            }
            break;
        case frame_kind::malformed:
            m_last_rx_tsc = now;
            ++m_phase->count.rx[side == side_backend ? 0 : 1];
            ++m_phase->count.malformed;
            break;
        case frame_kind::tcp:
            if (!checksums_ok) {
                ++m_phase->count.bad_checksum;
            }
            on_tcp(side, pkt, now);
            break;
        }
        rte_pktmbuf_free(m);
    }
}

void generator::on_tcp(size_t side, const received_tcp& pkt, uint64_t now) {
    counters& c = m_phase->count;
    // What arrives on the backend side was sent by a client, and vice versa.
    direction dir = side == side_backend ? direction::forward : direction::reverse;
    if (is_flood_source(dir == direction::forward ? pkt.src : pkt.dst)) {
        // Not the load: neither a sign of life for the drain nor a flow to check.
        ++c.flood_received;
        if (dir == direction::forward && m_opts.flood_answer) {
            tcp_fields f;
            f.src = pkt.dst;
            f.dst = pkt.src;
            f.seq = 0;
            f.ack = pkt.seq + 1;
            f.flags = tcp_flags::syn | tcp_flags::ack;
            enqueue(side_backend, f, false, true);
        }
        return;
    }
    m_last_rx_tsc = now;
    ++c.rx[size_t(dir)];
    if (pkt.timestamp) {
        uint64_t cycles = (now - *pkt.timestamp) & 0xffffffffffffULL;
        m_phase->latency.record(uint64_t(double(cycles) * m_ns_per_cycle));
    }
    const addressing& a = m_opts.addr;
    // Which end is the client, and what the other end must be.
    bool client_is_src = (dir == direction::forward) != m_opts.reflect;
    const endpoint& client = client_is_src ? pkt.src : pkt.dst;
    const endpoint& other = client_is_src ? pkt.dst : pkt.src;
    std::optional<uint64_t> flow = a.flow_of(client);
    if (!flow || *flow >= m_opts.flows) {
        ++c.unknown_flow;
        return;
    }
    int backend = -1;
    if (m_opts.reflect) {
        bool ok = dir == direction::forward ? other == a.vip : other == backend_for(*flow);
        if (!ok) {
            ++c.wrong_endpoint;
            return;
        }
    } else {
        if (pkt.ttl != 63) {
            ++c.ttl_not_decremented;
        }
        if (dir == direction::forward) {
            backend = a.backend_index(other);
            if (backend < 0) {
                ++c.wrong_endpoint;
                return;
            }
        } else if (other != a.vip) {
            ++c.wrong_endpoint;
            return;
        }
    }
    if (!m_tracker.in_order(*flow, dir, pkt.seq)) {
        ++c.reordered;
    }
    if (backend >= 0) {
        flow_tracker::sighting s = m_tracker.land(*flow, uint8_t(backend + 1));
        if (s.first) {
            ++c.new_flows_per_backend[size_t(backend)];
        } else if (s.moved) {
            ++c.moved;
        } else if (m_opts.mode == traffic::syn) {
            ++c.duplicate_syn;
        }
    }
    if (m_opts.mode != traffic::lifecycle) {
        return;
    }
    // Lifecycle: the backend side answers SYN and FIN, the client side goes on.
    uint8_t f = pkt.flags;
    if (dir == direction::forward) {
        if ((f & tcp_flags::syn) && !(f & tcp_flags::ack)) {
            enqueue(side_backend, reverse_fields(*flow, 0, tcp_flags::syn | tcp_flags::ack), false);
        } else if (f & tcp_flags::fin) {
            enqueue(side_backend, reverse_fields(*flow, 1, tcp_flags::fin | tcp_flags::ack), false);
        }
        return;
    }
    uint32_t k = m_opts.lifecycle_data;
    if ((f & tcp_flags::syn) && (f & tcp_flags::ack)) {
        enqueue(side_client, forward_fields(*flow, 1, tcp_flags::ack), false);
        for (uint32_t i = 0; i < k; ++i) {
            enqueue(side_client, forward_fields(*flow, 2 + i, tcp_flags::psh | tcp_flags::ack),
                    true);
        }
        enqueue(side_client, forward_fields(*flow, 2 + k, tcp_flags::fin | tcp_flags::ack), false);
    } else if (f & tcp_flags::fin) {
        enqueue(side_client, forward_fields(*flow, 3 + k, tcp_flags::ack), false);
        ++c.lifecycles_completed;
    }
}

template <class Next>
void generator::pump(Next&& next, double seconds, double rate) {
    counters& c = m_phase->count;
    // A phase may be pumped more than once (warm-up passes): counts accumulate.
    c.new_flows_per_backend.resize(m_opts.addr.backends.size(), 0);
    uint64_t hz = rte_get_tsc_hz();
    uint64_t start = rte_get_tsc_cycles();
    uint64_t end = start + uint64_t(seconds * double(hz));
    uint64_t generated = 0;   // packets `next` produced
    uint64_t written_off = 0; // in flight when the device went quiet: presumed lost
    uint64_t quiet_since = start;
    m_first_tx_tsc = 0;
    m_last_rx_tsc = 0;
    bool sending = true;
    // A lifecycle puts up to this many packets in flight per SYN sent.
    // A lifecycle is a SYN now and up to this many packets later, sent as answers
    // arrive: the window counts open connections at that weight, so the answers
    // never overflow a ring.
    const bool lifecycles = m_opts.mode == traffic::lifecycle;
    const uint64_t per_send = lifecycles ? m_opts.lifecycle_data + 6 : 1;
    pacer pace(rate, hz, start, m_opts.window, per_send, burst);
    // The flood keeps its own schedule, never waits for answers.
    const bool flooding = lifecycles && m_opts.flood > 0;
    pacer flood_pace(m_opts.flood, hz, start, UINT64_MAX / 2, 1, burst);
    uint64_t abandoned = 0; // lifecycles presumed dead when the device went quiet
    while (!g_interrupted) {
        uint64_t now = rte_get_tsc_cycles();
        receive(side_client, now);
        receive(side_backend, now);
        flush(side_client);
        flush(side_backend);
        uint64_t packets_in_flight = c.sent() - std::min(c.sent(), c.received() + written_off);
        uint64_t in_flight =
            lifecycles
                ? (generated - std::min(generated, c.lifecycles_completed + abandoned)) * per_send
                : packets_in_flight;
        if (!sending) {
            // Drain: until nothing is in flight or the device has been quiet 50 ms.
            uint64_t last = std::max(m_last_rx_tsc, quiet_since);
            bool queued = m_ports[side_client].tx_count + m_ports[side_backend].tx_count > 0;
            if ((in_flight == 0 && packets_in_flight == 0 && !queued) || now - last > hz / 20) {
                break;
            }
            continue;
        }
        if (now >= end) {
            sending = false;
            quiet_since = now;
            continue;
        }
        if (flooding) { // before the load, which may wait for its window
            uint64_t flood_budget = flood_pace.budget(now, 0);
            for (uint64_t i = 0; i < flood_budget; ++i) {
                flood_pace.sent();
                enqueue(side_client, flood_syn(), false, true);
            }
        }
        if (m_ports[side_client].tx_count >= burst ||
            (m_port_count > 1 && m_ports[side_backend].tx_count >= burst)) {
            continue; // the device is not taking packets: no point building more
        }
        if (pace.window_full(in_flight)) {
            // Nothing has come back for 100 ms: what is in flight is not coming.
            if (now - std::max(m_last_rx_tsc, quiet_since) > hz / 10) {
                written_off += in_flight;
                abandoned = generated - std::min(generated, c.lifecycles_completed);
                quiet_since = now;
            }
            continue;
        }
        uint64_t budget = pace.budget(now, in_flight);
        for (uint64_t i = 0; i < budget; ++i) {
            size_t side = 0;
            tcp_fields f;
            bool data = true;
            if (!next(side, f, data)) {
                sending = false;
                quiet_since = now;
                break;
            }
            ++generated;
            pace.sent();
            enqueue(side, f, data);
        }
    }
    flush(side_client);
    flush(side_backend);
    c.rate_deficit += pace.deficit();
    c.flood_deficit += flood_pace.deficit();
    uint64_t last = std::max(m_last_rx_tsc, m_first_tx_tsc);
    m_phase->seconds += m_first_tx_tsc == 0 ? 0 : double(last - m_first_tx_tsc) / double(hz);
}

void generator::warm_up(run_result& result) {
    if (m_opts.mode != traffic::established || m_opts.reflect) {
        return;
    }
    // One packet per flow creates the balancer's entries (a mid-stream ACK is a
    // flow it forwards and tracks); what gets lost is sent again, three rounds.
    m_phase = &result.warmup;
    for (int pass = 0; pass < 3; ++pass) {
        ++result.warmup_passes;
        uint64_t flow = 0;
        auto next = [&](size_t& side, tcp_fields& f, bool& data) {
            while (flow < m_opts.flows && m_tracker.backend_of(flow) != 0) {
                ++flow;
            }
            if (flow >= m_opts.flows) {
                return false;
            }
            side = side_client;
            data = true;
            f = forward_fields(flow++, 0, tcp_flags::ack);
            return true;
        };
        pump(next, 600, 0); // passes accumulate into result.warmup
        uint64_t missing = 0;
        for (uint64_t i = 0; i < m_opts.flows; ++i) {
            missing += m_tracker.backend_of(i) == 0;
        }
        result.flows_never_landed = missing;
        if (missing == 0 || g_interrupted) {
            break;
        }
    }
    m_phase = nullptr;
}

void generator::measure(run_result& result) {
    m_phase = &result.measured;
    const uint64_t flows = m_opts.flows;
    switch (m_opts.mode) {
    case traffic::established: {
        // Round-robin over every flow, so all of them are live in the balancer's
        // table; backends answer as often as clients send when `reverse` is on.
        uint64_t fwd = 0, rev = 0;
        bool turn_reverse = false;
        uint8_t flags = tcp_flags::psh | tcp_flags::ack;
        auto next = [&](size_t& side, tcp_fields& f, bool& data) {
            data = true;
            const bool reverse_turn = m_opts.reverse && turn_reverse;
            turn_reverse = !turn_reverse;
            if (reverse_turn) {
                const uint64_t flow = rev % flows;
                const auto seq = uint32_t(1 + rev / flows);
                ++rev;
                // A flow that never landed in the warm-up has no backend to answer
                // from: its turn goes to a client.
                if (m_opts.reflect || m_tracker.backend_of(flow) != 0) {
                    side = side_backend;
                    f = reverse_fields(flow, seq, flags);
                    return true;
                }
            }
            side = side_client;
            f = forward_fields(fwd % flows, uint32_t(1 + fwd / flows), flags);
            ++fwd;
            return true;
        };
        pump(next, m_opts.duration_s, m_opts.rate);
        break;
    }
    case traffic::syn:
    case traffic::lifecycle: {
        // A SYN per new flow at the offered rate. For lifecycles the rest of each
        // connection is driven by what comes back (on_tcp).
        uint64_t flow = 0;
        auto next = [&](size_t& side, tcp_fields& f, bool& data) {
            if (flow >= flows) {
                return false;
            }
            side = side_client;
            data = false;
            f = syn_fields(flow++);
            ++m_phase->count.lifecycles_started;
            return true;
        };
        pump(next, m_opts.duration_s, m_opts.rate);
        break;
    }
    }
    m_phase = nullptr;
}

uint64_t generator::write_pcap() {
    phase_result scratch;
    m_phase = &scratch;
    auto put = [&](const tcp_fields& f, bool data) {
        while (!enqueue(side_client, f, data)) {
            flush(side_client);
        }
    };
    const uint64_t flows = m_opts.flows;
    switch (m_opts.mode) {
    case traffic::established: {
        uint64_t total = m_opts.pcap_packets != 0 ? m_opts.pcap_packets : flows;
        for (uint64_t g = 0; g < total && !g_interrupted; ++g) {
            put(forward_fields(g % flows, uint32_t(1 + g / flows), tcp_flags::psh | tcp_flags::ack),
                true);
        }
        break;
    }
    case traffic::syn:
        for (uint64_t g = 0; g < flows && !g_interrupted; ++g) {
            put(syn_fields(g), false);
        }
        break;
    case traffic::lifecycle: {
        uint32_t k = m_opts.lifecycle_data;
        for (uint64_t g = 0; g < flows && !g_interrupted; ++g) {
            put(syn_fields(g), false);
            put(forward_fields(g, 1, tcp_flags::ack), false);
            for (uint32_t i = 0; i < k; ++i) {
                put(forward_fields(g, 2 + i, tcp_flags::psh | tcp_flags::ack), true);
            }
            put(forward_fields(g, 2 + k, tcp_flags::fin | tcp_flags::ack), false);
            put(forward_fields(g, 3 + k, tcp_flags::ack), false);
        }
        break;
    }
    }
    flush(side_client);
    m_phase = nullptr;
    // The pcap PMD writes all it is given; anything refused would be a gap in the file.
    return scratch.count.tx_busy == 0 ? scratch.count.tx[0] : 0;
}

namespace {

// --sync: says `word` on stdout, waits for a line on stdin.
bool handshake(const char* word, std::string* error) {
    std::printf("%s\n", word);
    std::fflush(stdout);
    char line[64];
    if (std::fgets(line, sizeof line, stdin) == nullptr) {
        *error = fmt::format("--sync: stdin closed after \"{}\"", word);
        return false;
    }
    return true;
}

} // namespace

std::optional<run_result> run(const options& opts, std::string* error) {
    generator gen(opts);
    if (!gen.set_up(error)) {
        return std::nullopt;
    }
    run_result result;
    if (!opts.pcap_path.empty()) {
        result.pcap_written = gen.write_pcap();
        return result;
    }
    if (!gen.resolve(error)) {
        return std::nullopt;
    }
    gen.warm_up(result);
    if (opts.sync && !g_interrupted && !handshake("ready", error)) {
        return std::nullopt;
    }
    gen.measure(result);
    // The harness reads the device's counters, and may stop it, while the links are up:
    // a memif device whose peer left may reset its port counters (testpmd's statistics
    // come from them).
    if (opts.sync && !g_interrupted && !handshake("done", error)) {
        return std::nullopt;
    }
    if (g_interrupted) {
        *error = "interrupted";
        return std::nullopt;
    }
    return result;
}

} // namespace evenflow::gen
