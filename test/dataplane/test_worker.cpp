// The worker loop on real DPDK ports (net_ring), driven packet by packet: exact
// bytes out for each case, checksums verified by an independent computation.
#include "connections.hpp"
#include "dataplane/slow_path.hpp"
#include "fixtures.hpp"
#include "rig.hpp"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <map>

using namespace evenflow;
using namespace evenflow::testing;
using net::drop_reason;

namespace {

constexpr const char* client_ip = "198.51.100.7"; // off-link: reached through 10.10.0.1

// A backend's segment to the client (replies arrive on the backend side).
bytes backend_packet(ring_rig& rig, const snapshot_backend& b, uint16_t client_port, uint8_t flags,
                     uint32_t seq = 5000, uint32_t ack = 1001) {
    int last = b.address.bytes[15];
    return packet_builder()
        .eth(backend_mac(last), rig.lb_mac(backend_side))
        .ipv4(b.address.to_string(), client_ip)
        .ttl(64)
        .tcp(b.port, client_port, flags, seq, ack)
        .build();
}

bytes client_packet(ring_rig& rig, uint16_t sport, uint8_t flags, uint32_t seq = 1000,
                    uint32_t ack = 0, const std::string& payload = "") {
    return packet_builder()
        .eth(router_mac, rig.lb_mac(client_side))
        .ipv4(client_ip, vip)
        .ttl(64)
        .tcp(sport, 80, flags, seq, ack)
        .payload(payload)
        .build();
}

int last_octet(const snapshot_backend& b) {
    return b.address.bytes[15];
}

} // namespace

TEST_CASE("worker: a SYN to the VIP leaves toward the Maglev-chosen backend, exact bytes") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    const snapshot_backend& b = chosen_backend(rig, client_ip, 40000);

    auto out = rig.exchange(client_side, client_packet(rig, 40000, tcp_flags::syn));
    REQUIRE(out.backend.size() == 1);
    CHECK(out.client.empty());
    CHECK(out.control.empty());

    bytes expected = packet_builder()
                         .eth(rig.lb_mac(backend_side), backend_mac(last_octet(b)))
                         .ipv4(client_ip, b.address.to_string())
                         .ttl(63)
                         .tcp(40000, 8080, tcp_flags::syn)
                         .build();
    CHECK(out.backend[0] == expected);
    CHECK(ipv4_tcp_checksums_ok(out.backend[0]));
    const auto& c = rig.worker->stats().totals;
    CHECK(c.syns.get() == 1);
    CHECK(rig.worker->stats().backends[b.id].syns.get() == 1);
    CHECK(c.new_flows.get() == 0); // not verified yet: see the next case
}

TEST_CASE("worker: a connection counts for skew once its handshake is verified, never on a SYN") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    const auto& c = rig.worker->stats().totals;
    const snapshot_backend& b = chosen_backend(rig, client_ip, 40100);
    const auto& bc = rig.worker->stats().backends[b.id];
    rig.exchange(client_side, client_packet(rig, 40100, tcp_flags::syn, 1000));
    rig.exchange(client_side, client_packet(rig, 40100, tcp_flags::syn, 1000)); // retransmitted
    CHECK(bc.syns.get() == 1);
    CHECK(bc.new_flows.get() == 0);
    rig.exchange(backend_side, backend_packet(rig, b, 40100, tcp_flags::syn | tcp_flags::ack));
    CHECK(bc.new_flows.get() == 0); // the client has not answered the SYN-ACK yet
    rig.exchange(client_side, client_packet(rig, 40100, tcp_flags::ack, 1001, 1));
    CHECK(bc.new_flows.get() == 1);
    CHECK(c.new_flows.get() == 1);
    rig.exchange(client_side, client_packet(rig, 40100, tcp_flags::ack, 1001, 1, "GET /"));
    CHECK(c.new_flows.get() == 1); // once per connection

    // Spoofed: SYNs whose SYN-ACK goes nowhere, then a blind ACK (no SYN-ACK seen): the
    // backend's answer never came through us, so nothing is verified.
    for (uint16_t port = 41000; port < 41100; ++port) {
        rig.exchange(client_side, client_packet(rig, port, tcp_flags::syn, 7));
    }
    rig.exchange(client_side, client_packet(rig, 41000, tcp_flags::ack, 8, 1));
    CHECK(c.syns.get() == 101);
    CHECK(c.new_flows.get() == 1);

    // Who sent them: the worker's client sketches, sealed as the control thread does,
    // hold the client's 101 SYNs (by address and by /24) and its one verified
    // connection, on the backend it went to.
    flow::client_sketches& clients = rig.worker->clients();
    clients.request_seal();
    rig.poll();
    REQUIRE(clients.sealed_ready());
    auto counted = [&](flow::client_event e, const char* who, uint32_t tag_bits,
                       uint32_t backend_id) {
        uint64_t n = 0;
        clients.sealed()[size_t(e)].for_each([&](const flow::client_sketch::slot& slot) {
            if (slot.client == testing::ip(who) &&
                (slot.tag & flow::client_sketch::network_bit) == tag_bits &&
                (backend_id == 0 || slot.backend_id() == backend_id)) {
                n += slot.count;
            }
        });
        return n;
    };
    CHECK(counted(flow::client_event::syn, client_ip, 0, 0) == 101);
    CHECK(counted(flow::client_event::syn, "198.51.100.0", flow::client_sketch::network_bit, 0) ==
          101);
    CHECK(counted(flow::client_event::verified, client_ip, 0, 0) == 1);
    CHECK(counted(flow::client_event::verified, client_ip, 0, b.id) == 1);
    clients.release_sealed();
}

