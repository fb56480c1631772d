// Internet checksum helpers and the NAT rewrite, checked against the independent
// reference sum and packet builder in test/support: a rewritten frame must be
// byte-for-byte the frame the builder makes with the new address and port.
#include "net/checksum.hpp"
#include "net/nat.hpp"
#include "net/parse.hpp"

#include "support/packet_builder.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <random>

using namespace evenflow::testing;
using evenflow::net::checksum_fold;
using evenflow::net::checksum_partial;
using evenflow::net::checksum_update;
using evenflow::net::checksum_update16;
using evenflow::net::drop_reason;
using evenflow::net::ip_addr;
using evenflow::net::nat_rewrite;
using evenflow::net::nat_side;
using evenflow::net::packet_meta;
using evenflow::net::parse_frame;

namespace {

// The library works on checksums as stored; these convert to and from the
// big-endian values the reference computes.
uint16_t stored(uint16_t host_value) {
    return htons(host_value);
}
uint16_t value(uint16_t stored_checksum) {
    return ntohs(stored_checksum);
}

bytes random_bytes(std::mt19937& rng, size_t n) {
    bytes b(n);
    for (auto& x : b) {
        x = uint8_t(rng());
    }
    return b;
}

// The stored checksum our library computes over a buffer.
uint16_t library_checksum(const bytes& b) {
    return checksum_fold(checksum_partial(b.data(), b.size()));
}

} // namespace

TEST_CASE("Full checksum: RFC 1071 and RFC 791 examples", "[checksum]") {
    // RFC 1071 section 3: the folded sum of these bytes is 0xddf2.
    const bytes rfc1071 = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    uint16_t folded = uint16_t(~checksum_fold(checksum_partial(rfc1071.data(), rfc1071.size())));
    CHECK(value(folded) == 0xddf2);
    CHECK(reference_fold(reference_sum(rfc1071)) == 0xddf2);

    // A well-known IPv4 header with its checksum field zeroed: checksum 0xb861.
    bytes header = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                    0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    CHECK(value(library_checksum(header)) == 0xb861);
    CHECK(reference_checksum(header) == 0xb861);
    // With the checksum in place the header sums to -0, so the checksum is zero.
    put16(header, 10, 0xb861);
    CHECK(library_checksum(header) == 0);

    // Nothing at all: the sum is +0, the checksum 0xffff.
    CHECK(checksum_fold(checksum_partial(nullptr, 0)) == 0xffff);
}

TEST_CASE("Full checksum equals the reference for any length and alignment", "[checksum]") {
    std::mt19937 rng(1071);
    for (int i = 0; i < 20000; ++i) {
        const size_t n = rng() % 1600;
        const size_t misalign = rng() % 8;
        bytes storage = random_bytes(rng, n + misalign);
        const bytes data(storage.begin() + long(misalign), storage.end());
        INFO("length " << n << ", misaligned by " << misalign);
        const uint16_t expected = reference_checksum(data);
        REQUIRE(value(checksum_fold(checksum_partial(storage.data() + misalign, n))) == expected);

        // Chaining: an even-length prefix summed first, its sum passed on.
        const size_t cut = (rng() % (n + 1)) & ~size_t(1);
        uint32_t first = checksum_partial(storage.data() + misalign, cut);
        uint32_t both = checksum_partial(storage.data() + misalign + cut, n - cut, first);
        REQUIRE(value(checksum_fold(both)) == expected);
    }
    // Sums of all-0xff data exercise every carry.
    bytes ones(65535, 0xff);
    CHECK(value(library_checksum(ones)) == reference_checksum(ones));
    // A seed at the top of the 32-bit range is still folded correctly (0xffffffff
    // is 0xffff, i.e. -0, in ones' complement).
    CHECK(checksum_fold(checksum_partial(ones.data(), 64, 0xffffffffu)) ==
          stored(reference_checksum(bytes(64, 0xff), 0xffff)));
}

