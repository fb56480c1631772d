// The backends' moving gateway (vrrp on the backend-side interface) on real ports
// (net_ring): the slow path's election driven by the test's clock and by a peer's
// adverts (built by net::build_vrrp_advert, itself checked byte for byte against
// scapy in test/unit/test_vrrp.cpp), and what the worker does while this host holds
// the gateway and after it let it go. Exact bytes out.
#include "connections.hpp"
#include "dataplane/slow_path.hpp"
#include "net/checksum.hpp"
#include "rig.hpp"

#include <catch2/catch.hpp>

#include <chrono>

using namespace evenflow;
using namespace evenflow::testing;
using namespace std::chrono_literals;
using net::drop_reason;

namespace {

constexpr const char* client_ip = "198.51.100.7"; // off-link: reached through 10.10.0.1
constexpr const char* gateway_ip = "10.20.0.254";
const mac virtual_mac = {0x00, 0x00, 0x5e, 0x00, 0x01, 20};
const mac broadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

std::string gateway_config() {
    std::string text = basic_config_text();
    const std::string anchor = "address = \"10.20.0.1/24\"\n";
    text.replace(text.find(anchor), anchor.size(),
                 anchor + "vrrp = { id = 20, address = \"10.20.0.254\", priority = 100, "
                          "peers = [\"10.20.0.3\"] }\n");
    return text;
}

bytes advert(const char* sender, uint8_t priority, uint8_t ttl = 255) {
    bytes frame(net::vrrp_frame_length);
    net::vrrp_advert a;
    a.sender = *net::ip_addr::parse(sender);
    a.id = 20;
    a.priority = priority;
    a.interval_cs = 10;
    a.address = *net::ip_addr::parse(gateway_ip);
    REQUIRE(net::build_vrrp_advert(frame, a) == net::vrrp_frame_length);
    if (ttl != 255) {
        frame[22] = ttl; // routed here: the IP checksum made right again
        frame[24] = frame[25] = 0;
        const uint16_t sum = net::checksum_fold(net::checksum_partial(frame.data() + 14, 20));
        std::memcpy(frame.data() + 24, &sum, 2);
    }
    return frame;
}

bytes arp_for_gateway() {
    return packet_builder()
        .eth(backend_mac(11), broadcast)
        .arp(1, backend_mac(11), "10.20.0.11", mac{}, gateway_ip)
        .pad_to(60)
        .build();
}

// A backend's answer to a client, sent to its gateway's MAC, for a flow this host has
// no entry of (another host balanced it).
bytes reply_via_gateway(uint16_t client_port) {
    return packet_builder()
        .eth(backend_mac(11), virtual_mac)
        .ipv4("10.20.0.11", client_ip)
        .ttl(64)
        .tcp(8080, client_port, tcp_flags::ack, 5000, 1001)
        .payload("hello")
        .build();
}

} // namespace