TEST_CASE("worker: the reply path rewrites the source back to VIP:port") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    const snapshot_backend& b = chosen_backend(rig, client_ip, 40001);
    rig.exchange(client_side, client_packet(rig, 40001, tcp_flags::syn));

    bytes syn_ack = packet_builder()
                        .eth(backend_mac(last_octet(b)), rig.lb_mac(backend_side))
                        .ipv4(b.address.to_string(), client_ip)
                        .ttl(64)
                        .tcp(8080, 40001, tcp_flags::syn | tcp_flags::ack, 5000, 1001)
                        .build();
    auto out = rig.exchange(backend_side, syn_ack);
    REQUIRE(out.client.size() == 1);
    bytes expected = packet_builder()
                         .eth(rig.lb_mac(client_side), router_mac)
                         .ipv4(vip, client_ip)
                         .ttl(63)
                         .tcp(80, 40001, tcp_flags::syn | tcp_flags::ack, 5000, 1001)
                         .build();
    CHECK(out.client[0] == expected);
    CHECK(ipv4_tcp_checksums_ok(out.client[0]));

    // Data both ways keeps flowing to the same backend, payload untouched.
    auto data = rig.exchange(client_side, client_packet(rig, 40001, tcp_flags::ack | tcp_flags::psh,
                                                        1001, 5001, "GET / HTTP/1.1\r\n\r\n"));
    REQUIRE(data.backend.size() == 1);
    CHECK(get32(data.backend[0], 14 + 16) == ntohl(b.address.v4_be()));
    CHECK(ipv4_tcp_checksums_ok(data.backend[0]));
    CHECK(rig.worker->stats().backends[b.id].packets_to.get() == 2);
    CHECK(rig.worker->stats().backends[b.id].packets_from.get() == 1);
}

