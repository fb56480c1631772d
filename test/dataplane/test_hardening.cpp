// The worker facing a hostile wire: floods that try to fill the flow table or the
// control thread's rings, frames that are not ours, forged replies, and the ICMP
// errors Path MTU Discovery needs. Exact bytes where packets come out; counters where
// they must not.
#include "connections.hpp"
#include "control/health.hpp"
#include "dataplane/neighbor.hpp"
#include "dataplane/slow_path.hpp"
#include "rig.hpp"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <map>
#include <random>

using namespace evenflow;
using namespace evenflow::testing;
using net::drop_reason;

namespace {

uint64_t stateless(ring_rig& rig) {
    return rig.worker->stats().totals.stateless_forward.get();
}

} // namespace

TEST_CASE("hardening: an ACK flood at 10x capacity leaves real flows pinned, the table usable") {
    ring_rig rig(basic_config_text(), 4096);
    rig.become_reader();
    const size_t capacity = rig.worker->flows().capacity();
    auto before = open_connections(rig, "198.51.100.7", 20000, 200);

    // Random tuples, no SYN: each is forwarded to its Maglev pick (a restart or another
    // host's flow would look the same), but its entry stays evictable.
    std::mt19937 rng(7);
    const size_t flood = capacity * 10;
    size_t forwarded = 0;
    for (size_t i = 0; i < flood; ++i) {
        std::string src = fmt::format("203.0.113.{}", rng() % 250 + 1);
        rig.send(client_side, to_vip(rig, src, uint16_t(1024 + rng() % 60000), tcp_flags::ack));
        if (i % 1024 == 1023) {
            rig.poll_until_idle();
            forwarded += rig.received(backend_side).size();
        }
    }
    rig.poll_until_idle();
    forwarded += rig.received(backend_side).size();
    CHECK(forwarded == flood); // each to its pick: the service keeps working
    INFO("flood " << flood << " ACKs into a table of " << capacity);

    // The real connections kept their entries: a config that moves many picks does not
    // move them, and their packets are not forwarded statelessly.
    auto moved = rig.changes.apply(
        rig.load(basic_config_text("  { address = \"10.20.0.14\", port = 8080, weight = 3 },\n"
                                   "  { address = \"10.20.0.15\", port = 8080, weight = 3 },\n")),
        true);
    REQUIRE(moved.publications == 1);
    uint64_t stateless_before = stateless(rig);
    for (const legit& c : before) {
        auto out = rig.exchange(client_side, to_vip(rig, c.client, c.port, tcp_flags::ack, "data"));
        REQUIRE(out.backend.size() == 1);
        CHECK(get32(out.backend[0], 30) == c.backend);
    }
    CHECK(stateless(rig) == stateless_before);

    // And new connections find room (they evict flood entries, not the other way round).
    uint64_t failures = rig.worker->flows().stats().insert_failures;
    auto after = open_connections(rig, "198.51.100.8", 30000, 200);
    CHECK(rig.worker->flows().stats().insert_failures == failures);
    uint64_t s = stateless(rig);
    for (const legit& c : after) {
        auto out = rig.exchange(client_side, to_vip(rig, c.client, c.port, tcp_flags::ack, "data"));
        REQUIRE(out.backend.size() == 1);
        CHECK(get32(out.backend[0], 30) == c.backend);
    }
    CHECK(stateless(rig) == s);
}

