#include "net/reply.hpp"

#include "net/bytes.hpp"
#include "net/checksum.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace evenflow::net {

namespace {

constexpr uint8_t reply_ttl = 64;

void swap_macs(uint8_t* frame) {
    uint8_t tmp[6];
    std::memcpy(tmp, frame, 6);
    std::memcpy(frame, frame + 6, 6);
    std::memcpy(frame + 6, tmp, 6);
}

void swap_bytes(uint8_t* a, uint8_t* b, size_t n) {
    std::swap_ranges(a, a + n, b);
}

bool is_v6(const packet_meta& meta) {
    return meta.l3 == l3_type::ipv6;
}

// Offset of the address pair in the IP header, and its length.
size_t address_offset(const packet_meta& meta) {
    return meta.l3_offset + (is_v6(meta) ? 8 : 12);
}
size_t address_length(const packet_meta& meta) {
    return is_v6(meta) ? 16 : 4;
}

uint32_t pseudo_header_sum(const uint8_t* frame, const packet_meta& meta, size_t l4_length) {
    uint32_t sum = checksum_partial(frame + address_offset(meta), 2 * address_length(meta));
    uint8_t tail[4] = {0, 0, 0, ipproto_tcp};
    if (!is_v6(meta)) {
        // IPv4: zero, protocol, 16-bit TCP length.
        uint8_t v4tail[4] = {0, ipproto_tcp, uint8_t(l4_length >> 8), uint8_t(l4_length)};
        return checksum_partial(v4tail, 4, sum);
    }
    uint8_t len[4] = {uint8_t(l4_length >> 24), uint8_t(l4_length >> 16), uint8_t(l4_length >> 8),
                      uint8_t(l4_length)};
    sum = checksum_partial(len, 4, sum);
    return checksum_partial(tail, 4, sum);
}

void set_ipv4_header_checksum(uint8_t* ip) {
    store16(ip + 10, 0);
    size_t ihl = size_t(ip[0] & 0x0f) * 4;
    store16(ip + 10, checksum_fold(checksum_partial(ip, ihl)));
}

} // namespace

uint16_t tcp_checksum(std::span<const uint8_t> frame, const packet_meta& meta) {
    size_t l4_length = size_t(meta.l3_offset) + meta.l3_length - meta.l4_offset;
    const uint8_t* tcp = frame.data() + meta.l4_offset;
    uint32_t sum = pseudo_header_sum(frame.data(), meta, l4_length);
    // Sum the segment with its checksum field taken as zero.
    sum = checksum_partial(tcp, 16, sum);
    sum = checksum_partial(tcp + 18, l4_length - 18, sum);
    return checksum_fold(sum);
}

size_t make_tcp_reset(std::span<uint8_t> frame, const packet_meta& meta) {
    uint8_t* p = frame.data();
    uint8_t* tcp = p + meta.l4_offset;
    uint8_t flags = meta.tcp_flags;
    if (flags & tcp_flag::rst) {
        return 0;
    }
    size_t header_length = size_t(tcp[12] >> 4) * 4;
    size_t payload_length =
        size_t(meta.l3_offset) + meta.l3_length - meta.l4_offset - header_length;
    uint32_t seq = ntohl(load32(tcp + 4));
    uint32_t ack = ntohl(load32(tcp + 8));

    // RFC 793, "Reset Generation": if the incoming segment has an ACK, the RST takes
    // its sequence number from that ACK; otherwise it has sequence zero and
    // acknowledges everything the segment occupied (SYN and FIN count as one each).
    uint32_t rst_seq = 0;
    uint32_t rst_ack = 0;
    uint8_t rst_flags = tcp_flag::rst;
    if (flags & tcp_flag::ack) {
        rst_seq = ack;
    } else {
        rst_ack = seq + uint32_t(payload_length) + ((flags & tcp_flag::syn) ? 1 : 0) +
                  ((flags & tcp_flag::fin) ? 1 : 0);
        rst_flags |= tcp_flag::ack;
    }

    swap_macs(p);
    size_t alen = address_length(meta);
    swap_bytes(p + address_offset(meta), p + address_offset(meta) + alen, alen);
    swap_bytes(tcp, tcp + 2, 2);
    store32(tcp + 4, htonl(rst_seq));
    store32(tcp + 8, htonl(rst_ack));
    tcp[12] = uint8_t(5 << 4); // no options
    tcp[13] = rst_flags;
    store16(tcp + 14, 0); // window
    store16(tcp + 18, 0); // urgent pointer

    size_t l4_length = 20;
    size_t l3_length = size_t(meta.l4_offset) - meta.l3_offset + l4_length;
    uint8_t* ip = p + meta.l3_offset;
    if (is_v6(meta)) {
        store16(ip + 4, htons(uint16_t(meta.l4_offset - meta.l3_offset - 40 + l4_length)));
        ip[7] = reply_ttl;
    } else {
        store16(ip + 2, htons(uint16_t(l3_length)));
        store16(ip + 4, 0); // identification
        store16(ip + 6, 0); // no fragmentation flags
        ip[8] = reply_ttl;
        set_ipv4_header_checksum(ip);
    }
    packet_meta out = meta;
    out.l3_length = uint16_t(l3_length);
    store16(tcp + 16, 0);
    store16(tcp + 16, tcp_checksum(frame, out));
    return size_t(meta.l4_offset) + l4_length;
}

