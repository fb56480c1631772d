// VRRPv3 (net/vrrp.hpp): the advert byte for byte against one scapy's VRRPv3 layer
// built (an independent implementation of RFC 5798's checksum), what a receiver
// discards, and the election: who takes the gateway, how fast, and the hand-over of a
// host going out of service.
#include "net/parse.hpp"
#include "net/vrrp.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace net = evenflow::net;
using namespace std::chrono_literals;
using election = net::vrrp_election;

namespace {

net::ip_addr ip(const char* text) {
    return *net::ip_addr::parse(text);
}

std::vector<uint8_t> from_hex(const std::string& hex) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(uint8_t(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

// scapy 2.5: Ether(dst="01:00:5e:00:00:12", src="00:00:5e:00:01:14") / IP(src="10.20.0.2",
// dst="224.0.0.18", ttl=255, tos=0xc0, id=0, flags=0) / VRRPv3(vrid=20, priority=150,
// ipcount=1, adv=10, addrlist=["10.20.0.254"]), zero-padded to 60 bytes.
const std::string scapy_advert = "01005e00001200005e000114080045c0002000000000ff70d0850a140002e0"
                                 "00001231149601000a43290a1400fe0000000000000000000000000000";

net::vrrp_advert advert(const char* sender, uint8_t priority, uint16_t interval_cs = 10) {
    net::vrrp_advert a;
    a.sender = ip(sender);
    a.id = 20;
    a.priority = priority;
    a.interval_cs = interval_cs;
    a.address = ip("10.20.0.254");
    return a;
}

bool parse_advert(std::vector<uint8_t>& frame, net::vrrp_advert& out) {
    net::packet_meta meta;
    return net::parse_frame(frame, meta) == net::drop_reason::unsupported_l4 &&
           net::read_vrrp_advert(frame, meta, out);
}

} // namespace

TEST_CASE("a VRRPv3 advert is what scapy builds, and reads back", "[vrrp]") {
    std::vector<uint8_t> frame(net::vrrp_frame_length);
    REQUIRE(net::build_vrrp_advert(frame, advert("10.20.0.2", 150)) == net::vrrp_frame_length);
    CHECK(frame == from_hex(scapy_advert));

    net::vrrp_advert read;
    REQUIRE(parse_advert(frame, read));
    CHECK(read.sender == ip("10.20.0.2"));
    CHECK(read.id == 20);
    CHECK(read.priority == 150);
    CHECK(read.interval_cs == 10);
    CHECK(read.address == ip("10.20.0.254"));
    CHECK(net::vrrp_virtual_mac(20) == net::mac_addr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x14});
}

TEST_CASE("a receiver discards what RFC 5798 says to", "[vrrp]") {
    const std::vector<uint8_t> good = from_hex(scapy_advert);
    net::vrrp_advert read;
    auto broken = [&](size_t offset, uint8_t value) {
        std::vector<uint8_t> f = good;
        f[offset] = value;
        return f;
    };
    SECTION("routed: TTL below 255 (IP checksum fixed up, so only the TTL is wrong)") {
        auto f = broken(22, 254);
        f[24] = 0xd1; // 0xd085 + 0x0100
        f[25] = 0x85;
        CHECK_FALSE(parse_advert(f, read));
    }
    struct one_byte {
        const char* what;
        size_t offset;
        uint8_t value;
    };
    for (const one_byte& c :
         {one_byte{"VRRPv2", 34, 0x21}, one_byte{"a checksum that does not verify", 41, 0x2a},
          one_byte{"no address", 37, 0}, one_byte{"an address count past the packet", 37, 2}}) {
        INFO(c.what);
        auto f = broken(c.offset, c.value);
        CHECK_FALSE(parse_advert(f, read));
    }
}

TEST_CASE("the election: a lone host takes the gateway after three intervals and a skew",
          "[vrrp]") {
    const auto t0 = election::clock::time_point{} + 1h;
    election e(100, 100ms, ip("10.20.0.2"));
    e.start(t0);
    CHECK(e.current() == election::role::backup);
    // 3 x 100 ms + (256 - 100) x 100 ms / 256 = 360.9 ms
    CHECK_FALSE(e.tick(t0 + 360ms).became_master);
    auto a = e.tick(t0 + 361ms);
    CHECK(a.became_master);
    CHECK(a.send_advert);
    CHECK(a.advert_priority == 100);
    CHECK(e.current() == election::role::master);
    // Then an advert every interval, and nothing between.
    CHECK_FALSE(e.tick(t0 + 460ms).send_advert);
    auto next = e.tick(t0 + 461ms);
    CHECK(next.send_advert);
    CHECK_FALSE(next.became_master);
}

TEST_CASE("the election: priorities, ties and a master that stops", "[vrrp]") {
    const auto t0 = election::clock::time_point{} + 1h;
    election e(100, 100ms, ip("10.20.0.2"));
    e.start(t0);
    SECTION("a higher-priority master keeps this host a backup while it advertises") {
        for (int i = 1; i <= 20; ++i) {
            e.receive(advert("10.20.0.3", 200), t0 + i * 100ms);
            CHECK_FALSE(e.tick(t0 + i * 100ms + 50ms).became_master);
        }
        // It stops (killed): taken 3 intervals and the skew after its last advert.
        CHECK_FALSE(e.tick(t0 + 2000ms + 360ms).became_master);
        CHECK(e.tick(t0 + 2000ms + 361ms).became_master);
    }
    SECTION("a master leaving (priority 0) is replaced after the skew alone") {
        e.receive(advert("10.20.0.3", 200), t0 + 100ms);
        e.receive(advert("10.20.0.3", 0), t0 + 150ms);
        CHECK_FALSE(e.tick(t0 + 150ms + 60ms).became_master);
        CHECK(e.tick(t0 + 150ms + 61ms).became_master); // (256 - 100) x 100 ms / 256
    }
    SECTION("a lower-priority master is preempted") {
        e.receive(advert("10.20.0.3", 50), t0 + 100ms);
        CHECK(e.tick(t0 + 361ms).became_master);
        CHECK_FALSE(e.receive(advert("10.20.0.3", 50), t0 + 400ms).became_backup);
    }
    SECTION("masters of equal priority: the higher address keeps it") {
        REQUIRE(e.tick(t0 + 361ms).became_master);
        CHECK_FALSE(e.receive(advert("10.20.0.1", 100), t0 + 400ms).became_backup);
        CHECK(e.receive(advert("10.20.0.3", 100), t0 + 410ms).became_backup);
        CHECK(e.current() == election::role::backup);
    }
    SECTION("a backup does not preempt a master of equal priority") {
        for (int i = 1; i <= 10; ++i) {
            e.receive(advert("10.20.0.1", 100), t0 + i * 100ms);
            CHECK_FALSE(e.tick(t0 + i * 100ms + 50ms).became_master);
        }
    }
    SECTION("its own adverts, looped back, are not a peer's") {
        e.receive(advert("10.20.0.2", 255), t0 + 100ms);
        CHECK(e.last_peer().sender.is_unspecified());
        CHECK(e.tick(t0 + 361ms).became_master);
    }
}

TEST_CASE("the election: out of service, a holder hands over", "[vrrp]") {
    const auto t0 = election::clock::time_point{} + 1h;
    election e(150, 100ms, ip("10.20.0.2"));
    e.start(t0);
    REQUIRE(e.tick(t0 + 400ms).became_master);
    SECTION("a priority-0 advert, backup at once; the peer takes over and keeps it") {
        auto a = e.set_in_service(false, t0 + 500ms);
        CHECK(a.send_advert);
        CHECK(a.advert_priority == 0);
        CHECK(a.became_backup);
        CHECK(e.priority() == 1);
        // While the peer advertises, it stays a backup.
        for (int i = 1; i <= 10; ++i) {
            e.receive(advert("10.20.0.3", 100), t0 + 500ms + i * 100ms);
            CHECK_FALSE(e.tick(t0 + 550ms + i * 100ms).became_master);
        }
        // Back in service, the higher priority takes the gateway back (preemption).
        e.set_in_service(true, t0 + 1600ms);
        e.receive(advert("10.20.0.3", 100), t0 + 1600ms);
        CHECK(e.tick(t0 + 1600ms + 300ms + 42ms).became_master); // 3 x 100 + 106 x 100 / 256
    }
    SECTION("alone: no host takes it, so it takes it back (priority 1)") {
        CHECK(e.set_in_service(false, t0 + 500ms).became_backup);
        // 3 x 100 ms + 255 x 100 ms / 256 = 399.6 ms
        CHECK_FALSE(e.tick(t0 + 899ms).became_master);
        auto a = e.tick(t0 + 900ms);
        CHECK(a.became_master);
        CHECK(a.advert_priority == 1);
    }
    SECTION("leaving: a priority-0 advert, and never master again") {
        auto a = e.leave(t0 + 500ms);
        CHECK(a.send_advert);
        CHECK(a.advert_priority == 0);
        CHECK(a.became_backup);
        CHECK_FALSE(e.tick(t0 + 10s).became_master);
    }
}