TEST_CASE("hardening: a spoofed SYN flood fills the table; established flows lose nothing") {
    ring_rig rig(basic_config_text(), 4096);
    rig.become_reader();
    auto established = open_connections(rig, "198.51.100.7", 20000, 300);
    std::mt19937 rng(11);
    // Interleaved with the flood, real clients keep opening connections.
    size_t completed = 0, tried = 0;
    for (int round = 0; round < 40; ++round) {
        for (int i = 0; i < 1000; ++i) {
            std::string src = fmt::format("203.0.113.{}", rng() % 250 + 1);
            rig.send(client_side, to_vip(rig, src, uint16_t(1024 + rng() % 60000), tcp_flags::syn));
        }
        rig.poll_until_idle();
        // The backends answer every forged SYN (their SYN-ACKs go to nobody): that
        // must not pin the flood's entries.
        for (const bytes& syn : rig.received(backend_side)) {
            rig.send(backend_side, from_backend(rig, get32(syn, 30), ipv4_text(get32(syn, 26)),
                                                get16(syn, 34), tcp_flags::syn | tcp_flags::ack));
        }
        rig.poll_until_idle();
        rig.received(client_side);
        ++tried;
        uint16_t port = uint16_t(40000 + round);
        auto syn = rig.exchange(client_side, to_vip(rig, "198.51.100.9", port, tcp_flags::syn));
        if (syn.backend.size() != 1) {
            continue;
        }
        uint32_t backend = get32(syn.backend[0], 30);
        auto synack = rig.exchange(backend_side, from_backend(rig, backend, "198.51.100.9", port,
                                                              tcp_flags::syn | tcp_flags::ack));
        auto ack =
            rig.exchange(client_side, to_vip(rig, "198.51.100.9", port, tcp_flags::ack, "GET /"));
        // The handshake completes whether or not the flood evicted its SYN's entry:
        // the SYN-ACK finds the VIP, the ACK the same backend.
        if (synack.client.size() == 1 && get32(synack.client[0], 26) == 0x0a0a0064 &&
            ack.backend.size() == 1 && get32(ack.backend[0], 30) == backend) {
            ++completed;
        }
    }
    CHECK(rig.worker->flows().stats().evictions > 0); // the table was full
    CHECK(rig.worker->flows().stats().insert_failures == 0);
    CHECK(completed == tried);
    for (const legit& c : established) {
        auto out = rig.exchange(client_side, to_vip(rig, c.client, c.port, tcp_flags::ack, "data"));
        REQUIRE(out.backend.size() == 1);
        CHECK(get32(out.backend[0], 30) == c.backend);
        CHECK(out.client.empty()); // never reset
    }
}

TEST_CASE("hardening: a flow is pinned only by a completed handshake; the backend's RST undoes a "
          "forged one") {
    ring_rig rig(basic_config_text(), 4096);
    rig.become_reader();
    auto state_of = [&](const std::string& client, uint16_t port) {
        net::flow_key k;
        k.src = *net::ip_addr::parse(client);
        k.dst = *net::ip_addr::parse(vip);
        k.src_port = htons(port);
        k.dst_port = htons(80);
        k.proto = IPPROTO_TCP;
        // A test's look at the worker's table between bursts (the worker is idle).
        auto& table = const_cast<flow::flow_table&>(rig.worker->flows());
        const flow::flow_entry* e = table.lookup(k, net::flow_hash(k), uint32_t(rig.now_ms));
        REQUIRE(e != nullptr);
        return e->value.state;
    };
    auto syn = rig.exchange(client_side, to_vip(rig, "198.51.100.7", 41000, tcp_flags::syn));
    REQUIRE(syn.backend.size() == 1);
    uint32_t backend = get32(syn.backend[0], 30);
    CHECK(state_of("198.51.100.7", 41000) == flow::flow_state::syn);
    rig.exchange(backend_side, from_backend(rig, backend, "198.51.100.7", 41000,
                                            tcp_flags::syn | tcp_flags::ack));
    CHECK(state_of("198.51.100.7", 41000) == flow::flow_state::syn_acked);
    // A retransmitted SYN does not complete anything.
    rig.exchange(client_side, to_vip(rig, "198.51.100.7", 41000, tcp_flags::syn));
    CHECK(state_of("198.51.100.7", 41000) == flow::flow_state::syn_acked);
    rig.exchange(client_side, to_vip(rig, "198.51.100.7", 41000, tcp_flags::ack));
    CHECK(state_of("198.51.100.7", 41000) == flow::flow_state::established);

    // A blind ACK from a forged source (it never saw the SYN-ACK) promotes its entry,
    // and the backend, which finds the ACK wrong, answers with a RST: closed again.
    auto forged = rig.exchange(client_side, to_vip(rig, "203.0.113.9", 41001, tcp_flags::syn));
    REQUIRE(forged.backend.size() == 1);
    uint32_t its_backend = get32(forged.backend[0], 30);
    rig.exchange(backend_side, from_backend(rig, its_backend, "203.0.113.9", 41001,
                                            tcp_flags::syn | tcp_flags::ack));
    rig.received(client_side);
    rig.received(backend_side);
    rig.exchange(client_side, to_vip(rig, "203.0.113.9", 41001, tcp_flags::ack));
    rig.exchange(backend_side,
                 from_backend(rig, its_backend, "203.0.113.9", 41001, tcp_flags::rst));
    CHECK(state_of("203.0.113.9", 41001) == flow::flow_state::closing);
}