bool make_echo_reply(std::span<uint8_t> frame, const packet_meta& meta) {
    uint8_t* p = frame.data();
    uint8_t* icmp = p + meta.l4_offset;
    uint8_t reply_type;
    if (meta.l3 == l3_type::ipv4 && meta.l4_proto == ipproto_icmp && meta.icmp_type == 8) {
        reply_type = 0;
    } else if (meta.l3 == l3_type::ipv6 && meta.l4_proto == ipproto_icmpv6 &&
               meta.icmp_type == 128) {
        reply_type = 129;
    } else {
        return false;
    }
    swap_macs(p);
    size_t alen = address_length(meta);
    // Swapping source and destination leaves the ICMPv6 pseudo-header sum unchanged.
    swap_bytes(p + address_offset(meta), p + address_offset(meta) + alen, alen);
    uint16_t old_word = load16(icmp);
    icmp[0] = reply_type;
    store16(icmp + 2, checksum_update16(load16(icmp + 2), old_word, load16(icmp)));

    uint8_t* ip = p + meta.l3_offset;
    if (is_v6(meta)) {
        ip[7] = reply_ttl;
    } else {
        uint16_t old_ttl_word = load16(ip + 8);
        ip[8] = reply_ttl;
        store16(ip + 10, checksum_update16(load16(ip + 10), old_ttl_word, load16(ip + 8)));
    }
    return true;
}

size_t build_arp(std::span<uint8_t> out, uint16_t op, const mac_addr& sender_mac,
                 const ip_addr& sender_ip, const mac_addr& target_mac, const ip_addr& target_ip) {
    if (out.size() < arp_frame_length) {
        return 0;
    }
    uint8_t* p = out.data();
    static constexpr mac_addr broadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    bool to_all = target_mac == mac_addr{};
    std::memcpy(p, to_all ? broadcast.data() : target_mac.data(), 6);
    std::memcpy(p + 6, sender_mac.data(), 6);
    store16(p + 12, htons(0x0806));
    uint8_t* arp = p + 14;
    store16(arp, htons(1));          // Ethernet
    store16(arp + 2, htons(0x0800)); // IPv4
    arp[4] = 6;
    arp[5] = 4;
    store16(arp + 6, htons(op));
    std::memcpy(arp + 8, sender_mac.data(), 6);
    store32(arp + 14, sender_ip.v4_be());
    std::memcpy(arp + 18, target_mac.data(), 6);
    store32(arp + 24, target_ip.v4_be());
    return arp_frame_length;
}

size_t build_tcp_syn(std::span<uint8_t> out, const mac_addr& src_mac, const mac_addr& dst_mac,
                     const ip_addr& src, const ip_addr& dst, uint16_t src_port, uint16_t dst_port,
                     uint32_t seq) {
    if (out.size() < tcp_syn_frame_length || !src.is_v4() || !dst.is_v4()) {
        return 0;
    }
    uint8_t* p = out.data();
    std::memset(p, 0, tcp_syn_frame_length);
    std::memcpy(p, dst_mac.data(), 6);
    std::memcpy(p + 6, src_mac.data(), 6);
    store16(p + 12, htons(0x0800));
    uint8_t* ip = p + 14;
    ip[0] = 0x45;
    store16(ip + 2, htons(40));
    store16(ip + 6, htons(0x4000)); // don't fragment
    ip[8] = reply_ttl;
    ip[9] = ipproto_tcp;
    store32(ip + 12, src.v4_be());
    store32(ip + 16, dst.v4_be());
    set_ipv4_header_checksum(ip);
    uint8_t* tcp = ip + 20;
    store16(tcp, htons(src_port));
    store16(tcp + 2, htons(dst_port));
    store32(tcp + 4, htonl(seq));
    tcp[12] = uint8_t(5 << 4);
    tcp[13] = tcp_flag::syn;
    store16(tcp + 14, htons(1024)); // window
    packet_meta meta;
    meta.l3 = l3_type::ipv4;
    meta.l3_offset = 14;
    meta.l4_offset = 34;
    meta.l3_length = 40;
    store16(tcp + 16, tcp_checksum({p, tcp_syn_frame_length}, meta));
    return tcp_syn_frame_length;
}

bool read_arp(std::span<const uint8_t> frame, const packet_meta& meta, arp_fields& out) {
    if (meta.l3 != l3_type::arp || frame.size() < size_t(meta.l3_offset) + 28) {
        return false;
    }
    const uint8_t* arp = frame.data() + meta.l3_offset;
    out.op = ntohs(load16(arp + 6));
    std::memcpy(out.sender_mac.data(), arp + 8, 6);
    out.sender_ip = ip_addr::from_v4_be(load32(arp + 14));
    std::memcpy(out.target_mac.data(), arp + 18, 6);
    out.target_ip = ip_addr::from_v4_be(load32(arp + 24));
    return true;
}

bool make_arp_reply(std::span<uint8_t> frame, const packet_meta& meta, const mac_addr& our_mac) {
    arp_fields arp;
    if (!read_arp(frame, meta, arp) || arp.op != arp_op_request) {
        return false;
    }
    uint8_t* p = frame.data();
    std::memcpy(p, arp.sender_mac.data(), 6); // back to the requester
    std::memcpy(p + 6, our_mac.data(), 6);
    uint8_t* a = p + meta.l3_offset;
    store16(a + 6, htons(arp_op_reply));
    std::memcpy(a + 8, our_mac.data(), 6);
    store32(a + 14, arp.target_ip.v4_be());
    std::memcpy(a + 18, arp.sender_mac.data(), 6);
    store32(a + 24, arp.sender_ip.v4_be());
    return true;
}

} // namespace evenflow::net
