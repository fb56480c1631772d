// The fixed workloads of the instruction gate (bench/gate.py): the real worker on the
// dataplane tier's net_ring rig (test/dataplane/rig.hpp), driven from this one thread
// in full bursts, so every run executes exactly the same instructions. Under
// `valgrind --tool=callgrind --toggle-collect='evenflow::dataplane::worker::poll_once*'`
// only the worker's loop is counted (its RX/TX on net_ring included, the frames built
// here not); each workload zeroes the counts before its measured phase and dumps them
// after it, and prints one line "GATE {json}" with the packets it put in, so that
// instructions per packet is exact. Without valgrind the client requests do nothing
// and the workloads run as plain Catch2 tests (they also check that nothing was lost).
//
//   established-100k   100,000 flows (created by one ACK each beforehand), then one
//                      data packet per flow from the client and one from its backend
//   syn-100k           100,000 SYNs of new flows: the cost of a new connection
//   ...-2w             the same with two workers whose ports cannot steer (memif):
//                      everything arrives on worker 0's queue, about half is handed
//                      over to worker 1, and both workers' instructions are counted
#include "dataplane/rig.hpp"
#include "workload.hpp" // evengen's addressing and frame templates

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(name)
#define RUNNING_ON_VALGRIND 0
#endif

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <vector>

using namespace evenflow;
using namespace evenflow::testing;

namespace {

constexpr uint16_t burst = dataplane::burst_size;

uint64_t sum(ring_rig& rig, dataplane::counter dataplane::worker_counters::*field) {
    uint64_t n = 0;
    for (auto& w : rig.workers) {
        n += (w->stats().totals.*field).get();
    }
    return n;
}

uint64_t idle_polls(ring_rig& rig) {
    uint64_t n = 0;
    for (auto& w : rig.workers) {
        n += w->stats().totals.idle_polls.get();
    }
    return n;
}

uint64_t drops(ring_rig& rig) {
    uint64_t n = 0;
    for (auto& w : rig.workers) {
        n += dataplane::dropped(w->stats().totals);
    }
    return n;
}

gen::mac_addr gen_mac(const mac& m) {
    gen::mac_addr g;
    std::copy(m.begin(), m.end(), g.begin());
    return g;
}

class driver {
public:
    driver(ring_rig& rig, uint32_t client_base)
        : m_rig(rig), m_client(64, gen_mac(router_mac), gen_mac(rig.lb_mac(client_side))),
          m_backend(64, gen_mac(backend_mac(11)), gen_mac(rig.lb_mac(backend_side))) {
        m_addr.client_base = client_base;
        m_addr.vip = {0x0a0a0064, 80}; // the rig's service, 10.10.0.100:80
    }

    // One ACK per flow, as evengen's warm-up: each creates its flow (and the entry of
    // its backend's replies); remembers where every flow went.
    void open(uint64_t flows) {
        m_backends.assign(flows, gen::endpoint{});
        for (uint64_t first = 0; first < flows; first += burst) {
            uint64_t n = std::min<uint64_t>(burst, flows - first);
            for (uint64_t i = first; i < first + n; ++i) {
                put(client_side, forward(i, 0, gen::tcp_flags::ack));
            }
            m_rig.poll();
            m_rig.poll(); // the hand-off's second hop, with two workers
            learn();
        }
        for (const gen::endpoint& b : m_backends) {
            REQUIRE(b.addr != 0);
        }
    }

    // Client data on every flow in turn, each followed by its backend's answer in the
    // same poll: one burst on each port per poll.
    uint64_t data(uint64_t flows, uint32_t seq) {
        uint64_t packets = 0;
        for (uint64_t first = 0; first < flows; first += burst) {
            uint64_t n = std::min<uint64_t>(burst, flows - first);
            for (uint64_t i = first; i < first + n; ++i) {
                put(client_side, forward(i, seq, gen::tcp_flags::psh | gen::tcp_flags::ack));
                put(backend_side, reverse(i, seq));
            }
            packets += 2 * n;
            m_rig.poll();
            discard();
        }
        return packets;
    }

    // A SYN per new flow, one burst per poll.
    uint64_t syns(uint64_t flows) {
        for (uint64_t first = 0; first < flows; first += burst) {
            uint64_t n = std::min<uint64_t>(burst, flows - first);
            for (uint64_t i = first; i < first + n; ++i) {
                gen::tcp_fields f = forward(i, 0, gen::tcp_flags::syn);
                f.ack = 0;
                put(client_side, f);
            }
            m_rig.poll();
            discard();
        }
        return flows;
    }

    uint64_t out() const { return m_out; }

private:
    gen::tcp_fields forward(uint64_t flow, uint32_t seq, uint8_t flags) const {
        gen::tcp_fields f;
        f.src = m_addr.client(flow);
        f.dst = m_addr.vip;
        f.seq = seq;
        f.ack = 1;
        f.flags = flags;
        return f;
    }
    gen::tcp_fields reverse(uint64_t flow, uint32_t seq) const {
        gen::tcp_fields f;
        f.src = m_backends[flow];
        f.dst = m_addr.client(flow);
        f.seq = seq;
        f.ack = 1;
        f.flags = gen::tcp_flags::psh | gen::tcp_flags::ack;
        return f;
    }