TEST_CASE("hardening: frames that are not ours are counted drops") {
    std::string text = basic_config_text();
    text.replace(text.find("address = \"10.10.0.2/24\""), 24,
                 "address = \"10.10.0.2/24\"\nvlan = 100");
    ring_rig rig(text);
    rig.become_reader();
    auto tagged = [&](uint16_t port, std::optional<uint16_t> vlan, const mac& dst) {
        packet_builder b;
        b.eth(router_mac, dst);
        if (vlan) {
            b.vlan(*vlan);
        }
        return b.ipv4("198.51.100.7", vip).ttl(64).tcp(port, 80, tcp_flags::syn, 1000, 0).build();
    };
    // Another host's MAC on a promiscuous port.
    rig.exchange(client_side, tagged(50000, 100, {0x02, 0, 0, 0, 0x77, 0x77}));
    CHECK(rig.drops(drop_reason::not_our_mac) == 1);
    // Untagged, or the wrong tag, on a port that carries VLAN 100.
    rig.exchange(client_side, tagged(50001, std::nullopt, rig.lb_mac(client_side)));
    rig.exchange(client_side, tagged(50002, 101, rig.lb_mac(client_side)));
    CHECK(rig.drops(drop_reason::vlan_mismatch) == 2);
    // A bad IPv4 header checksum.
    bytes bad = tagged(50003, 100, rig.lb_mac(client_side));
    bad[18 + 10] ^= 0x55;
    rig.exchange(client_side, bad);
    CHECK(rig.drops(drop_reason::bad_ipv4_checksum) == 1);
    // A backend's source on the clients' side is not a reply.
    packet_builder spoof;
    spoof.eth(router_mac, rig.lb_mac(client_side)).vlan(100);
    auto out = rig.exchange(
        client_side,
        spoof.ipv4("10.20.0.11", "198.51.100.7").tcp(8080, 50004, tcp_flags::ack, 1, 1).build());
    CHECK(out.client.empty());
    CHECK(rig.drops(drop_reason::reply_on_client_side) == 1);

    // The right tag goes through: the tag comes off toward the untagged backend side,
    // and goes back on for the reply, exact bytes.
    auto fwd = rig.exchange(client_side, tagged(50005, 100, rig.lb_mac(client_side)));
    REQUIRE(fwd.backend.size() == 1);
    uint32_t backend = get32(fwd.backend[0], 30);
    int last = int(backend & 0xff);
    CHECK(fwd.backend[0] == packet_builder()
                                .eth(rig.lb_mac(backend_side), backend_mac(last))
                                .ipv4("198.51.100.7", fmt::format("10.20.0.{}", last))
                                .ttl(63)
                                .tcp(50005, 8080, tcp_flags::syn, 1000, 0)
                                .build());
    auto back =
        rig.exchange(backend_side, packet_builder()
                                       .eth(backend_mac(last), rig.lb_mac(backend_side))
                                       .ipv4(fmt::format("10.20.0.{}", last), "198.51.100.7")
                                       .ttl(64)
                                       .tcp(8080, 50005, tcp_flags::syn | tcp_flags::ack, 7, 1001)
                                       .build());
    REQUIRE(back.client.size() == 1);
    CHECK(back.client[0] == packet_builder()
                                .eth(rig.lb_mac(client_side), router_mac)
                                .vlan(100)
                                .ipv4(vip, "198.51.100.7")
                                .ttl(63)
                                .tcp(80, 50005, tcp_flags::syn | tcp_flags::ack, 7, 1001)
                                .build());
}

