#include "net/nat.hpp"

#include "net/bytes.hpp"
#include "net/checksum.hpp"

#include <cassert>
#include <cstring>

namespace evenflow::net {

namespace {

// Offsets inside the headers; TCP's checksum is at byte 16 for both families.
constexpr size_t ipv4_checksum_offset = 10;
constexpr size_t ipv4_src_offset = 12;
constexpr size_t ipv4_dst_offset = 16;
constexpr size_t ipv6_src_offset = 8;
constexpr size_t ipv6_dst_offset = 24;
constexpr size_t tcp_src_port_offset = 0;
constexpr size_t tcp_dst_port_offset = 2;
constexpr size_t tcp_checksum_offset = 16;

} // namespace

void nat_rewrite(std::span<uint8_t> frame, packet_meta& meta, nat_side side, const ip_addr& addr,
                 uint16_t port_be) {
    const bool v6 = meta.l3 == l3_type::ipv6;
    assert(meta.l3 == l3_type::ipv4 || v6);
    assert(meta.l4_proto == ipproto_tcp);
    assert(addr.is_v4() != v6);
    assert(size_t(meta.l4_offset) + tcp_checksum_offset + 2 <= frame.size());

    const bool src = side == nat_side::source;
    uint8_t* l3 = frame.data() + meta.l3_offset;
    uint8_t* l4 = frame.data() + meta.l4_offset;
    uint8_t* field = l3 + (v6 ? (src ? ipv6_src_offset : ipv6_dst_offset)
                              : (src ? ipv4_src_offset : ipv4_dst_offset));
    uint8_t* port = l4 + (src ? tcp_src_port_offset : tcp_dst_port_offset);
    // ip_addr holds IPv4 behind the ::ffff: prefix, so its last four bytes are the wire form.
    const uint8_t* new_field = v6 ? addr.bytes.data() : addr.bytes.data() + 12;
    const size_t field_length = v6 ? 16 : 4;

    // Checksums first: the updates read the old bytes, so they must run before the
    // fields are overwritten. The address is in TCP's pseudo-header for both families.
    if (!v6) {
        // Per packet on the forwarding path: the address's difference (RFC 1624
        // eqn. 3, ~m + m') is computed once and applied to both checksums.
        const uint32_t old_addr = load32(field);
        const uint32_t new_addr = load32(new_field);
        const uint64_t addr_diff = uint64_t(uint16_t(~old_addr)) + uint16_t(~old_addr >> 16) +
                                   uint16_t(new_addr) + uint16_t(new_addr >> 16);
        const uint64_t port_diff = uint64_t(uint16_t(~load16(port))) + port_be;
        store16(l3 + ipv4_checksum_offset,
                checksum_apply(load16(l3 + ipv4_checksum_offset), addr_diff));
        store16(l4 + tcp_checksum_offset,
                checksum_apply(load16(l4 + tcp_checksum_offset), addr_diff + port_diff));
    } else {
        uint16_t tcp_sum = load16(l4 + tcp_checksum_offset);
        tcp_sum = checksum_update(tcp_sum, field, new_field, field_length);
        tcp_sum = checksum_update16(tcp_sum, load16(port), port_be);
        store16(l4 + tcp_checksum_offset, tcp_sum);
    }

    if (v6) {
        std::memcpy(field, new_field, 16);
    } else {
        std::memcpy(field, new_field, 4); // constant sizes: moves, not a call
    }
    store16(port, port_be);
    if (src) {
        meta.key.src = addr;
        meta.key.src_port = port_be;
    } else {
        meta.key.dst = addr;
        meta.key.dst_port = port_be;
    }
}

} // namespace evenflow::net