TEST_CASE("Incremental update equals full recomputation", "[checksum]") {
    std::mt19937 rng(1624);
    for (int i = 0; i < 100000; ++i) {
        const size_t words = 1 + rng() % 40;
        bytes data = random_bytes(rng, words * 2);
        // A header is never all zeros: that one case has two checksums (see the
        // corner-case test). Keep the first word non-zero and unchanged.
        data[0] |= 0x01;
        const uint16_t before = library_checksum(data);

        bytes changed = data;
        const size_t first = 1 + rng() % words; // word index, possibly past the end
        const size_t count = first < words ? 1 + rng() % (words - first) : 0;
        bytes replacement = random_bytes(rng, count * 2);
        if (rng() % 8 == 0) {
            std::fill(replacement.begin(), replacement.end(), rng() % 2 ? 0x00 : 0xff);
        }
        std::copy(replacement.begin(), replacement.end(), changed.begin() + long(first * 2));

        INFO("iteration " << i);
        const uint16_t after =
            checksum_update(before, data.data() + first * 2, changed.data() + first * 2, count * 2);
        REQUIRE(value(after) == reference_checksum(changed));
        if (count == 1) {
            uint16_t old_word, new_word;
            std::memcpy(&old_word, data.data() + first * 2, 2);
            std::memcpy(&new_word, changed.data() + first * 2, 2);
            REQUIRE(checksum_update16(before, old_word, new_word) == after);
        }
    }
}

TEST_CASE("RFC 1624 corner cases: +0 and -0", "[checksum]") {
    // RFC 1624 section 3: the other header words sum to 0xCD7A, and a field m changes
    // from 0x5555 to 0x3285. HC = 0xDD2F. The correct new checksum is 0x0000; eqn. 2
    // (HC - ~m - m') gives 0xFFFF. Eqn. 3 must give 0x0000.
    bytes header = {0xcd, 0x7a, 0x55, 0x55};
    REQUIRE(reference_checksum(header) == 0xdd2f);
    const uint16_t hc = checksum_update16(stored(0xdd2f), stored(0x5555), stored(0x3285));
    CHECK(value(hc) == 0x0000);
    put16(header, 2, 0x3285);
    CHECK(reference_checksum(header) == 0x0000);
    CHECK(checksum_update(stored(0xdd2f), "\x55\x55", "\x32\x85", 2) == stored(0x0000));
    // Ones' complement arithmetic does not care about byte order: host-order values
    // in, host-order value out.
    CHECK(checksum_update16(0xdd2f, 0x5555, 0x3285) == 0x0000);

    // And back: from a checksum of +0 (0x0000) or the equivalent -0 (0xFFFF) a sender
    // might have stored, the update lands on the same, correct 0xDD2F.
    CHECK(value(checksum_update16(stored(0x0000), stored(0x3285), stored(0x5555))) == 0xdd2f);
    CHECK(value(checksum_update16(stored(0xffff), stored(0x3285), stored(0x5555))) == 0xdd2f);

    // An unchanged field normalises -0 to +0; either verifies, but 0xFFFF never
    // comes out of eqn. 3 for data that is not all zeros.
    CHECK(checksum_update16(0xffff, 0x1234, 0x1234) == 0x0000);
    CHECK(checksum_update16(0x0000, 0x1234, 0x1234) == 0x0000);

    // The one case where eqn. 3 and a full computation disagree: everything becomes
    // zero. The full computation says 0xFFFF (-0), the update 0x0000 (+0); both are
    // zero in ones' complement, and real headers are never all zeros.
    CHECK(checksum_update16(stored(0xedcb), stored(0x1234), 0) == 0x0000);
    CHECK(reference_checksum(bytes{0, 0}) == 0xffff);

    // Swapping a word for its complement-equivalent (0x0000 <-> 0xFFFF) leaves the
    // checksum unchanged, as a full computation does.
    bytes zero_word = {0x12, 0x34, 0x00, 0x00};
    bytes ffff_word = {0x12, 0x34, 0xff, 0xff};
    const uint16_t c = library_checksum(zero_word);
    CHECK(checksum_update16(c, 0x0000, 0xffff) == library_checksum(ffff_word));
    CHECK(library_checksum(zero_word) == library_checksum(ffff_word));
}

