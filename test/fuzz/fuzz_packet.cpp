// libFuzzer target: the pure packet code of lib/net on arbitrary bytes: parse_frame,
// then what the worker does with what parsed (nat_rewrite for TCP, make_tcp_reset,
// make_echo_reply, read_arp), and the frames the balancer builds (build_tcp_syn,
// build_arp).
//
// Input: PARAMS (19 bytes), then the frame (fuzz_packet_seeds writes seeds so):
//   PARAMS[0]       bit 0: the side NAT rewrites (0 destination, 1 source);
//                   bit 1: then rewrite the other side as well (with the same values)
//   PARAMS[1..16]   the address NAT writes (an IPv4 frame takes bytes 13..16)
//   PARAMS[17..18]  the port NAT writes, network byte order
// An input shorter than PARAMS is parsed whole as a frame, and nothing more.
//
// Every frame is handled in an exactly-sized heap copy, so ASan reports any access
// past its end. Beyond that, what must hold for any input:
// - parse_frame's offsets lie inside the frame and agree with the header bytes, read
//   here independently (IHL, total/payload length, the IPv6 extension chain, TCP data
//   offset, addresses, ports);
// - TCP: after nat_rewrite the IPv4 header checksum and the TCP checksum verify if and
//   only if they did before (a balancer neither breaks a good checksum nor launders a
//   bad one), computed with the reference sum of test/support/packet_builder.hpp, not
//   lib/net; the frame re-parses to the same offsets and the new key; no byte other
//   than the address, port and checksum fields changed; tcp_checksum() agrees with
//   the reference; make_tcp_reset gives a frame that parses as a RST with both
//   checksums right;
// - ICMP: make_echo_reply answers echo requests only, keeps the checksums verifying;
// - ARP: read_arp agrees with the bytes;
// - build_tcp_syn/build_arp produce frames that parse back with right checksums.
// A broken invariant prints what broke and aborts, which libFuzzer reports as a crash.
#include "net/checksum.hpp"
#include "net/nat.hpp"
#include "net/parse.hpp"
#include "net/reply.hpp"

#include "support/packet_builder.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

using namespace evenflow;
using net::drop_reason;
using net::l3_type;
using net::packet_meta;
using testing::packet_builder;
using testing::reference_fold;
using testing::reference_sum;

namespace {

constexpr size_t params_length = 19;

[[noreturn]] void fail(const char* what, int line) {
    std::fprintf(stderr, "fuzz_packet: invariant broken (line %d): %s\n", line, what);
    std::abort();
}
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail(#cond, __LINE__);                                                                 \
        }                                                                                          \
    } while (0)

uint16_t be16(std::span<const uint8_t> f, size_t at) {
    CHECK(at + 2 <= f.size());
    return uint16_t(f[at] << 8 | f[at + 1]);
}

bool same_bytes(std::span<const uint8_t> f, size_t at, const uint8_t* what, size_t n) {
    CHECK(at + n <= f.size());
    return std::memcmp(f.data() + at, what, n) == 0;
}

// The address as the frame holds it: 4 bytes at `at` for IPv4, 16 for IPv6.
net::ip_addr address_at(std::span<const uint8_t> f, size_t at, bool v6) {
    if (v6) {
        return net::ip_addr::from_v6(f.data() + at);
    }
    uint32_t v;
    std::memcpy(&v, f.data() + at, 4);
    return net::ip_addr::from_v4_be(v);
}

// ---- Reference checksums (RFC 1071 the slow way; not lib/net) ----

bool ipv4_header_ok(std::span<const uint8_t> f, size_t l3) {
    const size_t ihl = size_t(f[l3] & 0x0f) * 4;
    return reference_fold(reference_sum(f.subspan(l3, ihl))) == 0xffff;
}