TEST_CASE("hardening: ICMP fragmentation-needed reaches the flow's backend, and back") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    auto conns = open_connections(rig, "198.51.100.7", 42000, 1);
    const legit& c = conns[0];
    int last = int(c.backend & 0xff);
    std::string backend = fmt::format("10.20.0.{}", last);
    auto quote = [](const std::string& src, const std::string& dst, uint16_t sport,
                    uint16_t dport) {
        bytes f = packet_builder()
                      .eth(router_mac, router_mac)
                      .ipv4(src, dst)
                      .ttl(60)
                      .tcp(sport, dport, tcp_flags::ack, 5000, 1001)
                      .payload_size(1400)
                      .build();
        return bytes(f.begin() + 14, f.begin() + 14 + 48);
    };
    auto icmp_error = [](const mac& src_mac, const mac& dst_mac, const std::string& src,
                         const std::string& dst, uint8_t ttl, const bytes& q) {
        return packet_builder()
            .eth(src_mac, dst_mac)
            .ipv4(src, dst)
            .ttl(ttl)
            .icmp(3, 4, 0, 1400)
            .payload(q)
            .build();
    };
    // A router on the clients' side cannot pass the VIP's 1500-byte segment on: the
    // backend that sent it learns the path MTU.
    auto in = rig.exchange(client_side, icmp_error(router_mac, rig.lb_mac(client_side), "192.0.2.1",
                                                   vip, 64, quote(vip, c.client, 80, c.port)));
    REQUIRE(in.backend.size() == 1);
    CHECK(in.backend[0] == icmp_error(rig.lb_mac(backend_side), backend_mac(last), "192.0.2.1",
                                      backend, 63, quote(backend, c.client, 8080, c.port)));
    CHECK(verify_checksums(in.backend[0]) == "");
    // A router on the backends' side about a client's segment: the client hears it
    // from the VIP.
    auto out = rig.exchange(backend_side,
                            icmp_error(backend_mac(20), rig.lb_mac(backend_side), "10.20.0.20",
                                       c.client, 64, quote(c.client, backend, c.port, 8080)));
    REQUIRE(out.client.size() == 1);
    CHECK(out.client[0] == icmp_error(rig.lb_mac(client_side), router_mac, vip, c.client, 63,
                                      quote(c.client, vip, c.port, 80)));
    CHECK(rig.worker->stats().totals.icmp_errors_translated.get() == 2);
    // About a flow nobody has: dropped, counted.
    rig.exchange(client_side, icmp_error(router_mac, rig.lb_mac(client_side), "192.0.2.1", vip, 64,
                                         quote(vip, c.client, 80, 9)));
    CHECK(rig.drops(drop_reason::icmp_no_flow) == 1);
}

TEST_CASE("hardening: slow-path floods cannot starve probe replies or ARP for the VIP") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    const mac broadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    // An ARP storm (requests for other hosts), TCP to our own address, and packets to
    // a next hop nobody resolves, far faster than the control thread drains...
    const auto storm_start = std::chrono::steady_clock::now();
    for (int i = 0; i < 5000; ++i) {
        rig.send(client_side,
                 packet_builder()
                     .eth(router_mac, broadcast)
                     .arp(1, router_mac, "10.10.0.1", mac{}, fmt::format("10.10.0.{}", 3 + i % 90))
                     .build());
        rig.send(client_side, packet_builder()
                                  .eth(router_mac, rig.lb_mac(client_side))
                                  .ipv4(fmt::format("203.0.113.{}", 1 + i % 250), "10.10.0.2")
                                  .tcp(uint16_t(1024 + i), 80, tcp_flags::syn, 1, 0)
                                  .build());
        if (i % 1000 == 999) {
            rig.poll_until_idle(); // much faster than the control thread would drain
        }
    }
    // ...while replies to 100 probes in flight arrive, and a router asks for the VIP.
    net::probe_table probes;
    rig.shared.probes = &probes;
    for (uint32_t i = 0; i < 100; ++i) {
        auto ticket = probes.open(*net::ip_addr::parse("10.20.0.11"), 8080, 1000 + i);
        REQUIRE(ticket);
        rig.send(backend_side,
                 packet_builder()
                     .eth(backend_mac(11), rig.lb_mac(backend_side))
                     .ipv4("10.20.0.11", "10.20.0.1")
                     .tcp(8080, ticket->port, tcp_flags::syn | tcp_flags::ack, 9, 1000 + i)
                     .build());
    }
    rig.send(client_side, packet_builder()
                              .eth(router_mac, broadcast)
                              .arp(1, router_mac, "10.10.0.1", mac{}, vip)
                              .build());
    rig.poll_until_idle();
    const double storm_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - storm_start).count();
    // The VIP was answered by the worker at once.
    bool vip_answered = false;
    for (const bytes& f : rig.received(client_side)) {
        vip_answered |= get16(f, 12) == 0x0806 && get16(f, 20) == 2 && get32(f, 28) == 0x0a0a0064;
    }
    CHECK(vip_answered);
    // Every probe reply reached its own ring; the storm was cut to its budget.
    CHECK(rte_ring_count(rig.shared.to_control[size_t(dataplane::control_reason::probe)]) == 100);
    // The ARP budget: a burst of a tenth of the rate, then the rate, over the storm's
    // own duration (not a guess at it: a sanitizer build on a busy machine is slow).
    const double arp_rate = dataplane::control_budget_per_s[size_t(dataplane::control_reason::arp)];
    const unsigned arp_queued =
        rte_ring_count(rig.shared.to_control[size_t(dataplane::control_reason::arp)]);
    INFO("storm lasted " << storm_s << " s; " << arp_queued << " ARP requests queued");
    CHECK(arp_queued <= unsigned(arp_rate / 10 + arp_rate * storm_s) + 1);
    CHECK(rig.drops(drop_reason::control_budget) == 5000 - arp_queued);
    CHECK(rig.drops(drop_reason::not_a_probe_reply) == 5000);
    CHECK(rig.worker->stats().totals.probe_replies_lost.get() == 0);
}

