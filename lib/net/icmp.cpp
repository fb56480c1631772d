#include "net/icmp.hpp"

#include "net/bytes.hpp"
#include "net/checksum.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace evenflow::net {

namespace {

bool is_error(const packet_meta& meta) {
    if (meta.l3 == l3_type::ipv4 && meta.l4_proto == ipproto_icmp) {
        return meta.icmp_type == 3 || meta.icmp_type == 11;
    }
    if (meta.l3 == l3_type::ipv6 && meta.l4_proto == ipproto_icmpv6) {
        return meta.icmp_type >= 1 && meta.icmp_type <= 3;
    }
    return false;
}

// Replaces `len` bytes at `field` and updates `checksum` (as stored) for them.
void replace(uint8_t* field, const uint8_t* value, size_t len, uint8_t* checksum) {
    if (checksum != nullptr) {
        store16(checksum, checksum_update(load16(checksum), field, value, len));
    }
    std::memcpy(field, value, len);
}

} // namespace

bool read_icmp_error(std::span<const uint8_t> frame, const packet_meta& meta, icmp_quote& out) {
    if (!is_error(meta)) {
        return false;
    }
    const size_t end = size_t(meta.l3_offset) + meta.l3_length; // the error ends here
    const size_t inner = size_t(meta.l4_offset) + 8;
    if (end > frame.size() || inner >= end) {
        return false;
    }
    const uint8_t* p = frame.data();
    size_t l4 = 0;
    if (meta.l3 == l3_type::ipv4) {
        if (end - inner < 20 || (p[inner] >> 4) != 4) {
            return false;
        }
        size_t ihl = size_t(p[inner] & 0x0f) * 4;
        if (ihl < 20 || p[inner + 9] != ipproto_tcp || end - inner < ihl + 8 ||
            (ntohs(load16(p + inner + 6)) & 0x1fff) != 0) {
            return false; // not TCP, too short, or a later fragment (no ports)
        }
        out.key.src = ip_addr::from_v4_be(load32(p + inner + 12));
        out.key.dst = ip_addr::from_v4_be(load32(p + inner + 16));
        l4 = inner + ihl;
    } else {
        // Extension headers in a quote are rare; only a quoted TCP header right after
        // the fixed header is translated.
        if (end - inner < 40 + 8 || (p[inner] >> 4) != 6 || p[inner + 6] != ipproto_tcp) {
            return false;
        }
        out.key.src = ip_addr::from_v6(p + inner + 8);
        out.key.dst = ip_addr::from_v6(p + inner + 24);
        l4 = inner + 40;
    }
    out.key.src_port = load16(p + l4);
    out.key.dst_port = load16(p + l4 + 2);
    out.key.proto = ipproto_tcp;
    out.l3_offset = uint16_t(inner);
    out.l4_offset = uint16_t(l4);
    out.l4_quoted = uint16_t(end - l4);
    return true;
}

void rewrite_icmp_error(std::span<uint8_t> frame, packet_meta& meta, const icmp_quote& quote,
                        icmp_side quoted_side, const ip_addr& addr, uint16_t port_be,
                        icmp_side outer_side, const ip_addr& outer_addr) {
    uint8_t* p = frame.data();
    const bool v6 = meta.l3 == l3_type::ipv6;
    const size_t alen = v6 ? 16 : 4;
    const uint8_t* new_addr = v6 ? addr.bytes.data() : addr.bytes.data() + 12;
    const uint8_t* new_outer = v6 ? outer_addr.bytes.data() : outer_addr.bytes.data() + 12;
    const bool q_src = quoted_side == icmp_side::source;
    const bool o_src = outer_side == icmp_side::source;

    // The quoted packet: address (its IPv4 header checksum) and port, both also in its
    // TCP checksum when the quote reaches it (byte 16 of the TCP header).
    uint8_t* q_ip = p + quote.l3_offset;
    uint8_t* q_tcp = p + quote.l4_offset;
    uint8_t* q_addr = q_ip + (v6 ? (q_src ? 8 : 24) : (q_src ? 12 : 16));
    uint8_t* q_port = q_tcp + (q_src ? 0 : 2);
    uint8_t* q_tcp_sum = quote.l4_quoted >= 18 ? q_tcp + 16 : nullptr;
    if (q_tcp_sum != nullptr) {
        store16(q_tcp_sum, checksum_update(load16(q_tcp_sum), q_addr, new_addr, alen));
        store16(q_tcp_sum, checksum_update16(load16(q_tcp_sum), load16(q_port), port_be));
    }
    replace(q_addr, new_addr, alen, v6 ? nullptr : q_ip + 10);
    store16(q_port, port_be);

    // The outer header.
    uint8_t* ip = p + meta.l3_offset;
    uint8_t* o_addr = ip + (v6 ? (o_src ? 8 : 24) : (o_src ? 12 : 16));
    replace(o_addr, new_outer, alen, v6 ? nullptr : ip + 10);
    if (o_src) {
        meta.key.src = outer_addr;
    } else {
        meta.key.dst = outer_addr;
    }

    // The ICMP checksum, from scratch: the message is at most one MTU.
    uint8_t* icmp = p + meta.l4_offset;
    const size_t icmp_len = size_t(meta.l3_offset) + meta.l3_length - meta.l4_offset;
    store16(icmp + 2, 0);
    uint32_t sum = 0;
    if (v6) {
        uint8_t pseudo[40] = {};
        std::memcpy(pseudo, ip + 8, 32);
        uint32_t len_be = htonl(uint32_t(icmp_len));
        std::memcpy(pseudo + 32, &len_be, 4);
        pseudo[39] = ipproto_icmpv6;
        sum = checksum_partial(pseudo, sizeof pseudo);
    }
    sum = checksum_partial(icmp, icmp_len, sum);
    store16(icmp + 2, checksum_fold(sum));
}

} // namespace evenflow::net