namespace {

struct nat_case {
    bool v6 = false;
    bool vlan = false;
    size_t ipv4_option_words = 0;
    size_t ipv6_ext = 0; // Destination Options headers of 8 bytes
    std::array<uint8_t, 16> src{}, dst{};
    uint16_t src_port = 0, dst_port = 0;
    uint8_t flags = 0;
    uint32_t seq = 0, ack = 0;
    uint16_t ip_id = 0;
    uint8_t ttl = 64;
    bytes tcp_options;
    bytes payload;
};

ip_addr to_ip(const std::array<uint8_t, 16>& a, bool v6) {
    if (v6) {
        return ip_addr::from_v6(a.data());
    }
    uint32_t be;
    std::memcpy(&be, a.data(), 4);
    return ip_addr::from_v4_be(be);
}

bytes build(const nat_case& c) {
    packet_builder b;
    b.eth("02:00:00:00:00:0a", "02:00:00:00:00:0b");
    if (c.vlan) {
        b.vlan(42);
    }
    if (c.v6) {
        b.ipv6(c.src, c.dst);
        for (size_t i = 0; i < c.ipv6_ext; ++i) {
            b.ipv6_ext(ipprotos::dest_opts);
        }
    } else {
        b.ipv4({c.src[0], c.src[1], c.src[2], c.src[3]}, {c.dst[0], c.dst[1], c.dst[2], c.dst[3]})
            .ip_id(c.ip_id)
            .dont_fragment();
        if (c.ipv4_option_words > 0) {
            b.ipv4_options(bytes(c.ipv4_option_words * 4, 1));
        }
    }
    b.ttl(c.ttl).tcp(c.src_port, c.dst_port, c.flags, c.seq, c.ack);
    if (!c.tcp_options.empty()) {
        b.tcp_options(c.tcp_options);
    }
    return b.payload(c.payload).build();
}

nat_case random_case(std::mt19937& rng) {
    nat_case c;
    c.v6 = rng() % 2;
    c.vlan = rng() % 2;
    c.ipv4_option_words = rng() % 2 ? 0 : rng() % 11;
    c.ipv6_ext = rng() % 4 == 0 ? 1 + rng() % 3 : 0;
    for (auto& x : c.src) {
        x = uint8_t(rng());
    }
    for (auto& x : c.dst) {
        x = uint8_t(rng());
    }
    c.src_port = uint16_t(rng());
    c.dst_port = uint16_t(rng());
    c.flags = uint8_t(rng());
    c.seq = uint32_t(rng());
    c.ack = uint32_t(rng());
    c.ip_id = uint16_t(rng());
    c.ttl = uint8_t(1 + rng() % 255);
    if (rng() % 4 == 0) {
        c.tcp_options = random_bytes(rng, 4 * (1 + rng() % 10));
    }
    c.payload = random_bytes(rng, rng() % 1401);
    return c;
}

// Rewrites one side of `c` in its frame and checks the result against the builder's
// frame for the rewritten case: same bytes, so the new fields are exactly right,
// both checksums equal a full independent computation, and nothing else moved.
void check_rewrite(const nat_case& c, nat_side side, const std::array<uint8_t, 16>& new_addr,
                   uint16_t new_port) {
    bytes frame = build(c);
    packet_meta meta;
    REQUIRE(parse_frame(frame, meta) == drop_reason::none);

    nat_case after = c;
    (side == nat_side::source ? after.src : after.dst) = new_addr;
    (side == nat_side::source ? after.src_port : after.dst_port) = new_port;
    const bytes expected = build(after);

    nat_rewrite(frame, meta, side, to_ip(new_addr, c.v6), htons(new_port));
    REQUIRE(frame.size() == expected.size());
    if (frame != expected) {
        for (size_t i = 0; i < frame.size(); ++i) {
            INFO("first difference at byte " << i);
            REQUIRE(int(frame[i]) == int(expected[i]));
        }
    }
    REQUIRE(verify_checksums(frame) == "");

    // The metadata describes the rewritten packet as a fresh parse would.
    packet_meta reparsed;
    REQUIRE(parse_frame(frame, reparsed) == drop_reason::none);
    REQUIRE(meta.key == reparsed.key);
}

} // namespace

TEST_CASE("NAT rewrite of one DNAT'd IPv4 SYN", "[nat]") {
    bytes frame = packet_builder()
                      .vlan(100)
                      .ipv4("10.0.0.1", "10.10.0.100")
                      .tcp(40000, 80, tcp_flags::syn)
                      .payload("x")
                      .build();
    const bytes original = frame;
    packet_meta meta;
    REQUIRE(parse_frame(frame, meta) == drop_reason::none);
    const ip_addr backend = *ip_addr::parse("10.20.0.11");
    nat_rewrite(frame, meta, nat_side::destination, backend, htons(8080));

    CHECK(meta.key.dst == backend);
    CHECK(meta.key.dst_port == htons(8080));
    CHECK(meta.key.src == *ip_addr::parse("10.0.0.1"));
    CHECK(meta.key.src_port == htons(40000));
    CHECK(get32(frame, 18 + 16) == 0x0a14000b);
    CHECK(get16(frame, 38 + 2) == 8080);
    CHECK(verify_checksums(frame) == "");

    // The reply direction restores the original exactly.
    nat_rewrite(frame, meta, nat_side::destination, *ip_addr::parse("10.10.0.100"), htons(80));
    CHECK(frame == original);
}