TEST_CASE("worker: ARP requests for the VIP and interface addresses are answered") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    dataplane::slow_path slow(rig.shared, test_pool(), rig.worker->inject_ring());

    for (const char* target : {"10.10.0.100", "10.10.0.2"}) {
        bytes request = packet_builder()
                            .eth(router_mac, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
                            .arp(1, router_mac, "10.10.0.1", mac{}, target)
                            .pad_to(60)
                            .build();
        rig.send(client_side, request);
        rig.poll(); // answered by the worker itself, in place: no control thread involved
        CHECK(rig.to_control().empty());
        auto replies = rig.received(client_side);
        REQUIRE(replies.size() == 1);
        bytes expected = packet_builder()
                             .eth(rig.lb_mac(client_side), router_mac)
                             .arp(2, rig.lb_mac(client_side), target, router_mac, "10.10.0.1")
                             .pad_to(60)
                             .build();
        CHECK(replies[0] == expected);
    }
    // Not ours: no answer.
    rig.send(client_side, packet_builder()
                              .eth(router_mac, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
                              .arp(1, router_mac, "10.10.0.1", mac{}, "10.10.0.77")
                              .build());
    rig.poll();
    rig.as_control([&] { return slow.drain(); });
    rig.poll();
    CHECK(rig.received(client_side).empty());
    CHECK(rig.worker->stats().totals.arp_replies.get() == 2);
}

TEST_CASE("worker: an unresolved next hop is held, resolved by ARP, then sent") {
    std::string text =
        basic_config_text("  { address = \"10.20.0.99\", port = 8080, weight = 1000 },\n");
    ring_rig rig(text);
    rig.become_reader();
    dataplane::slow_path slow(rig.shared, test_pool(), rig.worker->inject_ring());
    // Find a client port that lands on 10.20.0.99 (no neighbor entry in the rig).
    uint16_t port = 0;
    for (uint16_t p = 30000; p < 31000; ++p) {
        if (chosen_backend(rig, client_ip, p).address == *net::ip_addr::parse("10.20.0.99")) {
            port = p;
            break;
        }
    }
    REQUIRE(port != 0);
    rig.send(client_side, client_packet(rig, port, tcp_flags::syn));
    rig.poll();
    CHECK(rig.received(backend_side).empty());
    rig.as_control([&] { return slow.drain(); }); // holds the SYN, asks who has 10.20.0.99
    rig.poll();
    auto asks = rig.received(backend_side);
    REQUIRE(asks.size() == 1);
    CHECK(get16(asks[0], 12) == 0x0806);
    CHECK(get32(asks[0], 14 + 24) == 0x0a140063); // target 10.20.0.99

    mac m99 = {0x02, 0, 0, 0, 0x20, 99};
    rig.send(backend_side, packet_builder()
                               .eth(m99, rig.lb_mac(backend_side))
                               .arp(2, m99, "10.20.0.99", rig.lb_mac(backend_side), "10.20.0.1")
                               .build());
    rig.poll();
    rig.as_control([&] { return slow.drain(); }); // learns, releases the held SYN
    rig.poll();
    auto out = rig.received(backend_side);
    REQUIRE(out.size() == 1);
    bytes expected = packet_builder()
                         .eth(rig.lb_mac(backend_side), m99)
                         .ipv4(client_ip, "10.20.0.99")
                         .ttl(63)
                         .tcp(port, 8080, tcp_flags::syn)
                         .build();
    CHECK(out[0] == expected);
}

TEST_CASE("worker: packet fixtures: one frame in, exact frames out, the counters that move") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    const snapshot_backend& b = chosen_backend(rig, client_ip, 40100);
    std::string backend_ip = b.address.to_string();
    int last = last_octet(b);
    bytes good = client_packet(rig, 41000, tcp_flags::syn, 1000, 0, "abcdefgh");
    auto with = [](bytes f, size_t at, uint8_t value) {
        f[at] = value;
        return f;
    };
    auto to_vip = [&] {
        packet_builder p;
        p.eth(router_mac, rig.lb_mac(client_side)).ipv4(client_ip, vip);
        return p;
    };
    bytes bad_checksum = good;
    bad_checksum[14 + 10] ^= 0x55;
    bytes long_total = good;
    put16(long_total, 16, 1500);

    std::vector<packet_fixture> rows = {
        {"a SYN to the VIP: DNAT to the Maglev pick, TTL down by one",
         client_side,
         client_packet(rig, 40100, tcp_flags::syn),
         {},
         {packet_builder()
              .eth(rig.lb_mac(backend_side), backend_mac(last))
              .ipv4(client_ip, backend_ip)
              .ttl(63)
              .tcp(40100, 8080, tcp_flags::syn)
              .build()},
         {{"to_backend", 1}, {"syns", 1}},
         {}},
        {"the backend's SYN-ACK: source back to VIP:80, toward the gateway",
         backend_side,
         backend_packet(rig, b, 40100, tcp_flags::syn | tcp_flags::ack, 5000, 1001),
         {packet_builder()
              .eth(rig.lb_mac(client_side), router_mac)
              .ipv4(vip, client_ip)
              .ttl(63)
              .tcp(80, 40100, tcp_flags::syn | tcp_flags::ack, 5000, 1001)
              .build()},
         {},
         {{"to_client", 1}},
         {}},
        {"the client's ACK completes the handshake: a verified new flow",
         client_side,
         client_packet(rig, 40100, tcp_flags::ack, 1001, 5001),
         {},
         {packet_builder()
              .eth(rig.lb_mac(backend_side), backend_mac(last))
              .ipv4(client_ip, backend_ip)
              .ttl(63)
              .tcp(40100, 8080, tcp_flags::ack, 1001, 5001)
              .build()},
         {{"to_backend", 1}, {"new_flows", 1}},
         {}},
        {"ICMP echo to the VIP is answered",
         client_side,
         to_vip().icmp(8, 0, 77, 3).payload("ping payload").build(),
         {packet_builder()
              .eth(rig.lb_mac(client_side), router_mac)
              .ipv4(vip, client_ip)
              .icmp(0, 0, 77, 3)
              .payload("ping payload")
              .build()},
         {},
         {{"icmp_echo_replies", 1}},
         {}},
        {"an address that is neither a VIP nor ours",
         client_side,
         packet_builder()
             .eth(router_mac, rig.lb_mac(client_side))
             .ipv4(client_ip, "10.10.0.200")
             .tcp(1234, 80, tcp_flags::syn)
             .build(),
         {},
         {},
         {},
         {{drop_reason::not_for_us, 1}}},
        {"the VIP on a port with no service",
         client_side,
         to_vip().tcp(1234, 443, tcp_flags::syn).build(),
         {},
         {},
         {},
         {{drop_reason::not_for_us, 1}}},
        {"an IPv4 fragment",
         client_side,
         to_vip().fragment(0, true).tcp(41001, 80, tcp_flags::syn).build(),
         {},
         {},
         {},
         {{drop_reason::ip_fragment, 1}}},
        {"IPv4 options (router alert)",
         client_side,
         to_vip().ipv4_options({0x94, 0x04, 0x00, 0x00}).tcp(41002, 80, tcp_flags::syn).build(),
         {},
         {},
         {},
         {{drop_reason::ip_options, 1}}},
        {"IHL 4", client_side, with(good, 14, 0x44), {}, {}, {}, {{drop_reason::bad_ipv4_ihl, 1}}},
        {"version 6 in an IPv4 ethertype",
         client_side,
         with(good, 14, 0x65),
         {},
         {},
         {},
         {{drop_reason::bad_ipv4_version, 1}}},
        {"total length past the frame",
         client_side,
         long_total,
         {},
         {},
         {},
         {{drop_reason::bad_ipv4_total_length, 1}}},
        {"a bad IPv4 header checksum",
         client_side,
         bad_checksum,
         {},
         {},
         {},
         {{drop_reason::bad_ipv4_checksum, 1}}},
        {"TCP data offset 3",
         client_side,
         with(good, 14 + 20 + 12, 0x30),
         {},
         {},
         {},
         {{drop_reason::bad_tcp_data_offset, 1}}},
    };
    run_fixtures(rig, rows);
}