TEST_CASE("gateway: taken when no peer advertises, answered, handed over, let go") {
    ring_rig rig(gateway_config());
    rig.become_reader();
    dataplane::slow_path slow(rig.shared, test_pool(), rig.worker->inject_ring());
    // Ahead of the real clock: adverts are judged at the latest tick's time then.
    const auto t0 = std::chrono::steady_clock::now() + 1h;
    auto tick = [&](std::chrono::milliseconds at, bool in_service = true) {
        rig.as_control([&] {
            slow.tick_gateways(in_service, t0 + at);
            return 0;
        });
        rig.poll(); // worker 0 sends what the slow path injected
    };
    auto from_backends = [&](const bytes& frame) {
        rig.send(backend_side, frame);
        rig.poll();
        rig.as_control([&] { return slow.drain(); });
        rig.poll();
    };
    rig.as_control([&] {
        slow.start_gateways(rig.cfg.interfaces, t0);
        return 0;
    });
    REQUIRE(slow.gateways().size() == 1);
    const auto& gw = slow.gateways()[0];

    // A backup: the address is not answered and its MAC's frames are not taken.
    from_backends(arp_for_gateway());
    CHECK(rig.received(backend_side).empty());
    rig.send(backend_side, reply_via_gateway(40000));
    rig.poll();
    CHECK(rig.received(client_side).empty());
    CHECK(rig.drops(drop_reason::gateway_not_held) == 1);

    // No advert for 3 x 100 ms + the skew: taken, with an advert and a gratuitous ARP.
    tick(360ms);
    CHECK(rig.received(backend_side).empty());
    tick(361ms);
    auto out = rig.received(backend_side);
    REQUIRE(out.size() == 2);
    CHECK(out[0] == advert("10.20.0.1", 100));
    CHECK(out[1] == packet_builder()
                        .eth(virtual_mac, broadcast)
                        .arp(1, virtual_mac, gateway_ip, mac{}, gateway_ip)
                        .pad_to(60)
                        .build());
    // Then one advert per interval.
    tick(460ms);
    CHECK(rig.received(backend_side).empty());
    tick(461ms);
    CHECK(rig.received(backend_side).size() == 1);

    // Held: ARP for it is answered by the worker with the virtual MAC...
    rig.send(backend_side, arp_for_gateway());
    rig.poll();
    auto answers = rig.received(backend_side);
    REQUIRE(answers.size() == 1);
    CHECK(answers[0] == packet_builder()
                            .eth(virtual_mac, backend_mac(11))
                            .arp(2, virtual_mac, gateway_ip, backend_mac(11), "10.20.0.11")
                            .pad_to(60)
                            .build());
    // ...and a reply sent to it, of a flow no entry knows, goes to the client from the
    // VIP (the reply rewrite), exact bytes.
    rig.send(backend_side, reply_via_gateway(40001));
    rig.poll();
    auto replies = rig.received(client_side);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0] == packet_builder()
                            .eth(rig.lb_mac(client_side), router_mac)
                            .ipv4(vip, client_ip)
                            .ttl(63)
                            .tcp(80, 40001, tcp_flags::ack, 5000, 1001)
                            .payload("hello")
                            .build());
    CHECK(rig.worker->stats().totals.reverse_stateless.get() == 1);

    // Adverts that claim it from elsewhere are refused: a backend (not a peer), and a
    // peer's routed one (TTL 254). Still held.
    from_backends(advert("10.20.0.11", 254));
    from_backends(advert("10.20.0.3", 254, 254));
    CHECK(gw.adverts_refused == 2);
    CHECK(gw.election.current() == net::vrrp_election::role::master);

    // A peer of higher priority: let go. ARP is no longer answered; frames already on
    // their way are still taken for a second, then dropped.
    for (auto at : {400ms, 700ms, 1000ms, 1300ms}) {
        tick(at);
        (void)rig.received(backend_side);
        from_backends(advert("10.20.0.3", 200));
    }
    CHECK(gw.election.current() == net::vrrp_election::role::backup);
    CHECK(gw.adverts_received == 4);
    from_backends(arp_for_gateway());
    CHECK(rig.received(backend_side).empty());
    rig.send(backend_side, reply_via_gateway(40002));
    rig.poll();
    CHECK(rig.received(client_side).size() == 1); // within a second of the hand-over
    tick(1400ms); // 1 s after the first peer advert (at 400 ms): let go
    rig.send(backend_side, reply_via_gateway(40003));
    rig.poll();
    CHECK(rig.received(client_side).empty());
    CHECK(rig.drops(drop_reason::gateway_not_held) == 2);

    // The peer leaves (priority 0): taken back after the skew alone (60.9 ms).
    from_backends(advert("10.20.0.3", 0));
    tick(1460ms);
    CHECK(gw.election.current() == net::vrrp_election::role::backup);
    tick(1462ms);
    CHECK(gw.election.current() == net::vrrp_election::role::master);
    CHECK(rig.received(backend_side).size() == 2); // advert and gratuitous ARP

    // Out of service with a backup there: a priority-0 advert hands it over at once.
    from_backends(advert("10.20.0.3", 50));
    tick(1500ms, false);
    out = rig.received(backend_side);
    REQUIRE(out.size() == 1);
    CHECK(out[0] == advert("10.20.0.1", 0));
    CHECK(gw.election.current() == net::vrrp_election::role::backup);
    CHECK(slow.gateway_handover_pending(t0 + 1500ms));
    CHECK_FALSE(slow.gateway_handover_pending(t0 + 2500ms));
}
