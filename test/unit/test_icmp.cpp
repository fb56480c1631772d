// ICMP errors about a NATed TCP flow: the quote is read, and the translated error is
// byte for byte the error the independent packet builder makes for the translated
// flow (every checksum included).
#include "net/icmp.hpp"
#include "net/parse.hpp"
#include "net/reply.hpp"

#include "support/packet_builder.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>

using namespace evenflow::testing;
namespace net = evenflow::net;

namespace {

net::ip_addr ip(const char* text) {
    return *net::ip_addr::parse(text);
}

// The first `quoted` bytes of a TCP packet, as an ICMP error quotes it.
bytes quote(std::string_view src, std::string_view dst, uint16_t sport, uint16_t dport,
            size_t quoted, bool v6 = false) {
    packet_builder b;
    b.eth("02:00:00:00:00:01", "02:00:00:00:00:02");
    if (v6) {
        b.ipv6(src, dst);
    } else {
        b.ipv4(src, dst);
    }
    bytes f = b.tcp(sport, dport, tcp_flags::ack, 1000, 2000).payload_size(1400).build();
    return bytes(f.begin() + 14, f.begin() + 14 + long(quoted));
}

bytes icmp_error(std::string_view src, std::string_view dst, const bytes& q, bool v6 = false) {
    packet_builder b;
    b.eth("02:00:00:00:10:01", "02:00:00:00:00:aa");
    if (v6) {
        b.ipv6(src, dst).icmp(2, 0, 0, 1280); // packet too big, MTU 1280
    } else {
        b.ipv4(src, dst).icmp(3, 4, 0, 1400); // fragmentation needed, MTU 1400
    }
    return b.payload(q).build();
}

} // namespace

TEST_CASE("icmp: a client-side error about a VIP flow is translated for its backend") {
    for (size_t quoted : {28u, 40u, 60u}) { // 8 bytes of TCP, the whole header, some data
        INFO("quoted " << quoted);
        bytes f = icmp_error("192.0.2.1", "10.10.0.100",
                             quote("10.10.0.100", "198.51.100.7", 80, 40000, quoted));
        net::packet_meta meta;
        REQUIRE(net::parse_frame(f, meta) == net::drop_reason::none);
        net::icmp_quote q;
        REQUIRE(net::read_icmp_error(f, meta, q));
        CHECK(q.key.src == ip("10.10.0.100"));
        CHECK(q.key.dst == ip("198.51.100.7"));
        CHECK(ntohs(q.key.src_port) == 80);
        CHECK(ntohs(q.key.dst_port) == 40000);
        net::rewrite_icmp_error(f, meta, q, net::icmp_side::source, ip("10.20.0.11"), htons(8080),
                                net::icmp_side::destination, ip("10.20.0.11"));
        bytes expected = icmp_error("192.0.2.1", "10.20.0.11",
                                    quote("10.20.0.11", "198.51.100.7", 8080, 40000, quoted));
        // A quote of 8 TCP bytes has no TCP checksum to update; longer ones do.
        CHECK(f == expected);
        CHECK(verify_checksums(f) == "");
        CHECK(meta.key.dst == ip("10.20.0.11"));
    }
}

TEST_CASE("icmp: a backend-side error about a flow reaches its client from the VIP") {
    bytes f = icmp_error("10.20.0.254", "198.51.100.7",
                         quote("198.51.100.7", "10.20.0.11", 40000, 8080, 48));
    net::packet_meta meta;
    REQUIRE(net::parse_frame(f, meta) == net::drop_reason::none);
    net::icmp_quote q;
    REQUIRE(net::read_icmp_error(f, meta, q));
    net::rewrite_icmp_error(f, meta, q, net::icmp_side::destination, ip("10.10.0.100"), htons(80),
                            net::icmp_side::source, ip("10.10.0.100"));
    CHECK(f == icmp_error("10.10.0.100", "198.51.100.7",
                          quote("198.51.100.7", "10.10.0.100", 40000, 80, 48)));
    CHECK(verify_checksums(f) == "");
}