TEST_CASE("worker: malformed packets are counted drops and never crash") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    bytes good = client_packet(rig, 41000, tcp_flags::syn, 1000, 0, "abcdefgh");
    uint64_t before_rx = rig.worker->stats().totals.rx_packets.get();

    // Truncated at every length short of the full TCP header.
    size_t sent = 0;
    for (size_t len = 0; len < 14 + 20 + 20; ++len) {
        if (len == 0) {
            continue; // an mbuf with no data is not a frame a port delivers
        }
        bytes cut(good.begin(), good.begin() + long(len));
        auto out = rig.exchange(client_side, cut);
        CHECK(out.backend.empty());
        CHECK(out.client.empty());
        ++sent;
    }
    // Malformed headers one by one: the fixtures below.
    const auto& c = rig.worker->stats().totals;
    CHECK(c.rx_packets.get() - before_rx == sent);
    uint64_t dropped = 0;
    for (size_t r = 1; r < size_t(drop_reason::count_); ++r) {
        dropped += c.drops[r].get();
    }
    CHECK(dropped == sent);
    CHECK(c.tx_packets.get() == 0);
}

TEST_CASE("worker: established flows keep their backend across snapshot swaps") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    std::map<uint16_t, std::string> pinned;
    for (uint16_t p = 42000; p < 42200; ++p) {
        auto out = rig.exchange(client_side, client_packet(rig, p, tcp_flags::syn));
        REQUIRE(out.backend.size() == 1);
        pinned[p] = fmt::format("{}", get32(out.backend[0], 14 + 16));
    }
    // Add two backends and drop weight from the others: Maglev moves slots around.
    auto applied = rig.changes.apply(
        rig.load(basic_config_text("  { address = \"10.20.0.14\", port = 8080, weight = 5 },\n"
                                   "  { address = \"10.20.0.15\", port = 8080, weight = 5 },\n")),
        true);
    INFO(applied.error());
    REQUIRE(applied.ok());
    REQUIRE(applied.publications == 1);

    size_t moved_if_new = 0;
    for (auto& [p, backend] : pinned) {
        auto out = rig.exchange(client_side, client_packet(rig, p, tcp_flags::ack, 1001, 1));
        REQUIRE(out.backend.size() == 1);
        CHECK(fmt::format("{}", get32(out.backend[0], 14 + 16)) == backend);
        const snapshot_backend& now_chosen = chosen_backend(rig, client_ip, p);
        moved_if_new += fmt::format("{}", ntohl(now_chosen.address.v4_be())) != backend;
    }
    // The new table would have sent some of them elsewhere: pinning is what kept them.
    CHECK(moved_if_new > 0);
}

TEST_CASE("worker: flows of a backend that goes down are reset; no backend up means RST") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    const snapshot_backend& b = chosen_backend(rig, client_ip, 43000);
    uint32_t id = b.id;
    rig.exchange(client_side, client_packet(rig, 43000, tcp_flags::syn, 1000));
    REQUIRE(rig.changes.set_health(id, control::health_verdict::down) == 1);

    auto out = rig.exchange(client_side, client_packet(rig, 43000, tcp_flags::ack, 1001, 7000));
    CHECK(out.backend.empty());
    REQUIRE(out.client.size() == 1);
    bytes expected_rst = packet_builder()
                             .eth(rig.lb_mac(client_side), router_mac)
                             .ipv4(vip, client_ip)
                             .ttl(64)
                             .ip_id(0)
                             .tcp(80, 43000, tcp_flags::rst, 7000, 0)
                             .window(0)
                             .build();
    CHECK(out.client[0] == expected_rst);
    CHECK(ipv4_tcp_checksums_ok(out.client[0]));
    CHECK(rig.worker->stats().backends[id].resets.get() == 1);

    // Everyone down: a new SYN is answered with RST|ACK right away.
    // (Ids first: each publication frees the snapshot being iterated.)
    std::vector<uint32_t> ids;
    for (const auto& other : rig.shared.snap.load()->backends) {
        ids.push_back(other.id);
    }
    for (uint32_t other : ids) {
        rig.changes.set_health(other, control::health_verdict::down);
    }
    auto refused = rig.exchange(client_side, client_packet(rig, 43001, tcp_flags::syn, 555));
    REQUIRE(refused.client.size() == 1);
    CHECK(refused.client[0].at(14 + 20 + 13) == (tcp_flags::rst | tcp_flags::ack));
    CHECK(get32(refused.client[0], 14 + 20 + 8) == 556);
    CHECK(rig.drops(drop_reason::no_backend) == 1);
}