// TCP, or ICMPv6 (proto 58): pseudo-header plus segment. ICMP for IPv4 has none.
bool l4_ok(std::span<const uint8_t> f, const packet_meta& m) {
    const bool v6 = m.l3 == l3_type::ipv6;
    const size_t end = size_t(m.l3_offset) + m.l3_length;
    const auto segment = f.subspan(m.l4_offset, end - m.l4_offset);
    if (m.l4_proto == net::ipproto_icmp) {
        return reference_fold(reference_sum(segment)) == 0xffff;
    }
    const uint32_t pseudo =
        packet_builder::pseudo_header_sum(f, m.l3_offset, v6, m.l4_proto, uint32_t(segment.size()));
    return reference_fold(reference_sum(segment, pseudo)) == 0xffff;
}

// ---- parse_frame against an independent reading of the headers ----

void check_parse(std::span<const uint8_t> frame, drop_reason r, const packet_meta& m) {
    const auto f = frame.first(std::min<size_t>(frame.size(), 65535));
    CHECK(r < drop_reason::not_for_us);         // worker verdicts are not the parser's
    CHECK(r != drop_reason::bad_ipv4_checksum); // checked by the worker, not here
    CHECK(net::to_string(r) != "unknown");
    CHECK(m.l3_offset <= f.size() && m.l4_offset <= f.size() && m.payload_offset <= f.size());
    CHECK(size_t(m.l3_offset) + m.l3_length <= f.size());
    if (r == drop_reason::truncated_ethernet) {
        CHECK(f.size() < 14);
        return;
    }
    CHECK(f.size() >= 14);
    uint16_t ethertype = be16(f, 12);
    if (ethertype == 0x8100) {
        if (r == drop_reason::truncated_vlan) {
            CHECK(f.size() < 18);
            return;
        }
        CHECK(m.has_vlan);
        CHECK(m.vlan_tci == be16(f, 14));
        ethertype = be16(f, 16);
        CHECK(m.l3_offset == 18);
    } else {
        CHECK(!m.has_vlan && m.l3_offset == 14);
    }
    CHECK(m.ethertype == ethertype);
    if (r != drop_reason::none) {
        return;
    }
    const size_t l3 = m.l3_offset;
    const size_t end = l3 + m.l3_length;
    switch (m.l3) {
    case l3_type::arp: {
        CHECK(ethertype == 0x0806 && m.l3_length == 28 && end <= f.size());
        CHECK(be16(f, l3) == 1 && be16(f, l3 + 2) == 0x0800 && f[l3 + 4] == 6 && f[l3 + 5] == 4);
        CHECK(m.key.src == address_at(f, l3 + 14, false));
        CHECK(m.key.dst == address_at(f, l3 + 24, false));
        net::arp_fields arp;
        CHECK(net::read_arp(frame, m, arp));
        CHECK(arp.op == be16(f, l3 + 6));
        CHECK(same_bytes(f, l3 + 8, arp.sender_mac.data(), 6));
        CHECK(same_bytes(f, l3 + 18, arp.target_mac.data(), 6));
        CHECK(arp.sender_ip == m.key.src && arp.target_ip == m.key.dst);
        return;
    }
    case l3_type::ipv4: {
        CHECK(ethertype == 0x0800 && (f[l3] >> 4) == 4);
        const size_t ihl = size_t(f[l3] & 0x0f) * 4;
        CHECK(ihl >= 20 && m.l4_offset == l3 + ihl);
        CHECK(m.l3_length == be16(f, l3 + 2) && m.l3_length >= ihl);
        CHECK(m.has_ip_options == (ihl > 20));
        CHECK((be16(f, l3 + 6) & 0x3fff) == 0); // not a fragment
        CHECK(m.ttl == f[l3 + 8] && m.l4_proto == f[l3 + 9]);
        CHECK(m.key.src == address_at(f, l3 + 12, false));
        CHECK(m.key.dst == address_at(f, l3 + 16, false));
        break;
    }
    case l3_type::ipv6: {
        CHECK(ethertype == 0x86dd && (f[l3] >> 4) == 6);
        CHECK(m.l3_length == 40 + be16(f, l3 + 4));
        CHECK(m.ttl == f[l3 + 7]);
        CHECK(m.key.src == address_at(f, l3 + 8, true));
        CHECK(m.key.dst == address_at(f, l3 + 24, true));
        // The extension chain, walked here on its own.
        size_t at = l3 + 40;
        uint8_t next = f[l3 + 6];
        unsigned walked = 0;
        while (next == 0 || next == 43 || next == 60 || next == 51) {
            CHECK(at + 2 <= end);
            const size_t len =
                next == 51 ? (size_t(f[at + 1]) + 2) * 4 : (size_t(f[at + 1]) + 1) * 8;
            next = f[at];
            at += len;
            CHECK(at <= end);
            ++walked;
        }
        CHECK(walked <= 8 && next != 44);
        CHECK(m.has_ip_options == (walked > 0));
        CHECK(m.l4_offset == at && m.l4_proto == next);
        break;
    }
    case l3_type::none:
        fail("parsed without a layer 3", __LINE__);
    }
    CHECK(m.key.proto == m.l4_proto);
    if (m.l4_proto == net::ipproto_tcp) {
        CHECK(size_t(m.l4_offset) + 20 <= end);
        const size_t doff = size_t(f[m.l4_offset + 12] >> 4) * 4;
        CHECK(doff >= 20 && m.payload_offset == m.l4_offset + doff && m.payload_offset <= end);
        uint16_t src_port, dst_port;
        std::memcpy(&src_port, f.data() + m.l4_offset, 2);
        std::memcpy(&dst_port, f.data() + m.l4_offset + 2, 2);
        CHECK(m.key.src_port == src_port && m.key.dst_port == dst_port);
        CHECK(m.tcp_flags == f[m.l4_offset + 13]);
    } else {
        const bool v6 = m.l3 == l3_type::ipv6;
        CHECK(m.l4_proto == (v6 ? net::ipproto_icmpv6 : net::ipproto_icmp));
        CHECK(size_t(m.l4_offset) + 8 <= end);
        CHECK(m.icmp_type == f[m.l4_offset] && m.icmp_code == f[m.l4_offset + 1]);
        CHECK(m.key.src_port == 0 && m.key.dst_port == 0);
    }
}