TEST_CASE("NAT rewrite of IPv6 touches only the TCP checksum", "[nat]") {
    bytes frame = packet_builder()
                      .ipv6("2001:db8::1", "2001:db8:10::100")
                      .tcp(40000, 443, tcp_flags::ack)
                      .payload_size(100)
                      .build();
    packet_meta meta;
    REQUIRE(parse_frame(frame, meta) == drop_reason::none);
    const ip_addr vip = *ip_addr::parse("2001:db8:ffff::1");
    nat_rewrite(frame, meta, nat_side::source, vip, htons(443));
    CHECK(meta.key.src == vip);
    CHECK(meta.key.src_port == htons(443));
    CHECK(std::equal(vip.bytes.begin(), vip.bytes.end(), frame.begin() + 14 + 8));
    CHECK(verify_checksums(frame) == "");
}

TEST_CASE("NAT rewrite yields checksums of 0x0000 where a full computation does", "[nat]") {
    // Make the rewritten packet's checksums come out as exactly 0x0000: the RFC 1624
    // case where subtracting (eqn. 2) would have stored 0xFFFF.
    for (bool v6 : {false, true}) {
        for (nat_side side : {nat_side::source, nat_side::destination}) {
            INFO((v6 ? "IPv6 " : "IPv4 ") << (side == nat_side::source ? "source" : "destination"));
            nat_case c;
            c.v6 = v6;
            c.src = {10, 0, 0, 1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
            c.dst = {10, 10, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
            c.src_port = 40000;
            c.dst_port = 80;
            c.flags = tcp_flags::ack;
            c.payload = {0, 0, 'a', 'b', 'c'};
            const std::array<uint8_t, 16> new_addr = {10, 20, 0, 11, 0xfe, 0x80};
            const uint16_t new_port = 8080;

            nat_case after = c;
            (side == nat_side::source ? after.src : after.dst) = new_addr;
            (side == nat_side::source ? after.src_port : after.dst_port) = new_port;
            // With a zero word, the checksum C of the rest is ~S; putting C in that
            // word makes the sum 0xFFFF and the checksum 0x0000. Same for the IP ID.
            bytes probe = build(after);
            const size_t l3 = 14;
            const size_t l4 = l3 + (v6 ? 40 : 20);
            put16(c.payload, 0, get16(probe, l4 + 16));
            if (!v6) {
                c.ip_id = get16(probe, l3 + 10);
            }
            after.payload = c.payload;
            after.ip_id = c.ip_id;
            const bytes expected = build(after);
            REQUIRE(get16(expected, l4 + 16) == 0x0000);
            if (!v6) {
                REQUIRE(get16(expected, l3 + 10) == 0x0000);
            }
            REQUIRE(get16(build(c), l4 + 16) != 0x0000);
            check_rewrite(c, side, new_addr, new_port);
        }
    }
}

TEST_CASE("NAT rewrite property: 100,000 random packets", "[nat][property]") {
    const uint32_t seed = 20240601;
    std::mt19937 rng(seed);
    INFO("rng seed " << seed);
    size_t v4 = 0, v6 = 0;
    for (int i = 0; i < 100000; ++i) {
        const nat_case c = random_case(rng);
        const nat_side side = rng() % 2 ? nat_side::source : nat_side::destination;
        std::array<uint8_t, 16> new_addr{};
        for (auto& x : new_addr) {
            x = uint8_t(rng());
        }
        // Sometimes change only the port or only the address.
        const auto& old_addr = side == nat_side::source ? c.src : c.dst;
        const uint16_t old_port = side == nat_side::source ? c.src_port : c.dst_port;
        const unsigned what = rng() % 8;
        if (what == 0) {
            new_addr = old_addr;
        }
        const uint16_t new_port = what == 1 ? old_port : uint16_t(rng());
        INFO("case " << i << (c.v6 ? " IPv6" : " IPv4") << (c.vlan ? " VLAN" : "") << " options "
                     << c.ipv4_option_words << " payload " << c.payload.size());
        check_rewrite(c, side, new_addr, new_port);
        (c.v6 ? v6 : v4)++;
    }
    CHECK(v4 > 40000);
    CHECK(v6 > 40000);
}