TEST_CASE("hardening: a flood of forged probe replies cannot keep a dead backend up") {
    // The health checker, the slow path and a worker, as evenflowd runs them, on the
    // checker's own clock (10 ms a step). Backends .11 and .13 answer every probe;
    // .12 answers until 3 s, then never again. Meanwhile an attacker who knows the
    // endpoints but not the probes' sequence numbers sends 300 RSTs and SYN-ACKs a
    // step (30,000/s of the checker's time; in real time a step takes well under a
    // millisecond, so far above the worker's probe budget of 50,000/s, burst 5,000) from .12:8080,
    // our address and every probe port. Before the worker matched replies, such a flood overflowed
    // the budget, and each lost reply made every timeout in flight inconclusive.
    using clock = control::health_checker::clock;
    using kind = control::health_checker::reply_kind;
    ring_rig rig(basic_config_text());
    rig.become_reader();
    control::health_checker health;
    rig.shared.probes = &health.probes();
    dataplane::slow_path slow(rig.shared, test_pool(), rig.worker->inject_ring());
    slow.on_probe_reply([&](const net::packet_meta& meta, uint32_t ack) {
        bool syn_ack = (meta.tcp_flags & net::tcp_flag::syn) != 0;
        return health.on_reply(meta.key.src, ntohs(meta.key.src_port), ntohs(meta.key.dst_port),
                               syn_ack ? kind::syn_ack : kind::rst, ack, clock::time_point{});
    });
    const clock::time_point t0 = clock::time_point{} + std::chrono::hours(1);
    const auto stops = t0 + std::chrono::seconds(3);
    // The promise: down within (fall + 1) x interval + timeout of its last answer
    // (fall 3, interval 1 s, timeout 500 ms: basic_config_text's pool).
    const auto bound = std::chrono::seconds(3 + 1) + std::chrono::milliseconds(500);
    health.sync(*rig.shared.snap.load(), t0);
    std::mt19937 rng(7);
    std::map<std::string, clock::time_point> went_down;
    std::map<std::string, int> went_up;
    uint64_t forged = 0;
    clock::time_point last_answer{};
    for (auto t = t0; t < t0 + std::chrono::seconds(10); t += std::chrono::milliseconds(10)) {
        for (const auto& p : health.due(t)) {
            slow.send_tcp_syn(p.address, p.port, p.src_port, p.seq);
        }
        rig.poll();
        for (const bytes& f : rig.received(backend_side)) {
            REQUIRE(get16(f, 12) == 0x0800);
            const uint32_t backend = get32(f, 30);
            const int last = int(backend & 0xff);
            if (last == 12 && t >= stops) {
                continue; // stopped answering
            }
            if (last == 12) {
                last_answer = t;
            }
            rig.send(backend_side,
                     packet_builder()
                         .eth(backend_mac(last), rig.lb_mac(backend_side))
                         .ipv4(fmt::format("10.20.0.{}", last), "10.20.0.1")
                         .tcp(get16(f, 36), get16(f, 34), tcp_flags::syn | tcp_flags::ack,
                              uint32_t(rng()), get32(f, 38) + 1)
                         .build());
        }
        for (int i = 0; i < 300; ++i, ++forged) {
            const uint16_t port = uint16_t(net::first_probe_port + rng() % net::probe_ports);
            const uint8_t flags =
                i % 2 ? tcp_flags::rst | tcp_flags::ack : tcp_flags::syn | tcp_flags::ack;
            rig.send(backend_side, packet_builder()
                                       .eth(backend_mac(12), rig.lb_mac(backend_side))
                                       .ipv4("10.20.0.12", "10.20.0.1")
                                       .tcp(8080, port, flags, uint32_t(rng()), uint32_t(rng()))
                                       .build());
        }
        rig.poll_until_idle();
        while (rig.as_control([&] { return slow.drain(); }) != 0) {
        }
        rig.poll(); // the RSTs the slow path sends to answered SYN-ACKs
        rig.received(backend_side);
        for (const auto& c : health.take_transitions(t)) {
            if (c.to == control::health_verdict::down) {
                went_down.emplace(c.backend, t);
            } else if (c.to == control::health_verdict::up) {
                ++went_up[c.backend];
            }
        }
    }
    INFO("forged replies sent: " << forged);
    // Every backend came up; only .12 went down, in time.
    CHECK(went_up.size() == 3);
    REQUIRE(went_down.size() == 1);
    CHECK(went_down.begin()->first == "10.20.0.12:8080");
    CHECK(went_down.begin()->second <= last_answer + bound);
    CHECK(went_down.begin()->second > stops);
    // The flood died in the worker: none of it reached the control thread, no real
    // answer was lost, no timeout was inconclusive.
    CHECK(rig.drops(drop_reason::not_a_probe_reply) == forged);
    CHECK(rig.worker->stats().totals.probe_replies_lost.get() == 0);
    CHECK(rig.drops(drop_reason::control_budget) == 0);
    CHECK(health.forged_replies() == 0);
    CHECK(slow.forged_probe_replies() == 0);
    CHECK(health.inconclusive() == 0);
    rig.shared.probes = nullptr;
}