// Parses `frame` and checks that the offsets are those of `before`.
packet_meta reparse_same_layout(std::span<const uint8_t> frame, const packet_meta& before) {
    packet_meta m;
    const drop_reason r = net::parse_frame(frame, m);
    check_parse(frame, r, m);
    CHECK(r == drop_reason::none);
    CHECK(m.l3 == before.l3 && m.l3_offset == before.l3_offset && m.l4_offset == before.l4_offset &&
          m.payload_offset == before.payload_offset && m.l3_length == before.l3_length &&
          m.l4_proto == before.l4_proto);
    return m;
}

// The TCP checksum lib/net computes from scratch agrees with the reference verdict
// (0x0000 and 0xffff are both zero in ones' complement: a stored 0xffff verifies
// where the computation gives 0).
void check_tcp_checksum_function(std::span<const uint8_t> f, const packet_meta& m) {
    uint16_t stored;
    std::memcpy(&stored, f.data() + m.l4_offset + 16, 2);
    const uint16_t computed = net::tcp_checksum(f, m);
    const bool agrees = stored == computed || (computed == 0 && stored == 0xffff);
    CHECK(agrees == l4_ok(f, m));
}

// ---- TCP: NAT, then the reset that would answer the packet ----

void check_nat(std::vector<uint8_t>& g, packet_meta& m, net::nat_side side,
               const net::ip_addr& addr, uint16_t port_be) {
    const std::vector<uint8_t> before(g);
    const bool v6 = m.l3 == l3_type::ipv6;
    const bool ip_ok = !v6 && ipv4_header_ok(before, m.l3_offset);
    const bool tcp_ok = l4_ok(before, m);

    net::nat_rewrite(g, m, side, addr, port_be);

    const bool src = side == net::nat_side::source;
    const size_t field = m.l3_offset + (v6 ? (src ? 8 : 24) : (src ? 12 : 16));
    const size_t field_length = v6 ? 16 : 4;
    const size_t port = m.l4_offset + (src ? 0 : 2);
    CHECK(same_bytes(g, field, v6 ? addr.bytes.data() : addr.bytes.data() + 12, field_length));
    CHECK(same_bytes(g, port, reinterpret_cast<const uint8_t*>(&port_be), 2));
    for (size_t i = 0; i < g.size(); ++i) {
        const bool may_change = (i >= field && i < field + field_length) ||
                                (i >= port && i < port + 2) ||
                                (i >= m.l4_offset + 16u && i < m.l4_offset + 18u) ||
                                (!v6 && i >= m.l3_offset + 10u && i < m.l3_offset + 12u);
        CHECK(may_change || g[i] == before[i]);
    }
    const packet_meta again = reparse_same_layout(g, m);
    CHECK(again.key == m.key); // nat_rewrite kept meta.key in step with the bytes
    if (!v6) {
        CHECK(ipv4_header_ok(g, m.l3_offset) == ip_ok);
    }
    CHECK(l4_ok(g, m) == tcp_ok);
    check_tcp_checksum_function(g, m);
}

