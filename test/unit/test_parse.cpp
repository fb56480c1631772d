// parse_frame: every layer, every drop reason, truncation at every length, and random
// mutations. Frames come from the independent packet_builder fixture. Every parse of
// a truncated or mutated frame runs on an exactly-sized heap copy, so the ASan build
// turns any read past the end into a failure.
// Longer than most files on purpose: it is the one catalogue of the parser's drop
// reasons, one case per reason, read top to bottom next to lib/net/parse.hpp.
#include "net/parse.hpp"

#include "support/packet_builder.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>

using namespace evenflow::testing;
using evenflow::net::drop_reason;
using evenflow::net::ip_addr;
using evenflow::net::l3_type;
using evenflow::net::packet_meta;
using evenflow::net::parse_frame;

namespace evenflow::net {
// Lets Catch print reasons by name in failed comparisons.
inline std::ostream& operator<<(std::ostream& os, drop_reason r) {
    return os << to_string(r);
}
} // namespace evenflow::net

namespace {

const mac client_mac = {0x02, 0, 0, 0, 0, 0x01};
const mac balancer_mac = {0x02, 0, 0, 0, 0, 0x02};

ip_addr addr(const char* text) {
    return *ip_addr::parse(text);
}

// Parses the first `n` bytes of `f` from a heap buffer of exactly `n` bytes.
drop_reason parse_exact(const bytes& f, size_t n, packet_meta& meta) {
    auto buf = std::make_unique<uint8_t[]>(n);
    std::memcpy(buf.get(), f.data(), n);
    return parse_frame(std::span<const uint8_t>(buf.get(), n), meta);
}
drop_reason parse_exact(const bytes& f, packet_meta& meta) {
    return parse_exact(f, f.size(), meta);
}

// Where the parsed offsets must lie for a frame of `n` bytes that parsed cleanly.
void check_offsets_within(const packet_meta& m, size_t n) {
    const size_t end = size_t(m.l3_offset) + m.l3_length;
    CHECK(end <= n);
    if (m.l3 == l3_type::ipv4 || m.l3 == l3_type::ipv6) {
        CHECK(m.l4_offset >= m.l3_offset + 20);
        if (m.l4_proto == evenflow::net::ipproto_tcp) {
            CHECK(size_t(m.l4_offset) + 20 <= m.payload_offset);
            CHECK(m.payload_offset <= end);
        } else {
            CHECK(size_t(m.l4_offset) + 8 <= end);
        }
    }
}

// A client's SYN to a VIP; tests add layers and options to it.
packet_builder tcp4() {
    packet_builder b;
    b.eth(client_mac, balancer_mac).ipv4("10.0.0.1", "10.10.0.100").tcp(40000, 80);
    return b;
}
packet_builder tcp6() {
    packet_builder b;
    b.eth(client_mac, balancer_mac).ipv6("2001:db8::1", "2001:db8:10::100").tcp(40000, 443);
    return b;
}

} // namespace

TEST_CASE("Every drop reason has a distinct name", "[parse]") {
    std::set<std::string_view> names;
    for (size_t i = 0; i < size_t(drop_reason::count_); ++i) {
        auto name = to_string(drop_reason(i));
        INFO("reason " << i);
        CHECK(name != "unknown");
        CHECK(names.insert(name).second);
    }
    CHECK(to_string(drop_reason::none) == "none");
    CHECK(to_string(drop_reason::ip_fragment) == "ip_fragment");
    CHECK(to_string(drop_reason::count_) == "unknown");
    CHECK(to_string(drop_reason(200)) == "unknown");
}

TEST_CASE("Ethernet + IPv4 + TCP", "[parse]") {
    bytes f = tcp4().ttl(57).payload("hello").build();
    REQUIRE(verify_checksums(f) == "");
    packet_meta m;
    REQUIRE(parse_exact(f, m) == drop_reason::none);
    CHECK(m.l3 == l3_type::ipv4);
    CHECK(m.ethertype == 0x0800);
    CHECK_FALSE(m.has_vlan);
    CHECK(m.vlan_tci == 0);
    CHECK_FALSE(m.has_ip_options);
    CHECK(m.l3_offset == 14);
    CHECK(m.l4_offset == 34);
    CHECK(m.payload_offset == 54);
    CHECK(m.l3_length == 45);
    CHECK(m.ttl == 57);
    CHECK(m.l4_proto == evenflow::net::ipproto_tcp);
    CHECK(m.tcp_flags == tcp_flags::syn);
    CHECK(m.key.src == addr("10.0.0.1"));
    CHECK(m.key.dst == addr("10.10.0.100"));
    CHECK(m.key.src_port == htons(40000));
    CHECK(m.key.dst_port == htons(80));
    CHECK(m.key.proto == 6);
    CHECK(m.icmp_type == 0);
    check_offsets_within(m, f.size());
}