    // Onto the wire of `side`; the ports cannot steer, so everything reaches queue 0.
    void put(uint16_t side, const gen::tcp_fields& f) {
        rte_mbuf* m = rte_pktmbuf_alloc(test_pool());
        REQUIRE(m != nullptr);
        const gen::frame_template& t = side == client_side ? m_client : m_backend;
        auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(t.frame_length())));
        t.write(data, f);
        REQUIRE(rte_ring_enqueue(m_rig.rxq[side][0], m) == 0);
    }

    // The backend each flow's forwarded packet went to.
    void learn() {
        for (rte_ring* ring : m_rig.txq[backend_side]) {
            rte_mbuf* m;
            while (rte_ring_dequeue(ring, reinterpret_cast<void**>(&m)) == 0) {
                const auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
                gen::endpoint client{ntohl(load32(p + 26)), ntohs(load16(p + 34))};
                gen::endpoint backend{ntohl(load32(p + 30)), ntohs(load16(p + 36))};
                std::optional<uint64_t> flow = m_addr.flow_of(client);
                REQUIRE(flow);
                REQUIRE(*flow < m_backends.size());
                m_backends[*flow] = backend;
                ++m_out;
                rte_pktmbuf_free(m);
            }
        }
        discard();
    }

    void discard() {
        for (int side = 0; side < 2; ++side) {
            for (rte_ring* ring : m_rig.txq[side]) {
                rte_mbuf* pkts[64];
                unsigned n;
                while ((n = rte_ring_dequeue_burst(ring, reinterpret_cast<void**>(pkts), 64,
                                                   nullptr)) > 0) {
                    rte_pktmbuf_free_bulk(pkts, n);
                    m_out += n;
                }
            }
        }
    }

    static uint32_t load32(const uint8_t* p) {
        uint32_t v;
        std::memcpy(&v, p, 4);
        return v;
    }
    static uint16_t load16(const uint8_t* p) {
        uint16_t v;
        std::memcpy(&v, p, 2);
        return v;
    }

    ring_rig& m_rig;
    gen::addressing m_addr;
    gen::frame_template m_client, m_backend;
    std::vector<gen::endpoint> m_backends; // per flow: where it went
    uint64_t m_out = 0;
};

// What the gate reads: the workload, the packets its measured phase put in, and the
// worker counters that say it ran as intended.
void report(const std::string& name, ring_rig& rig, uint64_t packets, uint64_t rx_before,
            uint64_t out_before, const driver& d, uint64_t idle_before, uint64_t handoff_before) {
    uint64_t rx = sum(rig, &dataplane::worker_counters::rx_packets) - rx_before;
    uint64_t handoff = sum(rig, &dataplane::worker_counters::handoff_out) - handoff_before;
    uint64_t idle = idle_polls(rig) - idle_before;
    std::printf("GATE {\"workload\": \"%s\", \"workers\": %zu, \"packets\": %llu, "
                "\"rx_packets\": %llu, \"forwarded\": %llu, \"handoff\": %llu, "
                "\"idle_polls\": %llu, \"valgrind\": %s}\n",
                name.c_str(), rig.workers.size(), (unsigned long long)packets,
                (unsigned long long)rx, (unsigned long long)(d.out() - out_before),
                (unsigned long long)handoff, (unsigned long long)idle,
                RUNNING_ON_VALGRIND ? "true" : "false");
    std::fflush(stdout);
    // Every packet went in, came out, and no poll was idle (an idle poll sweeps the
    // flow table, which is not per-packet work).
    CHECK(rx == packets);
    CHECK(d.out() - out_before == packets);
    CHECK(idle == 0);
    CHECK(drops(rig) == 0);
    if (rig.workers.size() > 1) {
        CHECK(handoff > packets / 3);
    }
}

constexpr uint64_t flows = 100'000;

void established(uint16_t workers, const std::string& name) {
    ring_rig rig(basic_config_text(), size_t(1) << 19, workers);
    rig.become_reader();
    driver d(rig, 0xac100000); // 172.16.0.0/16
    d.open(flows);
    d.data(flows, 1); // the first data round out of the measurement: the same path
    uint64_t rx = sum(rig, &dataplane::worker_counters::rx_packets);
    uint64_t out = d.out(), idle = idle_polls(rig);
    uint64_t handoff = sum(rig, &dataplane::worker_counters::handoff_out);
    CALLGRIND_ZERO_STATS;
    uint64_t packets = d.data(flows, 2);
    CALLGRIND_DUMP_STATS_AT(name.c_str());
    report(name, rig, packets, rx, out, d, idle, handoff);
    CHECK(sum(rig, &dataplane::worker_counters::stateless_forward) == flows);
}

void new_flows(uint16_t workers, const std::string& name) {
    ring_rig rig(basic_config_text(), size_t(1) << 19, workers);
    rig.become_reader();
    driver d(rig, 0xac180000); // 172.24.0.0/16
    uint64_t rx = sum(rig, &dataplane::worker_counters::rx_packets);
    uint64_t out = d.out(), idle = idle_polls(rig);
    uint64_t handoff = sum(rig, &dataplane::worker_counters::handoff_out);
    CALLGRIND_ZERO_STATS;
    uint64_t packets = d.syns(flows);
    CALLGRIND_DUMP_STATS_AT(name.c_str());
    report(name, rig, packets, rx, out, d, idle, handoff);
    CHECK(sum(rig, &dataplane::worker_counters::syns) == flows);
}

} // namespace

TEST_CASE("gate: established-100k") {
    established(1, "established-100k");
}

TEST_CASE("gate: syn-100k") {
    new_flows(1, "syn-100k");
}

TEST_CASE("gate: established-100k-2w") {
    established(2, "established-100k-2w");
}

TEST_CASE("gate: syn-100k-2w") {
    new_flows(2, "syn-100k-2w");
}