void check_reset(std::vector<uint8_t> h, const packet_meta& m) {
    const std::vector<uint8_t> before(h);
    const size_t length = net::make_tcp_reset(h, m);
    if (m.tcp_flags & net::tcp_flag::rst) {
        CHECK(length == 0 && h == before); // never answer a RST
        return;
    }
    CHECK(length == size_t(m.l4_offset) + 20 && length <= h.size());
    h.resize(length); // the caller trims the buffer; ASan watches the new end
    packet_meta r;
    const drop_reason parsed = net::parse_frame(h, r);
    check_parse(h, parsed, r);
    CHECK(parsed == drop_reason::none);
    CHECK(r.l3 == m.l3 && r.l4_proto == net::ipproto_tcp && r.l4_offset == m.l4_offset);
    CHECK(size_t(r.l3_offset) + r.l3_length == length);
    CHECK(r.tcp_flags & net::tcp_flag::rst);
    CHECK(r.key == m.key.reversed());
    CHECK(same_bytes(h, 0, before.data() + 6, 6) && same_bytes(h, 6, before.data(), 6));
    if (r.l3 == l3_type::ipv4) {
        CHECK(ipv4_header_ok(h, r.l3_offset));
    }
    CHECK(l4_ok(h, r));
}

void check_tcp(std::span<const uint8_t> frame, const packet_meta& meta, const uint8_t* params) {
    check_tcp_checksum_function(frame, meta);
    const bool v6 = meta.l3 == l3_type::ipv6;
    net::ip_addr addr = net::ip_addr::from_v6(params + 1);
    if (!v6) {
        uint32_t v4;
        std::memcpy(&v4, params + 13, 4);
        addr = net::ip_addr::from_v4_be(v4);
    } else if (addr.is_v4()) {
        addr.bytes[10] = 0; // an IPv4-mapped address is IPv4 to ip_addr; keep it IPv6
    }
    uint16_t port_be;
    std::memcpy(&port_be, params + 17, 2);
    const auto side = (params[0] & 1) ? net::nat_side::source : net::nat_side::destination;

    std::vector<uint8_t> g(frame.begin(), frame.end());
    packet_meta m = meta;
    check_nat(g, m, side, addr, port_be);
    if (params[0] & 2) {
        const auto other =
            side == net::nat_side::source ? net::nat_side::destination : net::nat_side::source;
        check_nat(g, m, other, addr, port_be);
    }
    check_reset(std::vector<uint8_t>(frame.begin(), frame.end()), meta); // as received
    check_reset(g, m);                                                   // after NAT
}

// ---- ICMP: the echo reply ----