TEST_CASE("worker: health probes leave from the interface address; SYN-ACKs get a RST") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    dataplane::slow_path slow(rig.shared, test_pool(), rig.worker->inject_ring());
    std::vector<net::packet_meta> seen;
    std::vector<uint32_t> acks;
    slow.on_probe_reply([&](const net::packet_meta& meta, uint32_t ack) {
        seen.push_back(meta);
        acks.push_back(ack);
        return true;
    });

    // In flight, as the health checker registers it: the worker passes on its answer.
    net::probe_table in_flight;
    rig.shared.probes = &in_flight;
    auto ticket = in_flight.open(*net::ip_addr::parse("10.20.0.11"), 8080, 0x01020305);
    REQUIRE(ticket);
    REQUIRE(ticket->port == 61000); // the first port
    slow.send_tcp_syn(*net::ip_addr::parse("10.20.0.11"), 8080, 61000, 0x01020304);
    rig.poll();
    auto probes = rig.received(backend_side);
    REQUIRE(probes.size() == 1);
    bytes expected = packet_builder()
                         .eth(rig.lb_mac(backend_side), backend_mac(11))
                         .ipv4("10.20.0.1", "10.20.0.11")
                         .ttl(64)
                         .ip_id(0)
                         .dont_fragment()
                         .tcp(61000, 8080, tcp_flags::syn, 0x01020304, 0)
                         .window(1024)
                         .build();
    CHECK(probes[0] == expected);

    // The backend answers; the worker hands it to the control thread, which resets.
    rig.send(backend_side, packet_builder()
                               .eth(backend_mac(11), rig.lb_mac(backend_side))
                               .ipv4("10.20.0.11", "10.20.0.1")
                               .tcp(8080, 61000, tcp_flags::syn | tcp_flags::ack, 9000, 0x01020305)
                               .build());
    rig.poll();
    CHECK(rig.received(client_side).empty());
    rig.as_control([&] { return slow.drain(); });
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].key.src == *net::ip_addr::parse("10.20.0.11"));
    CHECK(ntohs(seen[0].key.dst_port) == 61000);
    CHECK(acks[0] == 0x01020305);
    rig.poll();
    auto resets = rig.received(backend_side);
    REQUIRE(resets.size() == 1);
    CHECK(resets[0].at(14 + 20 + 13) == tcp_flags::rst);
    CHECK(get32(resets[0], 14 + 20 + 4) == 0x01020305);
    CHECK(ipv4_tcp_checksums_ok(resets[0]));

    // Forgeries that never leave the worker: a "reply" on the clients' side (with the
    // probe's own endpoint, port and number), one to another of our addresses, and
    // TCP to us that is no probe reply at all.
    rig.send(client_side, packet_builder()
                              .eth(router_mac, rig.lb_mac(client_side))
                              .ipv4("10.20.0.11", "10.10.0.2")
                              .tcp(8080, 61000, tcp_flags::syn | tcp_flags::ack, 9000, 0x01020305)
                              .build());
    rig.send(backend_side, packet_builder()
                               .eth(backend_mac(11), rig.lb_mac(backend_side))
                               .ipv4("10.20.0.11", "10.10.0.2")
                               .tcp(8080, 61001, tcp_flags::rst | tcp_flags::ack, 0, 7)
                               .build());
    rig.send(backend_side, packet_builder()
                               .eth(backend_mac(11), rig.lb_mac(backend_side))
                               .ipv4("10.20.0.11", "10.20.0.1")
                               .tcp(8080, 61002, tcp_flags::syn, 0, 0)
                               .build());
    rig.poll();
    rig.as_control([&] { return slow.drain(); });
    CHECK(seen.size() == 1);
    CHECK(slow.forged_probe_replies() == 0);
    CHECK(rig.drops(drop_reason::not_a_probe_reply) == 3);
    rig.shared.probes = nullptr;
}

TEST_CASE("worker: a SYN that reuses the port of a closing flow starts a new flow") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    rig.exchange(client_side, client_packet(rig, 44000, tcp_flags::syn, 1000));
    rig.exchange(client_side, client_packet(rig, 44000, tcp_flags::ack, 1001, 1));
    rig.exchange(client_side, client_packet(rig, 44000, tcp_flags::fin | tcp_flags::ack, 1001, 1));
    CHECK(rig.worker->stats().totals.syns.get() == 1);
    auto again = rig.exchange(client_side, client_packet(rig, 44000, tcp_flags::syn, 90000));
    REQUIRE(again.backend.size() == 1);
    CHECK(rig.worker->stats().totals.syns.get() == 2);
    // A retransmitted SYN of a live flow is not a new flow.
    rig.exchange(client_side, client_packet(rig, 44000, tcp_flags::syn, 90000));
    CHECK(rig.worker->stats().totals.syns.get() == 2);
}