TEST_CASE("hardening: ARP teaches only answers to our requests, and MACs change slowly") {
    using clock = dataplane::neighbor_resolver::clock;
    dataplane::neighbor_resolver r;
    auto ip = [](const char* t) {
        return *net::ip_addr::parse(t);
    };
    rte_ether_addr a{{2, 0, 0, 0, 0, 1}}, b{{2, 0, 0, 0, 0, 2}};
    clock::time_point t = clock::time_point{} + std::chrono::hours(1);
    // Unsolicited: ignored, and the table does not grow.
    CHECK_FALSE(r.learn(1, ip("10.20.0.50"), a, true, t).accepted);
    CHECK(r.list().empty());
    // Asked for: the reply resolves it; a request from it before we asked does not.
    REQUIRE(r.want(1, ip("10.20.0.11")));
    CHECK_FALSE(r.learn(1, ip("10.20.0.11"), a, false, t).accepted);
    std::vector<dataplane::neighbor_resolver::request> asks;
    std::vector<rte_mbuf*> freed;
    r.tick(t, asks, freed);
    REQUIRE(asks.size() == 1);
    CHECK(r.learn(1, ip("10.20.0.11"), a, true, t).accepted);
    // A forged move to another MAC: accepted once (an event), then not within a second.
    auto moved = r.learn(1, ip("10.20.0.11"), b, true, t + std::chrono::seconds(5));
    CHECK(moved.accepted);
    CHECK(moved.mac_changed);
    CHECK_FALSE(
        r.learn(1, ip("10.20.0.11"), a, true, t + std::chrono::milliseconds(5500)).accepted);
    CHECK(r.learn(1, ip("10.20.0.11"), a, true, t + std::chrono::seconds(7)).mac_changed);
    CHECK(r.mac_changes() == 2);
    // Waiting packets are bounded per neighbor and in all.
    rte_mempool* pool = test_pool();
    std::vector<rte_mbuf*> held;
    size_t refused = 0;
    for (int n = 0; n < 400; ++n) {
        for (int i = 0; i < 16; ++i) {
            rte_mbuf* m = rte_pktmbuf_alloc(pool);
            REQUIRE(m != nullptr);
            if (r.hold(0, net::ip_addr::from_v4_be(htonl(0x0a0a0a00u + uint32_t(n))), m)) {
                held.push_back(m);
            } else {
                rte_pktmbuf_free(m);
                ++refused;
            }
        }
    }
    CHECK(held.size() == dataplane::neighbor_resolver::max_waiting);
    CHECK(refused == 400 * 16 - dataplane::neighbor_resolver::max_waiting);
    // Give up on them: every held packet comes back to be freed.
    for (int i = 0; i < 10; ++i) {
        asks.clear();
        r.tick(t + std::chrono::seconds(10 + 2 * i), asks, freed);
    }
    CHECK(freed.size() == held.size());
    for (rte_mbuf* m : freed) {
        rte_pktmbuf_free(m);
    }
}