void check_icmp(std::span<const uint8_t> frame, const packet_meta& meta) {
    const bool v6 = meta.l3 == l3_type::ipv6;
    std::vector<uint8_t> e(frame.begin(), frame.end());
    const bool request = meta.icmp_type == (v6 ? 128 : 8);
    const bool ip_ok = !v6 && ipv4_header_ok(frame, meta.l3_offset);
    const bool icmp_ok = l4_ok(frame, meta);
    const bool replied = net::make_echo_reply(e, meta);
    CHECK(replied == request);
    if (!replied) {
        CHECK(std::equal(e.begin(), e.end(), frame.begin()));
        return;
    }
    const packet_meta r = reparse_same_layout(e, meta);
    CHECK(r.icmp_type == (v6 ? 129 : 0) && r.icmp_code == meta.icmp_code);
    CHECK(r.key.src == meta.key.dst && r.key.dst == meta.key.src);
    CHECK(r.ttl == 64);
    if (!v6) {
        CHECK(ipv4_header_ok(e, r.l3_offset) == ip_ok);
    }
    CHECK(l4_ok(e, r) == icmp_ok);
}

// ---- Frames the balancer builds from scratch, from the parameters ----

void check_builders(const uint8_t* params) {
    net::mac_addr a{}, b{};
    std::memcpy(a.data(), params + 1, 6);
    std::memcpy(b.data(), params + 7, 6);
    uint32_t v4;
    std::memcpy(&v4, params + 13, 4);
    const auto src = net::ip_addr::from_v4_be(v4);
    const auto dst = net::ip_addr::from_v4_be(v4 ^ 0x01000000u);
    uint16_t port;
    std::memcpy(&port, params + 17, 2);

    std::vector<uint8_t> syn(net::tcp_syn_frame_length);
    CHECK(net::build_tcp_syn(std::span(syn).first(syn.size() - 1), a, b, src, dst, port, 80, 1) ==
          0);
    CHECK(net::build_tcp_syn(syn, a, b, net::ip_addr::from_v6(params + 1), dst, port, 80, 1) ==
          (net::ip_addr::from_v6(params + 1).is_v4() ? syn.size() : 0));
    CHECK(net::build_tcp_syn(syn, a, b, src, dst, port, uint16_t(~port), v4) == syn.size());
    packet_meta m;
    CHECK(net::parse_frame(syn, m) == drop_reason::none);
    check_parse(syn, drop_reason::none, m);
    CHECK(m.l4_proto == net::ipproto_tcp && m.tcp_flags == net::tcp_flag::syn);
    CHECK(m.key.src == src && m.key.dst == dst);
    CHECK(ipv4_header_ok(syn, m.l3_offset) && l4_ok(syn, m));

    std::vector<uint8_t> arp(net::arp_frame_length);
    const uint16_t op = params[0] & 1 ? net::arp_op_reply : net::arp_op_request;
    CHECK(net::build_arp(arp, op, a, src, b, dst) == arp.size());
    CHECK(net::parse_frame(arp, m) == drop_reason::none);
    check_parse(arp, drop_reason::none, m);
    net::arp_fields fields;
    CHECK(net::read_arp(arp, m, fields));
    CHECK(fields.op == op && fields.sender_mac == a && fields.target_mac == b);
    CHECK(fields.sender_ip == src && fields.target_ip == dst);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const uint8_t* params = nullptr;
    if (size >= params_length) {
        params = data;
        data += params_length;
        size -= params_length;
    }
    // An exactly-sized heap copy: the fuzzer's own buffer may have slack after it.
    const std::vector<uint8_t> frame(data, data + size);
    packet_meta meta;
    meta.l3_offset = 99; // parse_frame must reset what it does not fill
    const drop_reason r = net::parse_frame(frame, meta);
    check_parse(frame, r, meta);
    packet_meta again;
    CHECK(net::parse_frame(frame, again) == r && again.key == meta.key);
    if (params == nullptr) {
        return 0;
    }
    check_builders(params);
    if (r != drop_reason::none) {
        return 0;
    }
    if (meta.l4_proto == net::ipproto_tcp) {
        check_tcp(frame, meta, params);
    } else if (meta.l3 == l3_type::ipv4 || meta.l3 == l3_type::ipv6) {
        check_icmp(frame, meta);
    }
    return 0;
}