TEST_CASE("One 802.1Q tag is parsed; a second one is not supported", "[parse]") {
    packet_meta m;
    bytes f = tcp4().vlan(100, 5).build();
    REQUIRE(parse_exact(f, m) == drop_reason::none);
    CHECK(m.has_vlan);
    CHECK(m.vlan_tci == (5 << 13 | 100));
    CHECK(m.ethertype == 0x0800);
    CHECK(m.l3_offset == 18);
    CHECK(m.l4_offset == 38);
    CHECK(m.payload_offset == 58);

    bytes v6 = tcp6().vlan(4095).build();
    REQUIRE(parse_exact(v6, m) == drop_reason::none);
    CHECK(m.has_vlan);
    CHECK(m.vlan_tci == 4095);
    CHECK(m.ethertype == 0x86dd);
    CHECK(m.l3_offset == 18);
    CHECK(m.l4_offset == 58);

    // QinQ: the inner tag is not an ethertype we handle; the outer one was read.
    bytes qinq = tcp4().vlan(10).vlan(20).build();
    CHECK(parse_exact(qinq, m) == drop_reason::unsupported_ethertype);
    CHECK(m.has_vlan);
    CHECK(m.ethertype == 0x8100);
    // 802.1ad outer tag: not recognised as a VLAN at all.
    bytes ad = tcp4().vlan(10, 0, ethertypes::qinq).vlan(20).build();
    CHECK(parse_exact(ad, m) == drop_reason::unsupported_ethertype);
    CHECK_FALSE(m.has_vlan);
    CHECK(m.ethertype == ethertypes::qinq);
}

TEST_CASE("Ethernet padding after the IP packet is allowed and ignored", "[parse]") {
    packet_meta m;
    bytes f = tcp4().pad_to(60).build();
    REQUIRE(f.size() == 60);
    REQUIRE(parse_exact(f, m) == drop_reason::none);
    CHECK(m.l3_length == 40);
    CHECK(m.payload_offset == 54); // no payload: the padding is not TCP data

    bytes icmp = packet_builder().ipv4("10.0.0.1", "10.0.0.2").icmp(8).pad_to(60).build();
    REQUIRE(parse_exact(icmp, m) == drop_reason::none);
    CHECK(m.l3_length == 28);

    bytes v6 = tcp6().pad_to(200).build();
    REQUIRE(parse_exact(v6, m) == drop_reason::none);
    CHECK(m.l3_length == 60);
    CHECK(m.payload_offset == 14 + 60);
}

TEST_CASE("IPv4 options are skipped", "[parse]") {
    for (size_t words = 1; words <= 10; ++words) {
        INFO("option words: " << words);
        bytes options(words * 4, 1); // NOPs
        bytes f = tcp4().vlan(7).ipv4_options(options).payload_size(33).build();
        REQUIRE(verify_checksums(f) == "");
        packet_meta m;
        REQUIRE(parse_exact(f, m) == drop_reason::none);
        CHECK(m.has_ip_options);
        CHECK(m.l4_offset == 18 + 20 + words * 4);
        CHECK(m.payload_offset == m.l4_offset + 20);
        CHECK(m.l3_length == 20 + words * 4 + 20 + 33);
        CHECK(m.key.dst_port == htons(80));
        check_offsets_within(m, f.size());
    }
    // A record-route option, as a sender would write it.
    bytes rr = {7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0};
    packet_meta m;
    REQUIRE(parse_exact(tcp4().ipv4_options(rr).build(), m) == drop_reason::none);
    CHECK(m.l4_offset == 14 + 32);
}

TEST_CASE("IPv4 fragments are reported, not parsed further", "[parse]") {
    packet_meta m;
    SECTION("first fragment: MF set, offset 0") {
        bytes f = tcp4().fragment(0, true).payload_size(100).build();
        CHECK(parse_exact(f, m) == drop_reason::ip_fragment);
    }
    SECTION("middle fragment") {
        bytes f = tcp4().fragment(185, true).payload_size(100).build();
        CHECK(parse_exact(f, m) == drop_reason::ip_fragment);
    }
    SECTION("last fragment: MF clear, offset set") {
        bytes f = tcp4().fragment(1, false).build();
        CHECK(parse_exact(f, m) == drop_reason::ip_fragment);
    }
    SECTION("the largest offset") {
        bytes f = tcp4().fragment(0x1fff, false).build();
        CHECK(parse_exact(f, m) == drop_reason::ip_fragment);
    }
    SECTION("ICMP fragments too") {
        bytes f = packet_builder().ipv4("10.0.0.1", "10.0.0.2").fragment(3, true).icmp(8).build();
        CHECK(parse_exact(f, m) == drop_reason::ip_fragment);
    }
    // The IP layer is still filled in, for whoever counts fragments by source.
    CHECK(m.l3 == l3_type::ipv4);
    CHECK(m.key.src.is_v4());
    CHECK(m.l4_offset == 0);
    CHECK(m.l4_proto == 0);
}

TEST_CASE("IPv4 DF and the reserved flag do not make a fragment", "[parse]") {
    packet_meta m;
    CHECK(parse_exact(tcp4().dont_fragment().build(), m) == drop_reason::none);
    bytes evil = tcp4().build();
    put16(evil, 14 + 6, 0x8000); // RFC 3514's bit: not a fragment either
    CHECK(parse_exact(evil, m) == drop_reason::none);
}

