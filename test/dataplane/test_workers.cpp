// Several workers on one set of ports: every packet of a connection, in both
// directions, is handled by the worker that owns it. The test plays the NIC: with
// steering by the client it computes each packet's queue itself with DPDK's
// Toeplitz (rte_softrss) over the client's address and port, the key and RETA the
// ports are given; with hand-off it spreads packets over queues by the whole
// 5-tuple, as plain RSS would, and the workers pass them to their owners.
#include "rig.hpp"

#include <rte_thash.h>

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <map>
#include <unordered_map>

using namespace evenflow;
using namespace evenflow::testing;
using dataplane::steering_mode;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr int lifecycles = 10'000; // the sanitizer build: the same paths, a tenth of the volume
#else
constexpr int lifecycles = 100'000;
#endif
constexpr int chunk = 2'000;

struct connection {
    std::array<uint8_t, 4> client;
    uint16_t client_port = 0;
    std::string vip = "10.10.0.100";
    uint32_t backend_be = 0; // where its SYN went
    uint16_t backend_port = 0;
    int worker = -1; // who transmitted its packets
};

std::string v4_text(const std::array<uint8_t, 4>& a) {
    return fmt::format("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
}

// The NIC's Toeplitz over (address, port) in the layout "L3/L4 source only" (or
// destination only) feeds it: the address, then the port, big-endian; computed here
// with rte_softrss from the key bytes, apart from the worker's own code.
uint32_t nic_hash(const std::array<uint8_t, 4>& addr, uint16_t port) {
    uint32_t words[2] = {uint32_t(addr[0]) << 24 | uint32_t(addr[1]) << 16 |
                             uint32_t(addr[2]) << 8 | addr[3],
                         uint32_t(port) << 16};
    return rte_softrss(words, 2, dataplane::flow_steering::key.data());
}

uint16_t nic_queue(const ring_rig& rig, const std::array<uint8_t, 4>& client, uint16_t port) {
    const auto& reta = rig.shared.steering.reta();
    return reta[nic_hash(client, port) & (reta.size() - 1)];
}

// Plain RSS over the 5-tuple: any queue, rarely the owner's.
uint16_t spread_queue(uint16_t workers, uint32_t a, uint32_t b, uint16_t pa, uint16_t pb) {
    uint32_t h = a * 2654435761u ^ b * 40503u ^ (uint32_t(pa) << 16 | pb) * 97u;
    return uint16_t((h >> 7) % workers);
}

class lifecycle_run {
public:
    lifecycle_run(ring_rig& rig, steering_mode mode) : m_rig(rig), m_mode(mode) {}

    void run(int total) {
        for (int first = 0; first < total; first += chunk) {
            std::vector<connection> conns;
            for (int i = first; i < std::min(total, first + chunk); ++i) {
                connection c;
                c.client = {198, 51, uint8_t(100 + i / 60000), uint8_t(1 + (i / 240) % 250)};
                c.client_port = uint16_t(10000 + i % 240);
                conns.push_back(c);
            }
            step(conns, client_side, tcp_flags::syn, "");
            step(conns, backend_side, tcp_flags::syn | tcp_flags::ack, "");
            step(conns, client_side, tcp_flags::ack, "");
            step(conns, client_side, tcp_flags::ack | tcp_flags::psh, "GET / HTTP/1.1\r\n\r\n");
            step(conns, backend_side, tcp_flags::ack | tcp_flags::psh, "HTTP/1.1 200 OK\r\n\r\n");
            step(conns, client_side, tcp_flags::fin | tcp_flags::ack, "");
            step(conns, backend_side, tcp_flags::fin | tcp_flags::ack, "");
            step(conns, client_side, tcp_flags::ack, "");
            m_done += conns.size();
        }
    }
    size_t done() const { return m_done; }

private:
    // Sends packet `flags` of every connection from `side`, polls until all came out on
    // the other side, and checks each came out of the connection's one worker.
    void step(std::vector<connection>& conns, uint16_t side, uint8_t flags,
              const std::string& payload) {
        const uint16_t workers = uint16_t(m_rig.workers.size());
        for (const connection& c : conns) {
            bytes frame;
            uint16_t queue = 0;
            if (side == client_side) {
                frame = packet_builder()
                            .eth(router_mac, m_rig.lb_mac(client_side))
                            .ipv4(v4_text(c.client), c.vip)
                            .tcp(c.client_port, 80, flags, 1000, 1)
                            .payload(payload)
                            .build();
                queue = m_mode == steering_mode::nic_rss
                            ? nic_queue(m_rig, c.client, c.client_port)
                            : spread_queue(workers, get32(frame, 26), get32(frame, 30),
                                           c.client_port, 80);
            } else {
                int last = int(ntohl(c.backend_be) & 0xff);
                frame = packet_builder()
                            .eth(backend_mac(last), m_rig.lb_mac(backend_side))
                            .ipv4(fmt::format("10.20.0.{}", last), v4_text(c.client))
                            .tcp(c.backend_port, c.client_port, flags, 5000, 1001)
                            .payload(payload)
                            .build();
                // Destination only: the client again, so the owner's queue.
                queue = m_mode == steering_mode::nic_rss
                            ? nic_queue(m_rig, c.client, c.client_port)
                            : spread_queue(workers, get32(frame, 26), get32(frame, 30),
                                           c.backend_port, c.client_port);
            }
            m_rig.send(side, frame, queue);
        }
        const uint16_t out_side = side == client_side ? backend_side : client_side;
        std::unordered_map<uint64_t, size_t> by_client;
        for (size_t i = 0; i < conns.size(); ++i) {
            by_client[key(conns[i].client, conns[i].client_port)] = i;
        }
        size_t seen = 0;
        for (int round = 0; round < 200 && seen < conns.size(); ++round) {
            m_rig.poll();
            auto out = m_rig.received_by_worker(out_side);
            for (size_t w = 0; w < out.size(); ++w) {
                for (const bytes& f : out[w]) {
                    REQUIRE(f.size() >= 54);
                    // Forward: the client is the source; return: the destination.
                    size_t addr_at = out_side == backend_side ? 26 : 30;
                    size_t port_at = out_side == backend_side ? 34 : 36;
                    std::array<uint8_t, 4> client{f[addr_at], f[addr_at + 1], f[addr_at + 2],
                                                  f[addr_at + 3]};
                    auto it = by_client.find(key(client, get16(f, port_at)));
                    REQUIRE(it != by_client.end());
                    connection& c = conns[it->second];
                    REQUIRE(verify_checksums(f).empty());
                    if (flags == tcp_flags::syn) {
                        c.worker = int(w);
                        c.backend_be = htonl(get32(f, 30));
                        c.backend_port = get16(f, 36);
                        if (m_mode == steering_mode::nic_rss) {
                            REQUIRE(w == nic_queue(m_rig, c.client, c.client_port));
                        }
                    } else {
                        REQUIRE(c.worker == int(w)); // one worker, both directions
                        if (out_side == client_side) {
                            REQUIRE(get32(f, 26) == 0x0a0a0064); // from the VIP
                            REQUIRE(get16(f, 34) == 80);
                        } else {
                            REQUIRE(htonl(get32(f, 30)) == c.backend_be);
                        }
                    }
                    ++seen;
                }
            }
        }
        REQUIRE(seen == conns.size());
    }

    static uint64_t key(const std::array<uint8_t, 4>& a, uint16_t port) {
        return uint64_t(a[0]) << 40 | uint64_t(a[1]) << 32 | uint64_t(a[2]) << 24 |
               uint64_t(a[3]) << 16 | port;
    }

    ring_rig& m_rig;
    steering_mode m_mode;
    size_t m_done = 0;
};

uint64_t total(ring_rig& rig, dataplane::counter dataplane::worker_counters::*field) {
    uint64_t sum = 0;
    for (auto& w : rig.workers) {
        sum += (w->stats().totals.*field).get();
    }
    return sum;
}

uint64_t total_drops(ring_rig& rig) {
    uint64_t sum = 0;
    for (auto& w : rig.workers) {
        sum += dataplane::dropped(w->stats().totals);
    }
    return sum;
}

void lifecycles_on(uint16_t workers, steering_mode mode) {
    ring_rig rig(basic_config_text(), 1 << 18, workers, mode);
    rig.become_reader();
    lifecycle_run run(rig, mode);
    run.run(lifecycles);
    INFO(workers << " workers, " << dataplane::to_string(mode));
    CHECK(run.done() == size_t(lifecycles));
    CHECK(total(rig, &dataplane::worker_counters::new_flows) == uint64_t(lifecycles));
    CHECK(total(rig, &dataplane::worker_counters::stateless_forward) == 0);
    CHECK(total(rig, &dataplane::worker_counters::reverse_stateless) == 0);
    CHECK(total_drops(rig) == 0);
    if (mode == steering_mode::nic_rss) {
        CHECK(total(rig, &dataplane::worker_counters::handoff_out) == 0);
    } else {
        // Plain RSS lands most packets elsewhere: (workers - 1) / workers of them.
        uint64_t packets = uint64_t(lifecycles) * 8;
        uint64_t handed = total(rig, &dataplane::worker_counters::handoff_out);
        CHECK(handed > packets * (workers - 1) / workers * 9 / 10);
        CHECK(handed == total(rig, &dataplane::worker_counters::handoff_in));
    }
    // Every worker owns a fair part of the connections.
    for (auto& w : rig.workers) {
        CHECK(w->stats().totals.new_flows.get() > uint64_t(lifecycles) / workers * 8 / 10);
    }
    // The closing timeout passes; idle sweeps free every entry.
    rig.now_ms += 11'000;
    rig.poll(400);
    for (auto& w : rig.workers) {
        CHECK(w->flows().size() == 0);
    }
}

} // namespace