TEST_CASE("worker: a draining backend keeps its flows until drain_timeout, then resets them") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    const snapshot_backend& chosen = chosen_backend(rig, client_ip, 45000);
    uint32_t id = chosen.id;
    std::string key = chosen.key();
    rig.exchange(client_side, client_packet(rig, 45000, tcp_flags::syn, 1000));
    // The backend answers: the flow is established (pinned) from here on.
    rig.exchange(backend_side, backend_packet(rig, chosen, 45000, tcp_flags::syn | tcp_flags::ack));

    // Published stamped, as evenflowd does: the pool's drain_timeout is 30s (default).
    REQUIRE(rig.changes.set_admin("web", key, control::admin_state::draining).ok());
    REQUIRE(rig.shared.snap.load()->find_backend(id)->drain_deadline_ms == rig.now_ms + 30'000);

    // Existing flow continues; new flows avoid the draining backend.
    auto data = rig.exchange(client_side, client_packet(rig, 45000, tcp_flags::ack, 1001, 1));
    REQUIRE(data.backend.size() == 1);
    CHECK(get32(data.backend[0], 14 + 16) ==
          ntohl(rig.shared.snap.load()->find_backend(id)->address.v4_be()));
    for (uint16_t p = 46000; p < 46300; ++p) {
        auto out = rig.exchange(client_side, client_packet(rig, p, tcp_flags::syn));
        REQUIRE(out.backend.size() == 1);
    }
    CHECK(rig.shared.snap.load()->find_backend(id)->slots == 0);
    CHECK(rig.worker->stats().backends[id].new_flows.get() == 1);

    // Past the deadline, the next packet of the pinned flow is answered with RST.
    rig.now_ms += 31'000;
    auto late = rig.exchange(client_side, client_packet(rig, 45000, tcp_flags::ack, 1001, 1));
    CHECK(late.backend.empty());
    REQUIRE(late.client.size() == 1);
    CHECK(late.client[0].at(14 + 20 + 13) == tcp_flags::rst);
    CHECK(rig.worker->stats().backends[id].resets.get() == 1);
}

TEST_CASE("worker: during a suspected mass health failure, pinned flows are not reset") {
    ring_rig rig(basic_config_text());
    rig.become_reader();
    const snapshot_backend& b = chosen_backend(rig, client_ip, 47000);
    uint32_t id = b.id;
    net::ip_addr address = b.address; // (b dies with its snapshot at the next publish)
    rig.exchange(client_side, client_packet(rig, 47000, tcp_flags::syn, 1000));
    // An apply just happened: in probation, the policy keeps the pinned flows.
    auto applied = rig.changes.apply(
        rig.load(basic_config_text("  { address = \"10.20.0.14\", port = 8080, weight = 1 },\n")));
    REQUIRE(applied.ok());
    REQUIRE(rig.changes.set_health(id, control::health_verdict::down) == 1);
    REQUIRE(rig.shared.snap.load()->services[0].keep_pinned_flows);
    auto out = rig.exchange(client_side, client_packet(rig, 47000, tcp_flags::ack, 1001, 1));
    CHECK(out.client.empty());
    REQUIRE(out.backend.size() == 1);
    CHECK(get32(out.backend[0], 14 + 16) == ntohl(address.v4_be()));
    CHECK(rig.worker->stats().backends[id].resets.get() == 0);
}

// ---- tunnel mode (IPIP, direct server return) ----

namespace {

// Tunnel mode does not rewrite ports: the backends listen on the service's port 80.
std::string tunnel_config_text() {
    return basic_config_text("", "  { address = \"10.20.0.11\", port = 80, weight = 1 },\n"
                                 "  { address = \"10.20.0.12\", port = 80, weight = 1 },\n"
                                 "  { address = \"10.20.0.13\", port = 80, weight = 2 },\n") +
           "mode = \"tunnel\"\n";
}

// What the backend side must see: the client's IP packet, byte for byte, behind an
// outer IPv4 header from the balancer's backend-side address to the backend.
bytes encapsulated(ring_rig& rig, const snapshot_backend& b, const bytes& client_frame,
                   bool df = false, uint8_t tos = 0) {
    bytes inner(client_frame.begin() + 14, client_frame.end());
    return packet_builder()
        .eth(rig.lb_mac(backend_side), backend_mac(last_octet(b)))
        .ipv4("10.20.0.1", b.address.to_string())
        .ttl(64)
        .tos(tos)
        .dont_fragment(df)
        .ip_id(0)
        .raw_l4(4, inner)
        .build();
}

} // namespace

TEST_CASE("tunnel: the client's packet goes to the backend inside IPIP, unchanged, exact bytes") {
    ring_rig rig(tunnel_config_text());
    rig.become_reader();
    const snapshot_backend& b = chosen_backend(rig, client_ip, 40000);

    bytes syn = packet_builder()
                    .eth(router_mac, rig.lb_mac(client_side))
                    .ipv4(client_ip, vip)
                    .ttl(64)
                    .tos(0xb8) // DSCP EF: travels on the outer header too
                    .dont_fragment()
                    .tcp(40000, 80, tcp_flags::syn)
                    .build();
    auto out = rig.exchange(client_side, syn);
    REQUIRE(out.backend.size() == 1);
    CHECK(out.backend[0] == encapsulated(rig, b, syn, true, 0xb8));
    CHECK(verify_checksums(out.backend[0]) == ""); // the outer header's, independently

    // The rest of the connection follows the same backend; no reply entry is made
    // (the backend answers the client directly), and the flow is never pinned.
    bytes ack = client_packet(rig, 40000, tcp_flags::ack, 1001, 5001, "GET / HTTP/1.1\r\n\r\n");
    out = rig.exchange(client_side, ack);
    REQUIRE(out.backend.size() == 1);
    CHECK(out.backend[0] == encapsulated(rig, b, ack));
    const auto& c = rig.worker->stats().totals;
    CHECK(c.tunneled.get() == 2);
    CHECK(c.syns.get() == 1);
    CHECK(c.new_flows.get() == 1); // one way: counted at the client's packet after its SYN
    CHECK(c.flows_active.get() <= 1);
    CHECK(rig.worker->flows().size() == 1);
    CHECK(rig.worker->stats().backends[b.id].packets_to.get() == 2);

    // Without a flow entry (another host's, a restart), a mid-flow packet takes the
    // same Maglev pick.
    const snapshot_backend& b2 = chosen_backend(rig, client_ip, 40001);
    bytes stray = client_packet(rig, 40001, tcp_flags::ack, 7, 9, "x");
    out = rig.exchange(client_side, stray);
    REQUIRE(out.backend.size() == 1);
    CHECK(out.backend[0] == encapsulated(rig, b2, stray));
}

