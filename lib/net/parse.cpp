#include "net/parse.hpp"

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <type_traits>

namespace evenflow::net {

std::string_view to_string(drop_reason reason) {
    static constexpr std::string_view names[] = {
#define EVENFLOW_NAME(name) #name,
        EVENFLOW_DROP_REASONS(EVENFLOW_NAME)
#undef EVENFLOW_NAME
    };
    static_assert(std::size(names) == size_t(drop_reason::count_));
    return size_t(reason) < std::size(names) ? names[size_t(reason)] : "unknown";
}

namespace {

// IPv6 extension headers we step over. AH is listed separately because its length
// field counts 4-byte units minus 2, unlike the others (8-byte units minus 1).
constexpr uint8_t ipproto_hop_by_hop = 0;
constexpr uint8_t ipproto_routing = 43;
constexpr uint8_t ipproto_fragment = 44;
constexpr uint8_t ipproto_ah = 51;
constexpr uint8_t ipproto_dest_opts = 60;

// More than this many extension headers is either an attack or a stack we do not
// balance for; bounding the walk keeps the per-packet cost bounded too.
constexpr unsigned max_ipv6_ext = 8;

constexpr size_t arp_ipv4_length = sizeof(rte_arp_hdr); // 28: Ethernet/IPv4 ARP
constexpr size_t arp_fixed_length = 8;                  // htype, ptype, hlen, plen, op
constexpr size_t icmp_header_length = 8;                // type, code, checksum, 4 more

// The wire structs are packed, so a copy is alignment-free; copying (rather than
// casting the byte pointer) also keeps us clear of strict-aliasing questions. The
// compiler turns these fixed-size memcpy calls into plain loads.
template <typename T>
T load(const uint8_t* p) {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// The transport layer, once the IP layer has located it. `l4_end` is the end of the
// IP packet (l3_offset + l3_length), never the end of the frame: Ethernet padding
// after a short IP packet is not part of the segment.
drop_reason parse_l4(const uint8_t* data, size_t l4_end, uint8_t proto, packet_meta& meta) {
    const size_t l4_available = l4_end - meta.l4_offset;
    const uint8_t* l4 = data + meta.l4_offset;
    const bool v6 = meta.l3 == l3_type::ipv6;
    meta.l4_proto = proto;
    meta.key.proto = proto;

    if (proto == ipproto_tcp) {
        if (l4_available < sizeof(rte_tcp_hdr)) {
            return drop_reason::truncated_tcp;
        }
        const auto tcp = load<rte_tcp_hdr>(l4);
        const size_t header_length = size_t(tcp.data_off >> 4) * 4;
        if (header_length < sizeof(rte_tcp_hdr) || header_length > l4_available) {
            return drop_reason::bad_tcp_data_offset;
        }
        // Ports stay in network byte order: the flow key is hashed as on the wire.
        meta.key.src_port = tcp.src_port;
        meta.key.dst_port = tcp.dst_port;
        meta.tcp_flags = tcp.tcp_flags;
        meta.payload_offset = uint16_t(meta.l4_offset + header_length);
        return drop_reason::none;
    }
    if ((proto == ipproto_icmp && !v6) || (proto == ipproto_icmpv6 && v6)) {
        if (l4_available < icmp_header_length) {
            return drop_reason::truncated_icmp;
        }
        const auto icmp = load<rte_icmp_hdr>(l4);
        meta.icmp_type = icmp.icmp_type;
        meta.icmp_code = icmp.icmp_code;
        return drop_reason::none;
    }
    return drop_reason::unsupported_l4;
}

drop_reason parse_arp(std::span<const uint8_t> frame, packet_meta& meta) {
    const size_t available = frame.size() - meta.l3_offset;
    const uint8_t* p = frame.data() + meta.l3_offset;
    meta.l3 = l3_type::arp;
    // Look at the type fields before demanding 28 bytes: ARP for another hardware or
    // protocol has another length, and calling it truncated would mislead.
    if (available < arp_fixed_length) {
        return drop_reason::truncated_arp;
    }
    const auto hardware = rte_be_to_cpu_16(load<uint16_t>(p));
    const auto protocol = rte_be_to_cpu_16(load<uint16_t>(p + 2));
    if (hardware != RTE_ARP_HRD_ETHER || protocol != RTE_ETHER_TYPE_IPV4 ||
        p[4] != RTE_ETHER_ADDR_LEN || p[5] != 4) {
        return drop_reason::unsupported_arp;
    }
    if (available < arp_ipv4_length) {
        return drop_reason::truncated_arp;
    }
    const auto arp = load<rte_arp_hdr>(p);
    meta.l3_length = uint16_t(arp_ipv4_length);
    meta.key.src = ip_addr::from_v4_be(arp.arp_data.arp_sip);
    meta.key.dst = ip_addr::from_v4_be(arp.arp_data.arp_tip);
    return drop_reason::none;
}

drop_reason parse_ipv4(std::span<const uint8_t> frame, packet_meta& meta) {
    const size_t available = frame.size() - meta.l3_offset;
    const uint8_t* p = frame.data() + meta.l3_offset;
    meta.l3 = l3_type::ipv4;
    if (available < sizeof(rte_ipv4_hdr)) {
        return drop_reason::truncated_ipv4;
    }
    const auto ip = load<rte_ipv4_hdr>(p);
    if ((ip.version_ihl >> 4) != 4) {
        return drop_reason::bad_ipv4_version;
    }
    const size_t header_length = size_t(ip.version_ihl & RTE_IPV4_HDR_IHL_MASK) * 4;
    if (header_length < sizeof(rte_ipv4_hdr) || header_length > available) {
        return drop_reason::bad_ipv4_ihl;
    }
    // The frame may be longer than the packet (Ethernet pads to 60 bytes); it may
    // not be shorter. Everything after this is bounded by total_length.
    const size_t total_length = rte_be_to_cpu_16(ip.total_length);
    if (total_length < header_length || total_length > available) {
        return drop_reason::bad_ipv4_total_length;
    }
    meta.l3_length = uint16_t(total_length);
    meta.ttl = ip.time_to_live;
    meta.has_ip_options = header_length > sizeof(rte_ipv4_hdr);
    meta.key.src = ip_addr::from_v4_be(ip.src_addr);
    meta.key.dst = ip_addr::from_v4_be(ip.dst_addr);
    // Any fragment, first included: later fragments carry no ports, so balancing the
    // first one by its 5-tuple would split a datagram across backends.
    const auto fragment = rte_be_to_cpu_16(ip.fragment_offset);
    if ((fragment & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0) {
        return drop_reason::ip_fragment;
    }
    meta.l4_offset = uint16_t(meta.l3_offset + header_length);
    return parse_l4(frame.data(), meta.l3_offset + total_length, ip.next_proto_id, meta);
}

drop_reason parse_ipv6(std::span<const uint8_t> frame, packet_meta& meta) {
    const size_t available = frame.size() - meta.l3_offset;
    const uint8_t* p = frame.data() + meta.l3_offset;
    meta.l3 = l3_type::ipv6;
    if (available < sizeof(rte_ipv6_hdr)) {
        return drop_reason::truncated_ipv6;
    }
    const auto ip = load<rte_ipv6_hdr>(p);
    if ((rte_be_to_cpu_32(ip.vtc_flow) >> 28) != 6) {
        return drop_reason::bad_ipv6_version;
    }
    // Payload length 0 with a Hop-by-Hop jumbo option (RFC 2675) is not supported:
    // it reads as an empty payload and fails at the transport header.
    const size_t total_length = sizeof(rte_ipv6_hdr) + rte_be_to_cpu_16(ip.payload_len);
    if (total_length > available) {
        return drop_reason::bad_ipv6_payload_length;
    }
    meta.l3_length = uint16_t(total_length);
    meta.ttl = ip.hop_limits;
    meta.key.src = ip_addr::from_v6(ip.src_addr);
    meta.key.dst = ip_addr::from_v6(ip.dst_addr);

    // Walk the extension header chain. Every header is checked against the end of
    // the IP payload before any of it is read. The order RFC 8200 recommends is
    // not enforced: a misordered chain is still a chain we can follow.
    const size_t end = meta.l3_offset + total_length;
    size_t offset = meta.l3_offset + sizeof(rte_ipv6_hdr);
    uint8_t next = ip.proto;
    for (unsigned walked = 0;; ++walked) {
        const bool is_ext = next == ipproto_hop_by_hop || next == ipproto_routing ||
                            next == ipproto_dest_opts || next == ipproto_ah ||
                            next == ipproto_fragment;
        if (!is_ext) {
            break;
        }
        if (walked == max_ipv6_ext) {
            return drop_reason::too_many_ipv6_ext;
        }
        meta.has_ip_options = true;
        if (end - offset < 2) {
            return drop_reason::truncated_ipv6_ext;
        }
        const uint8_t* ext = frame.data() + offset;
        size_t length;
        if (next == ipproto_fragment) {
            length = sizeof(rte_ipv6_fragment_ext);
        } else if (next == ipproto_ah) {
            length = (size_t(ext[1]) + 2) * 4; // RFC 4302: 32-bit words minus 2
        } else {
            length = (size_t(ext[1]) + 1) * 8; // RFC 8200: 8-octet units minus 1
        }
        if (end - offset < length) {
            return drop_reason::truncated_ipv6_ext;
        }
        // Atomic fragments (offset 0, no MF) are reported too: they are rare, and
        // treating every Fragment header alike keeps the rule simple to state.
        if (next == ipproto_fragment) {
            return drop_reason::ip_fragment;
        }
        next = ext[0];
        offset += length;
    }
    meta.l4_offset = uint16_t(offset);
    return parse_l4(frame.data(), end, next, meta);
}

} // namespace

drop_reason parse_frame(std::span<const uint8_t> frame, packet_meta& meta) {
    meta = packet_meta{};
    if (frame.size() < sizeof(rte_ether_hdr)) {
        return drop_reason::truncated_ethernet;
    }
    // Every offset in packet_meta is 16-bit. Frames that long do not reach us (no
    // TSO/LRO), but if one did, looking at its first 64 KiB keeps the offsets exact
    // and the length checks below refuse whatever does not fit.
    frame = frame.first(std::min<size_t>(frame.size(), UINT16_MAX));
    const auto eth = load<rte_ether_hdr>(frame.data());
    uint16_t ethertype = rte_be_to_cpu_16(eth.ether_type);
    size_t offset = sizeof(rte_ether_hdr);
    if (ethertype == RTE_ETHER_TYPE_VLAN) {
        if (frame.size() < offset + sizeof(rte_vlan_hdr)) {
            return drop_reason::truncated_vlan;
        }
        const auto vlan = load<rte_vlan_hdr>(frame.data() + offset);
        meta.has_vlan = true;
        meta.vlan_tci = rte_be_to_cpu_16(vlan.vlan_tci);
        ethertype = rte_be_to_cpu_16(vlan.eth_proto);
        offset += sizeof(rte_vlan_hdr);
    }
    // A second tag (QinQ, or 802.1ad outer tags) lands here as an unknown
    // ethertype: the ports we serve are access ports with at most one tag.
    meta.ethertype = ethertype;
    meta.l3_offset = uint16_t(offset);
    switch (ethertype) {
    case RTE_ETHER_TYPE_IPV4:
        return parse_ipv4(frame, meta);
    case RTE_ETHER_TYPE_IPV6:
        return parse_ipv6(frame, meta);
    case RTE_ETHER_TYPE_ARP:
        return parse_arp(frame, meta);
    default:
        return drop_reason::unsupported_ethertype;
    }
}

} // namespace evenflow::net