TEST_CASE("Ethernet + IPv6 + TCP", "[parse]") {
    bytes f = tcp6().ttl(3).payload_size(100).build();
    REQUIRE(verify_checksums(f) == "");
    packet_meta m;
    REQUIRE(parse_exact(f, m) == drop_reason::none);
    CHECK(m.l3 == l3_type::ipv6);
    CHECK(m.ethertype == 0x86dd);
    CHECK_FALSE(m.has_ip_options);
    CHECK(m.l3_offset == 14);
    CHECK(m.l4_offset == 54);
    CHECK(m.payload_offset == 74);
    CHECK(m.l3_length == 40 + 20 + 100);
    CHECK(m.ttl == 3);
    CHECK(m.key.src == addr("2001:db8::1"));
    CHECK(m.key.dst == addr("2001:db8:10::100"));
    CHECK(m.key.src_port == htons(40000));
    CHECK(m.key.dst_port == htons(443));
    CHECK(m.key.proto == 6);
    CHECK(m.tcp_flags == tcp_flags::syn);
}

TEST_CASE("IPv6 extension headers are walked", "[parse]") {
    struct chain_case {
        const char* name;
        std::vector<std::pair<uint8_t, size_t>> ext;
    };
    const std::vector<chain_case> cases = {
        {"hop-by-hop", {{ipprotos::hop_by_hop, 8}}},
        {"routing", {{ipprotos::routing, 24}}},
        {"destination options", {{ipprotos::dest_opts, 16}}},
        {"AH", {{ipprotos::ah, 24}}},
        {"all four",
         {{ipprotos::hop_by_hop, 8},
          {ipprotos::dest_opts, 8},
          {ipprotos::routing, 40},
          {ipprotos::ah, 16},
          {ipprotos::dest_opts, 8}}},
        {"eight, the most we walk",
         {{0, 8}, {60, 8}, {43, 8}, {60, 16}, {51, 16}, {60, 8}, {60, 8}, {60, 8}}},
        {"a long one", {{ipprotos::dest_opts, 2048}}},
    };
    for (const auto& c : cases) {
        for (bool icmp : {false, true}) {
            INFO(c.name << (icmp ? " + ICMPv6" : " + TCP"));
            packet_builder b;
            b.ipv6("2001:db8::1", "2001:db8::2").vlan(9);
            size_t ext_length = 0;
            for (auto [type, length] : c.ext) {
                b.ipv6_ext(type, length);
                ext_length += length;
            }
            if (icmp) {
                b.icmp(128, 0, 7, 8);
            } else {
                b.tcp(1, 2, tcp_flags::ack).payload("xyz");
            }
            bytes f = b.build();
            REQUIRE(verify_checksums(f) == "");
            packet_meta m;
            REQUIRE(parse_exact(f, m) == drop_reason::none);
            CHECK(m.has_ip_options);
            CHECK(m.l4_offset == 18 + 40 + ext_length);
            CHECK(m.l4_proto == (icmp ? 58 : 6));
            if (icmp) {
                CHECK(m.icmp_type == 128);
            } else {
                CHECK(m.payload_offset == m.l4_offset + 20);
                CHECK(m.key.dst_port == htons(2));
            }
            check_offsets_within(m, f.size());
        }
    }
}

TEST_CASE("More than eight IPv6 extension headers are refused", "[parse]") {
    packet_builder b = tcp6();
    for (int i = 0; i < 9; ++i) {
        b.ipv6_ext(ipprotos::dest_opts);
    }
    packet_meta m;
    CHECK(parse_exact(b.build(), m) == drop_reason::too_many_ipv6_ext);
    CHECK(m.has_ip_options);
    // A Fragment header as the ninth is still "too many": we stop looking at eight.
    packet_builder c = tcp6();
    for (int i = 0; i < 8; ++i) {
        c.ipv6_ext(ipprotos::hop_by_hop);
    }
    c.fragment(0, true);
    CHECK(parse_exact(c.build(), m) == drop_reason::too_many_ipv6_ext);
}

TEST_CASE("IPv6 Fragment header is reported as a fragment", "[parse]") {
    packet_meta m;
    SECTION("directly after the IPv6 header") {
        CHECK(parse_exact(tcp6().fragment(0, true).payload_size(64).build(), m) ==
              drop_reason::ip_fragment);
    }
    SECTION("after Hop-by-Hop and Destination Options") {
        bytes f = tcp6()
                      .ipv6_ext(ipprotos::hop_by_hop)
                      .ipv6_ext(ipprotos::dest_opts, 16)
                      .fragment(100, false)
                      .build();
        CHECK(parse_exact(f, m) == drop_reason::ip_fragment);
    }
    SECTION("an atomic fragment (offset 0, no MF)") {
        CHECK(parse_exact(tcp6().fragment(0, false).build(), m) == drop_reason::ip_fragment);
    }
    CHECK(m.l3 == l3_type::ipv6);
    CHECK(m.has_ip_options);
    CHECK(m.key.dst == addr("2001:db8:10::100"));
    CHECK(m.l4_offset == 0);
}