TEST_CASE("tunnel: too big for the backend side's MTU once encapsulated: the client is told") {
    ring_rig rig(tunnel_config_text());
    rig.become_reader();
    rig.exchange(client_side, client_packet(rig, 40000, tcp_flags::syn));
    bytes big = packet_builder()
                    .eth(router_mac, rig.lb_mac(client_side))
                    .ipv4(client_ip, vip)
                    .ttl(64)
                    .dont_fragment()
                    .tcp(40000, 80, tcp_flags::ack, 1001, 5001)
                    .payload_size(1460) // a 1500-byte IP packet: 1520 inside IPIP
                    .build();
    auto out = rig.exchange(client_side, big);
    CHECK(out.backend.empty());
    REQUIRE(out.client.size() == 1);
    // RFC 1191: destination unreachable, fragmentation needed, next-hop MTU 1480,
    // quoting the IP header and the first 8 bytes of the TCP header, from the VIP.
    bytes quoted(big.begin() + 14, big.begin() + 14 + 20 + 8);
    bytes expected = packet_builder()
                         .eth(rig.lb_mac(client_side), router_mac)
                         .ipv4(vip, client_ip)
                         .ttl(64)
                         .ip_id(0)
                         .icmp(3, 4, 0, 1480)
                         .payload(quoted)
                         .build();
    CHECK(out.client[0] == expected);
    CHECK(verify_checksums(out.client[0]) == "");
    CHECK(rig.drops(drop_reason::tunnel_too_big) == 1);

    // Fragmentation allowed (no DF): dropped and counted, no answer due.
    bytes big_no_df = big;
    big_no_df[14 + 6] = 0;
    big_no_df[14 + 10] = 0;
    big_no_df[14 + 11] = 0;
    uint16_t sum = reference_checksum(std::span(big_no_df).subspan(14, 20));
    big_no_df[14 + 10] = uint8_t(sum >> 8);
    big_no_df[14 + 11] = uint8_t(sum);
    out = rig.exchange(client_side, big_no_df);
    CHECK(out.client.empty());
    CHECK(out.backend.empty());
    CHECK(rig.drops(drop_reason::tunnel_too_big) == 2);
}

TEST_CASE("tunnel: a flow past its SYN is one-way, evictable, kept like an established one") {
    ring_rig rig(tunnel_config_text());
    rig.become_reader();
    auto state_of = [&](uint16_t port) {
        net::flow_key k = vip_key(client_ip, port);
        auto& table = const_cast<flow::flow_table&>(rig.worker->flows());
        const flow::flow_entry* e = table.lookup(k, net::flow_hash(k), uint32_t(rig.now_ms));
        REQUIRE(e != nullptr);
        return e->value.state;
    };
    rig.exchange(client_side, client_packet(rig, 40000, tcp_flags::syn));
    CHECK(state_of(40000) == flow::flow_state::syn);
    rig.exchange(client_side, client_packet(rig, 40000, tcp_flags::syn)); // retransmitted
    CHECK(state_of(40000) == flow::flow_state::syn);
    rig.exchange(client_side, client_packet(rig, 40000, tcp_flags::ack, 1001, 5001));
    CHECK(state_of(40000) == flow::flow_state::one_way);
    rig.exchange(client_side, client_packet(rig, 40000, tcp_flags::fin | tcp_flags::ack, 1001));
    CHECK(state_of(40000) == flow::flow_state::closing);
}

