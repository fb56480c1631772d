// ip_addr and ip_prefix: text parsing, the IPv4-mapped representation, prefix matching.
#include "net/addr.hpp"

#include <catch2/catch.hpp>

#include <string>

using evenflow::net::ip_addr;
using evenflow::net::ip_family;
using evenflow::net::ip_prefix;

namespace {

ip_addr addr(const char* text) {
    auto a = ip_addr::parse(text);
    REQUIRE(a.has_value());
    return *a;
}

} // namespace

TEST_CASE("IPv4 text parses into the IPv4-mapped form", "[addr]") {
    ip_addr a = addr("10.0.0.1");
    CHECK(a.is_v4());
    CHECK(a.family() == ip_family::v4);
    const std::array<uint8_t, 16> expected{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
    CHECK(a.bytes == expected);
    // v4_be() is the address as it sits in an IPv4 header.
    uint32_t be = a.v4_be();
    uint8_t wire[4];
    std::memcpy(wire, &be, 4);
    CHECK(wire[0] == 10);
    CHECK(wire[3] == 1);
    CHECK(ip_addr::from_v4_be(be) == a);
    CHECK(addr("0.0.0.0").is_v4());
    CHECK(addr("255.255.255.255").to_string() == "255.255.255.255");
}

TEST_CASE("IPv6 text parses, including compressed and mapped forms", "[addr]") {
    ip_addr a = addr("2001:db8::1");
    CHECK_FALSE(a.is_v4());
    CHECK(a.family() == ip_family::v6);
    CHECK(a.bytes[0] == 0x20);
    CHECK(a.bytes[1] == 0x01);
    CHECK(a.bytes[2] == 0x0d);
    CHECK(a.bytes[3] == 0xb8);
    CHECK(a.bytes[15] == 1);
    CHECK(ip_addr::from_v6(a.bytes.data()) == a);

    CHECK(addr("::").is_unspecified());
    CHECK_FALSE(addr("::1").is_unspecified());
    CHECK(addr("::1").bytes[15] == 1);
    CHECK(addr("fe80::1:2:3:4") == addr("fe80:0:0:0:1:2:3:4"));
    // Mapped text is the same address as the dotted quad: one type for both families.
    CHECK(addr("::ffff:10.0.0.1") == addr("10.0.0.1"));
    CHECK(addr("::ffff:10.0.0.1").is_v4());
}

TEST_CASE("Bad address text is refused", "[addr]") {
    for (const char* text :
         {"", " ", "10.0.0", "10.0.0.256", "10.0.0.1.2", "10.0.0.1 ", " 10.0.0.1", "10.0.0.-1",
          "a.b.c.d", "1::2::3", "2001:db8::g", "12345::", "10.0.0.1/24", "::ffff:1.2.3",
          "2001:db8:0:0:0:0:0:0:1", "localhost"}) {
        INFO("text: '" << text << "'");
        CHECK_FALSE(ip_addr::parse(text).has_value());
    }
    // Longer than any address text, and not NUL-terminated inside a larger buffer.
    CHECK_FALSE(ip_addr::parse(std::string(100, '1')).has_value());
    std::string padded = "10.0.0.1xyz";
    CHECK(ip_addr::parse(std::string_view(padded).substr(0, 8)) == addr("10.0.0.1"));
}

TEST_CASE("to_string round-trips", "[addr]") {
    for (const char* text : {"10.0.0.1", "192.168.100.200", "0.0.0.0", "2001:db8::1", "::", "::1",
                             "fe80::1:2:3:4", "2001:db8:1:2:3:4:5:6"}) {
        INFO("text: " << text);
        ip_addr a = addr(text);
        CHECK(a.to_string() == text);
        CHECK(ip_addr::parse(a.to_string()) == a);
    }
    // Non-canonical text comes back canonical (RFC 5952 via inet_ntop).
    CHECK(addr("2001:0DB8:0000::0001").to_string() == "2001:db8::1");
    CHECK(addr("::ffff:1.2.3.4").to_string() == "1.2.3.4");
}

TEST_CASE("Addresses order and compare by bytes", "[addr]") {
    CHECK(addr("10.0.0.1") < addr("10.0.0.2"));
    CHECK(addr("10.0.0.255") < addr("10.0.1.0"));
    CHECK(addr("10.0.0.1") != addr("10.0.0.2"));
    CHECK(addr("::1") < addr("10.0.0.1")); // the ::ffff: prefix sorts after ::1
}

TEST_CASE("Prefix parsing", "[addr]") {
    auto p = ip_prefix::parse("10.10.0.2/24");
    REQUIRE(p.has_value());
    CHECK(p->addr == addr("10.10.0.2"));
    CHECK(p->length == 24);
    CHECK(p->to_string() == "10.10.0.2/24");

    auto q = ip_prefix::parse("2001:db8::/32");
    REQUIRE(q.has_value());
    CHECK(q->length == 32);
    CHECK(q->to_string() == "2001:db8::/32");

    CHECK(ip_prefix::parse("0.0.0.0/0").has_value());
    CHECK(ip_prefix::parse("10.0.0.1/32").has_value());
    CHECK(ip_prefix::parse("::/0").has_value());
    CHECK(ip_prefix::parse("::1/128").has_value());

    for (const char* text :
         {"10.0.0.1", "10.0.0.1/", "10.0.0.1/33", "10.0.0.1/-1", "10.0.0.1/2x", "10.0.0.1/ 8",
          "10.0.0.1/0008", "/24", "bad/24", "::1/129", "::1/1000", "10.0.0.1/24/1"}) {
        INFO("text: '" << text << "'");
        CHECK_FALSE(ip_prefix::parse(text).has_value());
    }
}

TEST_CASE("Prefix contains", "[addr]") {
    auto p24 = *ip_prefix::parse("10.10.0.2/24");
    CHECK(p24.contains(addr("10.10.0.1")));
    CHECK(p24.contains(addr("10.10.0.255")));
    CHECK(p24.contains(addr("10.10.0.2")));
    CHECK_FALSE(p24.contains(addr("10.10.1.1")));
    CHECK_FALSE(p24.contains(addr("10.11.0.1")));
    // Families never match each other, even for ::/0 against an IPv4 address.
    CHECK_FALSE(p24.contains(addr("2001:db8::1")));
    CHECK_FALSE(ip_prefix::parse("::/0")->contains(addr("10.0.0.1")));
    CHECK_FALSE(ip_prefix::parse("0.0.0.0/0")->contains(addr("2001:db8::1")));

    // Prefix lengths that are not byte multiples.
    auto p20 = *ip_prefix::parse("172.16.0.0/20");
    CHECK(p20.contains(addr("172.16.15.255")));
    CHECK_FALSE(p20.contains(addr("172.16.16.0")));
    auto p31 = *ip_prefix::parse("192.168.1.0/31");
    CHECK(p31.contains(addr("192.168.1.1")));
    CHECK_FALSE(p31.contains(addr("192.168.1.2")));

    auto all4 = *ip_prefix::parse("0.0.0.0/0");
    CHECK(all4.contains(addr("1.2.3.4")));
    CHECK(all4.contains(addr("255.255.255.255")));
    auto host = *ip_prefix::parse("10.0.0.1/32");
    CHECK(host.contains(addr("10.0.0.1")));
    CHECK_FALSE(host.contains(addr("10.0.0.0")));

    auto v6 = *ip_prefix::parse("2001:db8:abcd::/47");
    CHECK(v6.contains(addr("2001:db8:abcd:1::1")));
    CHECK(v6.contains(addr("2001:db8:abcc::1"))); // differs only in bit 48
    CHECK(v6.contains(addr("2001:db8:abcd:ffff::")));
    CHECK_FALSE(v6.contains(addr("2001:db8:abce::")));
    auto all6 = *ip_prefix::parse("::/0");
    CHECK(all6.contains(addr("2001:db8::1")));
    auto host6 = *ip_prefix::parse("2001:db8::1/128");
    CHECK(host6.contains(addr("2001:db8::1")));
    CHECK_FALSE(host6.contains(addr("2001:db8::2")));
}