TEST_CASE("TCP flags and data offset", "[parse]") {
    packet_meta m;
    for (unsigned flags = 0; flags < 256; ++flags) {
        REQUIRE(parse_exact(tcp4().tcp(1, 2, uint8_t(flags)).build(), m) == drop_reason::none);
        REQUIRE(m.tcp_flags == flags);
    }
    for (size_t option_words = 0; option_words <= 10; ++option_words) {
        INFO("option words: " << option_words);
        bytes options(option_words * 4, 1);
        for (bool v6 : {false, true}) {
            bytes f = (v6 ? tcp6() : tcp4()).tcp_options(options).payload("abc").build();
            REQUIRE(parse_exact(f, m) == drop_reason::none);
            CHECK(m.payload_offset == m.l4_offset + 20 + option_words * 4);
            CHECK(m.payload_offset + 3 == m.l3_offset + m.l3_length);
        }
    }
    // MSS, SACK-permitted, timestamps, window scale: a real SYN's options.
    bytes syn_options = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};
    REQUIRE(parse_exact(tcp4().tcp_options(syn_options).build(), m) == drop_reason::none);
    CHECK(m.payload_offset == 14 + 20 + 40);
}

TEST_CASE("Bad TCP data offset", "[parse]") {
    packet_meta m;
    for (bool v6 : {false, true}) {
        INFO((v6 ? "IPv6" : "IPv4"));
        bytes f = (v6 ? tcp6() : tcp4()).payload_size(8).build();
        const size_t doff_at = (v6 ? 54u : 34u) + 12;
        for (unsigned doff = 0; doff < 16; ++doff) {
            INFO("data offset " << doff);
            put8(f, doff_at, uint8_t(doff << 4));
            // 20 bytes of header and 8 of payload: offsets 5, 6 and 7 fit.
            auto expected =
                doff >= 5 && doff <= 7 ? drop_reason::none : drop_reason::bad_tcp_data_offset;
            CHECK(parse_exact(f, m) == expected);
        }
        // The segment ends at the IP length, not at the end of the frame: padding
        // after the packet never counts as TCP options.
        bytes padded = (v6 ? tcp6() : tcp4()).pad_to(120).build();
        put8(padded, doff_at, 6 << 4);
        CHECK(parse_exact(padded, m) == drop_reason::bad_tcp_data_offset);
    }
}

TEST_CASE("ICMP and ICMPv6", "[parse]") {
    packet_meta m;
    bytes echo = packet_builder()
                     .vlan(3)
                     .ipv4("192.0.2.1", "10.10.0.100")
                     .icmp(8, 0, 0x1234, 1)
                     .payload_size(56)
                     .build();
    REQUIRE(verify_checksums(echo) == "");
    REQUIRE(parse_exact(echo, m) == drop_reason::none);
    CHECK(m.l3 == l3_type::ipv4);
    CHECK(m.l4_proto == evenflow::net::ipproto_icmp);
    CHECK(m.key.proto == 1);
    CHECK(m.icmp_type == 8);
    CHECK(m.icmp_code == 0);
    CHECK(m.key.src == addr("192.0.2.1"));
    CHECK(m.key.dst == addr("10.10.0.100"));
    CHECK(m.key.src_port == 0);
    CHECK(m.key.dst_port == 0);
    CHECK(m.tcp_flags == 0);
    CHECK(m.l4_offset == 38);

    bytes unreachable = packet_builder().ipv4("10.0.0.1", "10.0.0.2").icmp(3, 4).build();
    REQUIRE(parse_exact(unreachable, m) == drop_reason::none);
    CHECK(m.icmp_type == 3);
    CHECK(m.icmp_code == 4);

    bytes echo6 = packet_builder().ipv6("2001:db8::1", "2001:db8::2").icmp(128).build();
    REQUIRE(verify_checksums(echo6) == "");
    REQUIRE(parse_exact(echo6, m) == drop_reason::none);
    CHECK(m.l3 == l3_type::ipv6);
    CHECK(m.l4_proto == evenflow::net::ipproto_icmpv6);
    CHECK(m.key.proto == 58);
    CHECK(m.icmp_type == 128);
    CHECK(m.key.src == addr("2001:db8::1"));
    CHECK(m.key.src_port == 0);

    bytes ns = packet_builder().ipv6("fe80::1", "ff02::1:ff00:2").ttl(255).icmp(135).build();
    REQUIRE(parse_exact(ns, m) == drop_reason::none);
    CHECK(m.icmp_type == 135);
    CHECK(m.ttl == 255);

    // Each ICMP belongs to its own IP version.
    bytes v6_in_v4 = packet_builder().ipv4("10.0.0.1", "10.0.0.2").raw_l4(58, bytes(8)).build();
    CHECK(parse_exact(v6_in_v4, m) == drop_reason::unsupported_l4);
    CHECK(m.l4_proto == 58);
    bytes v4_in_v6 = packet_builder().ipv6("::1", "::2").raw_l4(1, bytes(8)).build();
    CHECK(parse_exact(v4_in_v6, m) == drop_reason::unsupported_l4);
}