TEST_CASE("worker: the host's own packets go to its kernel interface, the peers' in their lane") {
    // The client side has a kernel interface (the exception path) and 10.10.0.1 is a
    // routing peer; the backend side has none.
    std::string text = basic_config_text();
    const std::string anchor = "gateway = \"10.10.0.1\"\n";
    text.replace(text.find(anchor), anchor.size(), anchor + "kernel_interface = \"ef-test0\"\n");
    ring_rig rig(text);
    rig.shared.routing_peers = {*net::ip_addr::parse("10.10.0.1")};
    rig.become_reader();
    auto to_us = [&](const char* src) {
        packet_builder p;
        p.eth(router_mac, rig.lb_mac(client_side)).ipv4(src, "10.10.0.2").ttl(255);
        return p;
    };
    bytes bfd_header(8, 0); // UDP 49152 -> 3784 (BFD), length and checksum unchecked here
    put16(bfd_header, 0, 49152);
    put16(bfd_header, 2, 3784);
    put16(bfd_header, 4, 8);
    auto ring_count = [&](dataplane::control_reason r) {
        return rte_ring_count(rig.shared.to_control[size_t(r)]);
    };

    // Each frame is checked where the worker puts it: the lane's ring, untouched.
    struct lane_case {
        const char* name;
        uint16_t side;
        bytes frame;
        dataplane::control_reason lane;
        const char* counter;
    };
    const std::vector<lane_case> lanes = {
        {"BGP from the peer", client_side,
         to_us("10.10.0.1").tcp(40000, 179, tcp_flags::syn).build(),
         dataplane::control_reason::peer, "to_host_peer"},
        {"BFD (UDP) from the peer", client_side, to_us("10.10.0.1").raw_l4(17, bfd_header).build(),
         dataplane::control_reason::peer, "to_host_peer"},
        {"TCP from anyone else", client_side,
         to_us("10.10.0.77").tcp(40000, 22, tcp_flags::syn).build(),
         dataplane::control_reason::host, "to_host"},
        {"an echo reply (the kernel's ping)", client_side, to_us("10.10.0.77").icmp(0).build(),
         dataplane::control_reason::host, "to_host"},
    };
    for (const lane_case& c : lanes) {
        INFO(c.name);
        const auto before = counter_named(rig, c.counter);
        rig.send(c.side, c.frame);
        rig.poll();
        CHECK(rig.received(client_side).empty());
        CHECK(rig.received(backend_side).empty());
        REQUIRE(ring_count(c.lane) == 1);
        rte_mbuf* m = nullptr;
        REQUIRE(rte_ring_dequeue(rig.shared.to_control[size_t(c.lane)],
                                 reinterpret_cast<void**>(&m)) == 0);
        CHECK(m->port == client_side);
        CHECK(bytes(rte_pktmbuf_mtod(m, uint8_t*),
                    rte_pktmbuf_mtod(m, uint8_t*) + rte_pktmbuf_data_len(m)) == c.frame);
        rte_pktmbuf_free(m);
        CHECK(counter_named(rig, c.counter) - before == 1);
    }

    std::vector<packet_fixture> rows = {
        {"TCP to a probe port that answers no probe: dropped, never the kernel's",
         client_side,
         to_us("10.10.0.77").tcp(40000, 61000, tcp_flags::syn | tcp_flags::ack).build(),
         {},
         {},
         {},
         {{drop_reason::not_a_probe_reply, 1}}},
        {"TCP to the address of an interface without one: dropped",
         backend_side,
         packet_builder()
             .eth(backend_mac(11), rig.lb_mac(backend_side))
             .ipv4("10.20.0.11", "10.20.0.1")
             .tcp(40000, 179, tcp_flags::syn)
             .build(),
         {},
         {},
         {},
         {{drop_reason::not_a_probe_reply, 1}}},
        {"UDP to the address of an interface without one: dropped",
         backend_side,
         packet_builder()
             .eth(backend_mac(11), rig.lb_mac(backend_side))
             .ipv4("10.20.0.11", "10.20.0.1")
             .raw_l4(17, bfd_header)
             .build(),
         {},
         {},
         {},
         {{drop_reason::unsupported_l4, 1}}},
        {"UDP from the peer to the VIP: not the host's",
         client_side,
         packet_builder()
             .eth(router_mac, rig.lb_mac(client_side))
             .ipv4("10.10.0.1", vip)
             .raw_l4(17, bfd_header)
             .build(),
         {},
         {},
         {},
         {{drop_reason::unsupported_l4, 1}}},
    };
    run_fixtures(rig, rows);

    // A flood at the host's address from anyone but the peer stops at the host lane's
    // budget (its burst: a tenth of a second's worth); the peer's packets still pass.
    const auto host_burst =
        uint64_t(dataplane::control_budget_per_s[size_t(dataplane::control_reason::host)] / 10);
    const uint64_t budget_drops = rig.drops(drop_reason::control_budget);
    const auto flood_start = std::chrono::steady_clock::now();
    for (int i = 0; i < 2000; ++i) {
        rig.send(client_side, to_us("10.10.0.77").tcp(uint16_t(20000 + i), 179).build());
        if (i % 32 == 31) {
            rig.poll();
        }
    }
    rig.send(client_side, to_us("10.10.0.1").tcp(40001, 179, tcp_flags::ack).build());
    rig.poll();
    const std::chrono::duration<double> flood_time = std::chrono::steady_clock::now() - flood_start;
    const auto host_passed = ring_count(dataplane::control_reason::host);
    // The burst less the two of the lane cases above, plus what refilled meanwhile.
    CHECK(host_passed >= host_burst - 2);
    CHECK(double(host_passed) <=
          double(host_burst) + 1 +
              dataplane::control_budget_per_s[size_t(dataplane::control_reason::host)] *
                  flood_time.count());
    CHECK(rig.drops(drop_reason::control_budget) - budget_drops == 2000 - host_passed);
    CHECK(ring_count(dataplane::control_reason::peer) == 1);
    rig.to_control();
}