TEST_CASE("workers: 2 workers steered by the client: full lifecycles on one worker each") {
    lifecycles_on(2, steering_mode::nic_rss);
}

TEST_CASE("workers: 4 workers steered by the client: full lifecycles on one worker each") {
    lifecycles_on(4, steering_mode::nic_rss);
}

TEST_CASE("workers: 2 workers, hand-off: every packet reaches the connection's owner") {
    lifecycles_on(2, steering_mode::handoff);
}

TEST_CASE("workers: 4 workers, hand-off: every packet reaches the connection's owner") {
    lifecycles_on(4, steering_mode::handoff);
}

TEST_CASE("workers: a backend shared by two services: replies carry the right VIP") {
    std::string text = basic_config_text() + R"(
[[services]]
name = "web-alt"
vip = "10.10.0.101"
port = 80
protocol = "tcp"
pool = "web"
table_size = 65537
)";
    ring_rig rig(text, 1 << 16, 4, steering_mode::handoff);
    rig.become_reader();
    // Connections to both VIPs that land on one backend: each reply must carry the VIP
    // its own connection was opened to.
    int shared = 0;
    for (uint16_t port = 30000; port < 30400; ++port) {
        uint32_t backend[2];
        for (int v = 0; v < 2; ++v) {
            rig.send(client_side,
                     packet_builder()
                         .eth(router_mac, rig.lb_mac(client_side))
                         .ipv4("198.51.100.9", v == 0 ? "10.10.0.100" : "10.10.0.101")
                         .tcp(uint16_t(port + v * 1000), 80, tcp_flags::syn, 1, 0)
                         .build(),
                     uint16_t((port + v) % 4));
            rig.poll(3);
            auto out = rig.received(backend_side);
            REQUIRE(out.size() == 1);
            backend[v] = get32(out[0], 30);
        }
        shared += backend[0] == backend[1] ? 1 : 0;
        for (int v = 0; v < 2; ++v) {
            rig.send(
                backend_side,
                packet_builder()
                    .eth(backend_mac(int(backend[v] & 0xff)), rig.lb_mac(backend_side))
                    .ipv4(fmt::format("10.20.0.{}", backend[v] & 0xff), "198.51.100.9")
                    .tcp(8080, uint16_t(port + v * 1000), tcp_flags::syn | tcp_flags::ack, 7, 2)
                    .build(),
                uint16_t((port + 3 - v) % 4));
            rig.poll(3);
            auto back = rig.received(client_side);
            REQUIRE(back.size() == 1);
            CHECK(get32(back[0], 26) == (v == 0 ? 0x0a0a0064u : 0x0a0a0065u));
            CHECK(get16(back[0], 36) == port + v * 1000);
        }
    }
    CHECK(shared > 50); // the shared case happened, many times
    CHECK(total(rig, &dataplane::worker_counters::reverse_stateless) == 0);
}
