// An in-process balancer on net_ring ports: real workers (one, or several with a
// queue each on every port), real snapshots and RCU publication, with the test
// playing the wire on both sides (and, with several workers, the NIC's RSS).
#pragma once

#include "control/manager.hpp"
#include "control/policy.hpp"
#include "dataplane/ports.hpp"
#include "dataplane/worker.hpp"
#include "support/changes.hpp"
#include "support/configs.hpp"
#include "support/packet_builder.hpp"

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <atomic>
#include <string>
#include <vector>

namespace evenflow::testing {

inline constexpr uint16_t client_side = 0;
inline constexpr uint16_t backend_side = 1;

inline const mac router_mac = {0x02, 0, 0, 0, 0x10, 0x01}; // 10.10.0.1, client-side gateway
inline const mac client_mac = {0x02, 0, 0, 0, 0x10, 0x32}; // 10.10.0.50, on-link client
inline mac backend_mac(int last_octet) {
    return {0x02, 0, 0, 0, 0x20, uint8_t(last_octet)};
}

inline mac to_mac(const rte_ether_addr& a) {
    mac m;
    std::memcpy(m.data(), a.addr_bytes, 6);
    return m;
}

inline rte_mempool* test_pool() {
    static rte_mempool* pool =
        rte_pktmbuf_pool_create("test_pool", 65535, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    return pool;
}

class ring_rig {
public:
    // With several workers, `emulate` says what the ports do: net_ring has no RSS
    // (handoff, what start_ports finds), or the test plays a NIC that steers by the
    // client (nic_rss) and puts each packet on its owner's queue itself.
    explicit ring_rig(const std::string& config_text, size_t flow_capacity = 1 << 16,
                      uint16_t worker_count = 1,
                      dataplane::steering_mode emulate = dataplane::steering_mode::handoff) {
        static std::atomic<int> counter{0};
        int n = counter++;
        cfg = load_or_fail(config_text);
        for (int side = 0; side < 2; ++side) {
            for (uint16_t q = 0; q < worker_count; ++q) {
                std::string base = fmt::format("r{}_{}_{}", n, side, q);
                rxq[side].push_back(rte_ring_create((base + "_rx").c_str(), 16384, 0,
                                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
                txq[side].push_back(rte_ring_create((base + "_tx").c_str(), 16384, 0,
                                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
                REQUIRE(rxq[side].back() != nullptr);
                REQUIRE(txq[side].back() != nullptr);
            }
            rx[side] = rxq[side][0];
            tx[side] = txq[side][0];
            std::string dev = fmt::format("ef_ring_r{}_{}", n, side);
            REQUIRE(rte_eth_from_rings(dev.c_str(), rxq[side].data(), worker_count,
                                       txq[side].data(), worker_count, 0) >= 0);
            cfg.interfaces[size_t(side)].device = "net_ring_" + dev; // the PMD prefixes it
        }
        std::string error;
        shared.steering = dataplane::flow_steering(worker_count);
        dataplane::port_options opts;
        opts.rx_descriptors = 512;
        opts.tx_descriptors = 512;
        opts.queues = worker_count;
        opts.steering = &shared.steering;
        opts.roles = dataplane::port_roles(cfg);
        bool started =
            dataplane::start_ports(cfg.interfaces, opts, test_pool(), shared.interfaces, &error);
        INFO(error);
        REQUIRE(started);
        if (worker_count > 1) {
            for (auto& i : shared.interfaces) {
                CHECK(i.steering == dataplane::steering_mode::handoff); // no RSS on net_ring
                i.steering = emulate;
            }
            for (uint16_t from = 0; from < worker_count; ++from) {
                for (uint16_t to = 0; to < worker_count; ++to) {
                    shared.handoff.push_back(
                        from == to ? nullptr
                                   : rte_ring_create(fmt::format("r{}_h{}_{}", n, from, to).c_str(),
                                                     4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
                }
            }
        }
        qsbr = dataplane::qsbr_domain::create(worker_count);
        shared.qsbr = qsbr.get();
        for (size_t i = 0; i < shared.to_control.size(); ++i) {
            shared.to_control[i] =
                rte_ring_create(fmt::format("r{}_ctl{}", n, i).c_str(), 16384, 0, RING_F_SC_DEQ);
        }

        REQUIRE(changes.start(cfg).ok); // published through publish_stamped

        std::vector<dataplane::neighbor_table::entry> neighbors;
        auto add = [&](uint16_t iface, const char* ip, const mac& m) {
            dataplane::neighbor_table::entry e;
            e.iface = iface;
            e.ip = *net::ip_addr::parse(ip);
            std::memcpy(e.mac.addr_bytes, m.data(), 6);
            neighbors.push_back(e);
        };
        add(client_side, "10.10.0.1", router_mac);
        add(client_side, "10.10.0.50", client_mac);
        for (int last = 11; last <= 20; ++last) {
            add(backend_side, fmt::format("10.20.0.{}", last).c_str(), backend_mac(last));
        }
        shared.neighbors.publish(dataplane::neighbor_table::build(neighbors), *qsbr);

        for (uint16_t i = 0; i < worker_count; ++i) {
            dataplane::worker_config wc =
                dataplane::worker_config::from(config::dataplane_config{}, i);
            wc.flow_capacity = flow_capacity;
            workers.push_back(dataplane::worker::create(wc, shared, &error));
            REQUIRE(workers.back());
        }
        worker = workers.front().get();
    }

    ~ring_rig() {
        if (m_online) {
            for (uint32_t i = 0; i < workers.size(); ++i) {
                qsbr->offline(i);
                qsbr->unregister_reader(i);
            }
        }
        workers.clear();
        dataplane::stop_ports(shared.interfaces);
        for (int side = 0; side < 2; ++side) {
            for (rte_ring* ring : rxq[side]) {
                drain(ring);
                rte_ring_free(ring);
            }
            for (rte_ring* ring : txq[side]) {
                drain(ring);
                rte_ring_free(ring);
            }
        }
        for (rte_ring* ring : shared.handoff) {
            drain(ring);
            rte_ring_free(ring);
        }
        for (rte_ring* ring : shared.to_control) {
            drain(ring);
            rte_ring_free(ring);
        }
    }

    mac lb_mac(uint16_t side) const { return to_mac(shared.interfaces[side].mac); }

    // The test thread acts as the workers' lcores for step-by-step tests.
    void become_reader() {
        for (uint32_t i = 0; i < workers.size(); ++i) {
            qsbr->register_reader(i);
            qsbr->online(i);
        }
        m_online = true;
    }

    // Publishes a snapshot. When the test thread is the reader, it steps out of the
    // read side first, as a worker between bursts would.
    void publish(std::unique_ptr<snapshot> snap) {
        step_out();
        shared.snap.publish(std::move(snap), *qsbr);
        step_in();
    }

    // Publishes as the daemon does: the runtime fields (drain deadlines, pinned flows
    // kept in probation) stamped by the control plane's policy first.
    void publish_stamped(std::unique_ptr<snapshot> snap, bool in_probation = false) {
        stamper.stamp(*snap, now_ms, in_probation);
        publish(std::move(snap));
    }

    // A config text as the rig runs it (its ring devices in place of the text's).
    config::config load(const std::string& text) const {
        config::config c = load_or_fail(text);
        for (size_t i = 0; i < c.interfaces.size() && i < cfg.interfaces.size(); ++i) {
            c.interfaces[i].device = cfg.interfaces[i].device;
        }
        return c;
    }

    // Runs `f` as the control thread would: outside the worker's read-side section,
    // so an RCU grace period inside it (a publication) can complete.
    template <typename F>
    auto as_control(F&& f) {
        step_out();
        auto result = f();
        step_in();
        return result;
    }
    void step_out() {
        for (uint32_t i = 0; m_online && i < workers.size(); ++i) {
            qsbr->offline(i);
        }
    }
    void step_in() {
        for (uint32_t i = 0; m_online && i < workers.size(); ++i) {
            qsbr->online(i);
        }
    }

    // A frame on the wire of `side`, received by queue `queue` (the NIC's choice).
    void send(uint16_t side, const bytes& frame, uint16_t queue = 0) {
        rte_mbuf* m = rte_pktmbuf_alloc(test_pool());
        REQUIRE(m != nullptr);
        char* data = rte_pktmbuf_append(m, uint16_t(frame.size()));
        REQUIRE(data != nullptr);
        std::memcpy(data, frame.data(), frame.size());
        REQUIRE(rte_ring_enqueue(rxq[side][queue], m) == 0);
    }

    // Every worker polls `times` times, in turn.
    void poll(int times = 1) {
        for (int i = 0; i < times; ++i) {
            for (auto& w : workers) {
                w->poll_once(now_ms);
            }
        }
    }

    // Polls until every port's receive queues are empty (a bounded number of rounds).
    void poll_until_idle() {
        for (int round = 0; round < 100000; ++round) {
            bool pending = false;
            for (int side = 0; side < 2; ++side) {
                for (rte_ring* ring : rxq[side]) {
                    pending |= rte_ring_count(ring) != 0;
                }
            }
            for (rte_ring* ring : shared.handoff) {
                pending |= ring != nullptr && rte_ring_count(ring) != 0;
            }
            if (!pending) {
                return;
            }
            poll();
        }
    }

    std::vector<bytes> received(uint16_t side) {
        std::vector<bytes> out;
        for (rte_ring* ring : txq[side]) {
            for (bytes& b : collect(ring)) {
                out.push_back(std::move(b));
            }
        }
        return out;
    }
    // The frames each worker transmitted on `side` (index: worker = TX queue).
    std::vector<std::vector<bytes>> received_by_worker(uint16_t side) {
        std::vector<std::vector<bytes>> out;
        for (rte_ring* ring : txq[side]) {
            out.push_back(collect(ring));
        }
        return out;
    }
    std::vector<bytes> to_control() {
        std::vector<bytes> out;
        for (rte_ring* ring : shared.to_control) {
            for (bytes& b : collect(ring)) {
                out.push_back(std::move(b));
            }
        }
        return out;
    }

    // One frame in, the frames that came out of each side.
    struct outcome {
        std::vector<bytes> client, backend, control;
    };
    outcome exchange(uint16_t side, const bytes& frame) {
        send(side, frame);
        poll();
        return {received(client_side), received(backend_side), to_control()};
    }

    uint64_t drops(net::drop_reason r) const {
        return worker->stats().totals.drops[size_t(r)].get();
    }

    config::config cfg;
    // Configs and states reach the workers as in evenflowd: through the change pipeline,
    // stamped (drain deadlines, probation) and published with RCU.
    pipeline_driver changes{[this](std::unique_ptr<snapshot> snap, const control::publication&) {
                                bool in_probation = changes.pipeline.probation().active(
                                    std::chrono::steady_clock::now(),
                                    changes.manager().running().skew);
                                publish_stamped(std::move(snap), in_probation);
                            },
                            [this] {
                                return shared.snap.load();
                            }};
    dataplane::dataplane_shared shared;
    std::unique_ptr<dataplane::qsbr_domain> qsbr;
    std::vector<std::unique_ptr<dataplane::worker>> workers;
    dataplane::worker* worker = nullptr;   // the first one
    std::vector<rte_ring*> rxq[2], txq[2]; // per side, one per queue (worker)
    rte_ring* rx[2] = {};                  // queue 0's
    rte_ring* tx[2] = {};
    uint64_t now_ms = 1'000'000;
    control::runtime_stamper stamper;

private:
    static std::vector<bytes> collect(rte_ring* ring) {
        std::vector<bytes> out;
        rte_mbuf* m;
        while (rte_ring_dequeue(ring, reinterpret_cast<void**>(&m)) == 0) {
            const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
            out.emplace_back(d, d + rte_pktmbuf_data_len(m));
            rte_pktmbuf_free(m);
        }
        return out;
    }
    static void drain(rte_ring* ring) {
        rte_mbuf* m;
        while (ring != nullptr && rte_ring_dequeue(ring, reinterpret_cast<void**>(&m)) == 0) {
            rte_pktmbuf_free(m);
        }
    }
    bool m_online = false;
};

// Independent checks of a frame's IPv4 header and TCP checksums (reference sum).
inline bool ipv4_tcp_checksums_ok(const bytes& f, size_t l3 = 14) {
    size_t ihl = size_t(f.at(l3) & 0x0f) * 4;
    if (reference_fold(reference_sum({f.data() + l3, ihl})) != 0xffff) {
        return false;
    }
    size_t total = get16(f, l3 + 2);
    size_t l4 = l3 + ihl;
    size_t l4_len = total - ihl;
    uint8_t pseudo[12];
    std::memcpy(pseudo, &f[l3 + 12], 8);
    pseudo[8] = 0;
    pseudo[9] = 6;
    pseudo[10] = uint8_t(l4_len >> 8);
    pseudo[11] = uint8_t(l4_len);
    uint32_t sum = reference_sum({pseudo, 12});
    sum = reference_sum({f.data() + l4, l4_len}, sum);
    return reference_fold(sum) == 0xffff;
}

} // namespace evenflow::testing