TEST_CASE("icmp: IPv6 packet-too-big is translated, ICMPv6 checksum over the new addresses") {
    bytes f = icmp_error("2001:db8::1", "2001:db8:10::100",
                         quote("2001:db8:10::100", "2001:db8:c::7", 80, 40000, 60, true), true);
    net::packet_meta meta;
    REQUIRE(net::parse_frame(f, meta) == net::drop_reason::none);
    net::icmp_quote q;
    REQUIRE(net::read_icmp_error(f, meta, q));
    net::rewrite_icmp_error(f, meta, q, net::icmp_side::source, ip("2001:db8:20::11"), htons(8080),
                            net::icmp_side::destination, ip("2001:db8:20::11"));
    CHECK(f == icmp_error("2001:db8::1", "2001:db8:20::11",
                          quote("2001:db8:20::11", "2001:db8:c::7", 8080, 40000, 60, true), true));
    CHECK(verify_checksums(f) == "");
}

TEST_CASE("icmp: what is not an error about TCP is left alone") {
    net::icmp_quote q;
    net::packet_meta meta;
    // An echo request is not an error.
    bytes echo = packet_builder()
                     .eth("02:00:00:00:10:01", "02:00:00:00:00:aa")
                     .ipv4("192.0.2.1", "10.10.0.100")
                     .icmp(8)
                     .payload("ping")
                     .build();
    REQUIRE(net::parse_frame(echo, meta) == net::drop_reason::none);
    CHECK_FALSE(net::read_icmp_error(echo, meta, q));
    // Quoting UDP, or a quote shorter than the ports.
    bytes udp = quote("10.10.0.100", "198.51.100.7", 80, 40000, 28);
    udp[9] = 17;
    bytes e = icmp_error("192.0.2.1", "10.10.0.100", udp);
    REQUIRE(net::parse_frame(e, meta) == net::drop_reason::none);
    CHECK_FALSE(net::read_icmp_error(e, meta, q));
    for (size_t quoted = 0; quoted < 24; ++quoted) {
        bytes s = icmp_error("192.0.2.1", "10.10.0.100",
                             quote("10.10.0.100", "198.51.100.7", 80, 40000, quoted));
        REQUIRE(net::parse_frame(s, meta) == net::drop_reason::none);
        CHECK_FALSE(net::read_icmp_error(s, meta, q));
    }
    // A later fragment quoted: no ports to read.
    bytes frag = quote("10.10.0.100", "198.51.100.7", 80, 40000, 28);
    frag[6] = 0x00;
    frag[7] = 0x10;
    e = icmp_error("192.0.2.1", "10.10.0.100", frag);
    REQUIRE(net::parse_frame(e, meta) == net::drop_reason::none);
    CHECK_FALSE(net::read_icmp_error(e, meta, q));
}

TEST_CASE("arp: a request for our address becomes our reply in place") {
    mac ours = {0x02, 0, 0, 0, 0, 0xaa};
    mac theirs = {0x02, 0, 0, 0, 0x10, 0x01};
    for (bool tagged : {false, true}) {
        packet_builder b;
        b.eth(theirs, mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
        if (tagged) {
            b.vlan(42);
        }
        bytes f = b.arp(1, theirs, "10.10.0.1", mac{}, "10.10.0.100").pad_to(60).build();
        net::packet_meta meta;
        REQUIRE(net::parse_frame(f, meta) == net::drop_reason::none);
        REQUIRE(net::make_arp_reply(f, meta, ours));
        packet_builder r;
        r.eth(ours, theirs);
        if (tagged) {
            r.vlan(42);
        }
        CHECK(f == r.arp(2, ours, "10.10.0.100", theirs, "10.10.0.1").pad_to(60).build());
        // A reply is not answered.
        REQUIRE(net::parse_frame(f, meta) == net::drop_reason::none);
        CHECK_FALSE(net::make_arp_reply(f, meta, ours));
    }
}