TEST_CASE("ICMP shorter than its header", "[parse]") {
    packet_meta m;
    for (bool v6 : {false, true}) {
        bytes f = v6 ? packet_builder().ipv6("::1", "::2").icmp(128).build()
                     : packet_builder().ipv4("10.0.0.1", "10.0.0.2").icmp(8).build();
        const size_t l3 = 14, header = v6 ? 40 : 20;
        for (size_t icmp_bytes = 0; icmp_bytes <= 8; ++icmp_bytes) {
            INFO((v6 ? "IPv6 " : "IPv4 ") << icmp_bytes);
            bytes g = f;
            put16(g, l3 + (v6 ? 4 : 2), uint16_t(v6 ? icmp_bytes : header + icmp_bytes));
            CHECK(parse_exact(g, m) ==
                  (icmp_bytes < 8 ? drop_reason::truncated_icmp : drop_reason::none));
        }
    }
}

TEST_CASE("ARP for Ethernet/IPv4", "[parse]") {
    packet_meta m;
    const mac target{};
    bytes request = packet_builder()
                        .eth(client_mac, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
                        .arp(1, client_mac, "10.10.0.1", target, "10.10.0.2")
                        .build();
    REQUIRE(request.size() == 42);
    REQUIRE(parse_exact(request, m) == drop_reason::none);
    CHECK(m.l3 == l3_type::arp);
    CHECK(m.ethertype == 0x0806);
    CHECK(m.l3_offset == 14);
    CHECK(m.l3_length == 28);
    CHECK(m.key.src == addr("10.10.0.1"));
    CHECK(m.key.dst == addr("10.10.0.2"));
    CHECK(m.key.proto == 0);
    CHECK(m.l4_proto == 0);

    bytes reply = packet_builder()
                      .vlan(5)
                      .arp(2, balancer_mac, "10.10.0.2", client_mac, "10.10.0.1")
                      .pad_to(64)
                      .build();
    REQUIRE(parse_exact(reply, m) == drop_reason::none);
    CHECK(m.has_vlan);
    CHECK(m.l3_offset == 18);
    CHECK(m.key.src == addr("10.10.0.2"));

    // Other hardware or protocol types, or other address lengths.
    const std::vector<std::pair<size_t, uint16_t>> patches16 = {{0, 6}, {0, 0}, {2, 0x86dd}};
    for (auto [at, value] : patches16) {
        bytes g = request;
        put16(g, 14 + at, value);
        CHECK(parse_exact(g, m) == drop_reason::unsupported_arp);
    }
    const std::vector<std::pair<size_t, uint8_t>> patches8 = {{4, 8}, {4, 0}, {5, 16}, {5, 6}};
    for (auto [at, value] : patches8) {
        bytes g = request;
        put8(g, 14 + at, value);
        CHECK(parse_exact(g, m) == drop_reason::unsupported_arp);
    }
    // An unsupported ARP shorter than 28 bytes is unsupported, not truncated.
    bytes infiniband = request;
    put16(infiniband, 14, 32);
    CHECK(parse_exact(infiniband, 14 + 8, m) == drop_reason::unsupported_arp);
    CHECK(parse_exact(infiniband, 14 + 7, m) == drop_reason::truncated_arp);
}

TEST_CASE("Unsupported ethertypes and transport protocols", "[parse]") {
    packet_meta m;
    for (uint16_t type : {0x88cc, 0x8847, 0x8035, 0x0000, 0x05dc, 0xffff}) {
        INFO("ethertype " << type);
        bytes f = packet_builder().raw_l3(type, bytes(46, 0x45)).build();
        CHECK(parse_exact(f, m) == drop_reason::unsupported_ethertype);
        CHECK(m.ethertype == type);
        CHECK(m.l3 == l3_type::none);
        CHECK(parse_exact(packet_builder().vlan(1).raw_l3(type, bytes(46)).build(), m) ==
              drop_reason::unsupported_ethertype);
    }
    for (uint8_t proto : {ipprotos::udp, ipprotos::esp, ipprotos::no_next, uint8_t(132), uint8_t(4),
                          uint8_t(41), uint8_t(255)}) {
        INFO("protocol " << int(proto));
        bytes v4 = packet_builder().ipv4("10.0.0.1", "10.0.0.2").raw_l4(proto, bytes(8)).build();
        CHECK(parse_exact(v4, m) == drop_reason::unsupported_l4);
        CHECK(m.l4_proto == proto);
        CHECK(m.l4_offset == 34);
        bytes v6 = packet_builder()
                       .ipv6("::1", "::2")
                       .ipv6_ext(ipprotos::dest_opts)
                       .raw_l4(proto, bytes(8))
                       .build();
        CHECK(parse_exact(v6, m) == drop_reason::unsupported_l4);
        CHECK(m.l4_offset == 14 + 48);
    }
}

TEST_CASE("Malformed IPv4 headers", "[parse]") {
    packet_meta m;
    const bytes good = tcp4().payload_size(12).build(); // 20 + 20 + 12 = 52 bytes of IP
    const size_t l3 = 14;
    SECTION("version") {
        for (uint8_t version : {0, 1, 5, 6, 15}) {
            bytes f = good;
            put8(f, l3, uint8_t(version << 4 | 5));
            CHECK(parse_exact(f, m) == drop_reason::bad_ipv4_version);
        }
        // An IPv6 header behind the IPv4 ethertype is a bad IPv4 version too.
        bytes v6 = tcp6().build();
        put16(v6, 12, ethertypes::ipv4);
        CHECK(parse_exact(v6, m) == drop_reason::bad_ipv4_version);
    }
    SECTION("IHL below 5") {
        for (uint8_t ihl = 0; ihl < 5; ++ihl) {
            bytes f = good;
            put8(f, l3, uint8_t(0x40 | ihl));
            CHECK(parse_exact(f, m) == drop_reason::bad_ipv4_ihl);
        }
    }
    SECTION("IHL past the frame") {
        // 52 bytes of IP: an IHL of 13 (52 bytes) still fits, 14 does not.
        for (uint8_t ihl = 6; ihl < 16; ++ihl) {
            bytes f = good;
            put8(f, l3, uint8_t(0x40 | ihl));
            put16(f, l3 + 2, 52);
            auto r = parse_exact(f, m);
            INFO("IHL " << int(ihl) << " gave " << r);
            CHECK((r == drop_reason::bad_ipv4_ihl) == (ihl > 13));
        }
    }
    SECTION("total length smaller than the header") {
        for (uint16_t total : {0, 1, 19}) {
            bytes f = good;
            put16(f, l3 + 2, total);
            CHECK(parse_exact(f, m) == drop_reason::bad_ipv4_total_length);
        }
        bytes with_options = tcp4().ipv4_options(bytes(8, 1)).build();
        put16(with_options, l3 + 2, 27);
        CHECK(parse_exact(with_options, m) == drop_reason::bad_ipv4_total_length);
    }
    SECTION("total length longer than the frame") {
        for (uint16_t total : {53, 60, 1500, 65535}) {
            bytes f = good;
            put16(f, l3 + 2, total);
            CHECK(parse_exact(f, m) == drop_reason::bad_ipv4_total_length);
        }
    }
    SECTION("total length shorter than the frame: the rest is padding") {
        bytes f = good;
        put16(f, l3 + 2, 40);
        REQUIRE(parse_exact(f, m) == drop_reason::none);
        CHECK(m.l3_length == 40);
        CHECK(m.payload_offset == l3 + 40);
    }
}

TEST_CASE("IPv4 total length cut anywhere inside the packet", "[parse]") {
    // IHL 7, TCP with 8 bytes of options, 5 bytes of payload.
    const bytes good =
        tcp4().ipv4_options(bytes(8, 1)).tcp_options(bytes(8, 1)).payload("hello").build();
    const size_t l3 = 14, ihl = 28, tcp_header = 28, total = ihl + tcp_header + 5;
    packet_meta m;
    for (size_t t = 0; t <= total; ++t) {
        bytes f = good;
        put16(f, l3 + 2, uint16_t(t));
        drop_reason expected = t < ihl                ? drop_reason::bad_ipv4_total_length
                               : t < ihl + 20         ? drop_reason::truncated_tcp
                               : t < ihl + tcp_header ? drop_reason::bad_tcp_data_offset
                                                      : drop_reason::none;
        INFO("total length " << t);
        CHECK(parse_exact(f, m) == expected);
        if (expected == drop_reason::none) {
            CHECK(m.payload_offset == l3 + ihl + tcp_header);
            CHECK(m.l3_length == t);
        }
    }
}

TEST_CASE("Malformed IPv6 headers", "[parse]") {
    packet_meta m;
    const bytes good =
        tcp6().ipv6_ext(ipprotos::hop_by_hop).ipv6_ext(ipprotos::routing, 24).payload("hi").build();
    const size_t l3 = 14;
    SECTION("version") {
        for (uint8_t version : {0, 4, 7, 15}) {
            bytes f = good;
            put8(f, l3, uint8_t(version << 4));
            CHECK(parse_exact(f, m) == drop_reason::bad_ipv6_version);
        }
        bytes v4 = tcp4().payload_size(40).build();
        put16(v4, 12, ethertypes::ipv6);
        CHECK(parse_exact(v4, m) == drop_reason::bad_ipv6_version);
    }
    SECTION("payload length longer than the frame") {
        for (uint16_t payload : {8 + 24 + 20 + 3, 1000, 65535}) {
            bytes f = good;
            put16(f, l3 + 4, payload);
            CHECK(parse_exact(f, m) == drop_reason::bad_ipv6_payload_length);
        }
    }
    SECTION("payload length cut anywhere") {
        const size_t ext = 8 + 24, full = ext + 20 + 2;
        for (size_t p = 0; p <= full; ++p) {
            bytes f = good;
            put16(f, l3 + 4, uint16_t(p));
            drop_reason expected = p < ext        ? drop_reason::truncated_ipv6_ext
                                   : p < ext + 20 ? drop_reason::truncated_tcp
                                                  : drop_reason::none;
            INFO("payload length " << p);
            CHECK(parse_exact(f, m) == expected);
        }
    }
    SECTION("an extension header length that runs past the payload") {
        bytes f = good;
        put8(f, l3 + 40 + 1, 5); // Hop-by-Hop claims 48 bytes
        CHECK(parse_exact(f, m) == drop_reason::truncated_ipv6_ext);
        bytes ah = tcp6().ipv6_ext(ipprotos::ah, 16).build();
        put8(ah, l3 + 40 + 1, 14); // AH claims 64 bytes, more than the 36 there are
        CHECK(parse_exact(ah, m) == drop_reason::truncated_ipv6_ext);
        put8(ah, l3 + 40 + 1, 4); // 24 bytes: fits, but then TCP starts mid-header
        CHECK(parse_exact(ah, m) != drop_reason::truncated_ipv6_ext);
    }
    SECTION("a Fragment header cut short") {
        bytes f = tcp6().fragment(0, true).build();
        for (uint16_t p = 0; p < 8; ++p) {
            put16(f, l3 + 4, p);
            CHECK(parse_exact(f, m) == drop_reason::truncated_ipv6_ext);
        }
    }
}

TEST_CASE("Truncation at every length", "[parse]") {
    struct kind {
        const char* name;
        bytes frame;
        // The verdict for the first n bytes of the frame.
        std::function<drop_reason(size_t)> expected;
    };
    using dr = drop_reason;
    const bytes t4 = tcp4()
                         .vlan(100)
                         .ipv4_options(bytes(8, 1))
                         .tcp_options(bytes(12, 1))
                         .payload("payload")
                         .build();
    const bytes t6 = tcp6()
                         .ipv6_ext(ipprotos::hop_by_hop)
                         .ipv6_ext(ipprotos::routing, 16)
                         .ipv6_ext(ipprotos::dest_opts)
                         .payload_size(30)
                         .build();
    const bytes i4 = packet_builder().ipv4("10.0.0.1", "10.0.0.2").icmp(8).payload_size(16).build();
    const bytes i6 = packet_builder().vlan(1).ipv6("::1", "::2").icmp(128).payload_size(16).build();
    const bytes arp = packet_builder().arp(1, client_mac, "10.0.0.1", mac{}, "10.0.0.2").build();
    const bytes arp_padded = packet_builder()
                                 .vlan(2)
                                 .arp(2, client_mac, "10.0.0.1", balancer_mac, "10.0.0.2")
                                 .pad_to(64)
                                 .build();
    const bytes frag = tcp4().fragment(0, true).payload_size(10).build();

    const std::vector<kind> kinds = {
        {"TCP/IPv4 + VLAN + options", t4,
         [&](size_t n) {
             return n < 14          ? dr::truncated_ethernet
                    : n < 18        ? dr::truncated_vlan
                    : n < 38        ? dr::truncated_ipv4
                    : n < 46        ? dr::bad_ipv4_ihl
                    : n < t4.size() ? dr::bad_ipv4_total_length
                                    : dr::none;
         }},
        {"TCP/IPv6 + extension headers", t6,
         [&](size_t n) {
             return n < 14          ? dr::truncated_ethernet
                    : n < 54        ? dr::truncated_ipv6
                    : n < t6.size() ? dr::bad_ipv6_payload_length
                                    : dr::none;
         }},
        {"ICMP", i4,
         [&](size_t n) {
             return n < 14          ? dr::truncated_ethernet
                    : n < 34        ? dr::truncated_ipv4
                    : n < i4.size() ? dr::bad_ipv4_total_length
                                    : dr::none;
         }},
        {"ICMPv6 + VLAN", i6,
         [&](size_t n) {
             return n < 14          ? dr::truncated_ethernet
                    : n < 18        ? dr::truncated_vlan
                    : n < 58        ? dr::truncated_ipv6
                    : n < i6.size() ? dr::bad_ipv6_payload_length
                                    : dr::none;
         }},
        {"ARP", arp,
         [&](size_t n) {
             return n < 14 ? dr::truncated_ethernet : n < 42 ? dr::truncated_arp : dr::none;
         }},
        {"ARP + VLAN, padded", arp_padded,
         [&](size_t n) {
             return n < 14   ? dr::truncated_ethernet
                    : n < 18 ? dr::truncated_vlan
                    : n < 46 ? dr::truncated_arp
                             : dr::none; // the padding may go
         }},
        {"IPv4 fragment", frag,
         [&](size_t n) {
             return n < 14            ? dr::truncated_ethernet
                    : n < 34          ? dr::truncated_ipv4
                    : n < frag.size() ? dr::bad_ipv4_total_length
                                      : dr::ip_fragment;
         }},
    };
    for (const auto& k : kinds) {
        for (size_t n = 0; n <= k.frame.size(); ++n) {
            INFO(k.name << ", first " << n << " of " << k.frame.size() << " bytes");
            packet_meta m;
            const drop_reason got = parse_exact(k.frame, n, m);
            CHECK(got == k.expected(n));
            if (got == drop_reason::none) {
                check_offsets_within(m, n);
            }
        }
    }
}

TEST_CASE("parse_frame resets the metadata it is given", "[parse]") {
    packet_meta m;
    REQUIRE(parse_exact(tcp4().vlan(5).ipv4_options(bytes(4, 1)).build(), m) == drop_reason::none);
    REQUIRE(m.has_vlan);
    bytes arp = packet_builder().arp(1, client_mac, "10.0.0.1", mac{}, "10.0.0.2").build();
    REQUIRE(parse_exact(arp, m) == drop_reason::none);
    CHECK_FALSE(m.has_vlan);
    CHECK_FALSE(m.has_ip_options);
    CHECK(m.tcp_flags == 0);
    CHECK(m.key.src_port == 0);
    CHECK(m.l4_offset == 0);
    REQUIRE(parse_exact(arp, 3, m) == drop_reason::truncated_ethernet);
    CHECK(m.l3 == l3_type::none);
    CHECK(m.key.src.is_unspecified());
}

TEST_CASE("Frames longer than 64 KiB are looked at up to 64 KiB", "[parse]") {
    bytes big = tcp4().payload_size(1000).pad_to(70000).build();
    packet_meta m;
    REQUIRE(parse_exact(big, m) == drop_reason::none);
    CHECK(m.payload_offset == 54);
    // IPv6's payload length can describe 65575 bytes of packet; those never fit in
    // the first 65535 bytes of a frame, so the length check refuses them.
    bytes v6 = tcp6().payload_size(65535 - 20).pad_to(70000).build();
    CHECK(parse_exact(v6, m) == drop_reason::bad_ipv6_payload_length);
}

TEST_CASE("Random mutations of valid frames never crash", "[parse][fuzz]") {
    const std::vector<bytes> seeds = {
        tcp4().payload("GET / HTTP/1.1\r\n\r\n").build(),
        tcp4()
            .vlan(100)
            .ipv4_options(bytes(12, 1))
            .tcp_options(bytes(20, 1))
            .payload_size(40)
            .build(),
        tcp6().payload_size(24).build(),
        tcp6()
            .vlan(1)
            .ipv6_ext(ipprotos::hop_by_hop)
            .ipv6_ext(ipprotos::routing, 24)
            .ipv6_ext(ipprotos::ah, 16)
            .ipv6_ext(ipprotos::dest_opts)
            .tcp_options(bytes(4, 1))
            .payload_size(16)
            .build(),
        tcp6().ipv6_ext(ipprotos::dest_opts).fragment(0, true).payload_size(16).build(),
        packet_builder().ipv4("10.0.0.1", "10.0.0.2").icmp(8).payload_size(32).build(),
        packet_builder().ipv6("::1", "::2").ipv6_ext(0).icmp(128).payload_size(32).build(),
        packet_builder().arp(1, client_mac, "10.0.0.1", mac{}, "10.0.0.2").pad_to(60).build(),
    };
    const uint32_t seed = 0x5eed1234;
    std::mt19937 rng(seed);
    INFO("rng seed " << seed);
    std::map<drop_reason, size_t> outcomes;
    constexpr int iterations = 200000;
    for (int i = 0; i < iterations; ++i) {
        bytes f = seeds[rng() % seeds.size()];
        // Mostly mutate the headers, where the parser looks; sometimes anywhere.
        const unsigned flips = 1 + rng() % 4;
        for (unsigned j = 0; j < flips; ++j) {
            size_t window = rng() % 4 == 0 ? f.size() : std::min<size_t>(f.size(), 80);
            size_t at = rng() % window;
            switch (rng() % 3) {
            case 0:
                f[at] = uint8_t(rng());
                break;
            case 1:
                f[at] ^= uint8_t(1u << (rng() % 8));
                break;
            default:
                f[at] = rng() % 2 ? 0x00 : 0xff;
                break;
            }
        }
        size_t n = f.size();
        if (rng() % 4 == 0) {
            n = rng() % (f.size() + 1);
        }
        packet_meta m;
        const drop_reason r = parse_exact(f, n, m);
        ++outcomes[r];
        REQUIRE(size_t(r) < size_t(drop_reason::count_));
        if (r == drop_reason::none) {
            // REQUIRE-free checks would drown in 200k passes; fail fast instead.
            const size_t end = size_t(m.l3_offset) + m.l3_length;
            REQUIRE(end <= n);
            if (m.l4_proto == evenflow::net::ipproto_tcp) {
                REQUIRE(size_t(m.l4_offset) + 20 <= m.payload_offset);
                REQUIRE(m.payload_offset <= end);
            }
        }
    }
    // The mutations reached both verdicts and a spread of reasons.
    CHECK(outcomes[drop_reason::none] > 1000);
    CHECK(outcomes.size() >= 15);
    for (auto [reason, count] : outcomes) {
        UNSCOPED_INFO(to_string(reason) << ": " << count);
    }
    CHECK(outcomes[drop_reason::truncated_ethernet] > 0);
}
