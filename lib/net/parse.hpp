// One-pass, bounds-checked parsing of a frame into typed metadata.
#pragma once

#include "net/flow_key.hpp"

#include <cstdint>
#include <span>
#include <string_view>

namespace evenflow::net {

// X(name): every drop reason, in counter order (none first); the names double as
// metric labels and CLI output, equal to the enumerators so that grepping the code
// for a counter finds its source.
#define EVENFLOW_DROP_REASONS(X)                                                                   \
    X(none)                                                                                        \
    X(truncated_ethernet)      /* shorter than an Ethernet header */                               \
    X(truncated_vlan)          /* 802.1Q tag cut short */                                          \
    X(unsupported_ethertype)   /* not IPv4, IPv6 or ARP */                                         \
    X(truncated_arp)           /* ARP shorter than an Ethernet/IPv4 ARP */                         \
    X(unsupported_arp)         /* ARP for another hardware/protocol type */                        \
    X(truncated_ipv4)          /* shorter than 20 bytes */                                         \
    X(bad_ipv4_version)        /* version field is not 4 */                                        \
    X(bad_ipv4_ihl)            /* IHL < 5 or header longer than the frame */                       \
    X(bad_ipv4_total_length)   /* total length < IHL*4 or longer than the frame */                 \
    X(bad_ipv4_checksum)       /* header checksum does not verify (checked by the worker) */       \
    X(truncated_ipv6)          /* shorter than 40 bytes */                                         \
    X(bad_ipv6_version)        /* version field is not 6 */                                        \
    X(bad_ipv6_payload_length) /* payload length longer than the frame */                          \
    X(truncated_ipv6_ext)      /* an extension header runs past the payload */                     \
    X(too_many_ipv6_ext)       /* more extension headers than we walk */                           \
    X(ip_fragment)             /* IPv4 fragment or IPv6 Fragment header: not balanced */           \
    X(truncated_tcp)           /* shorter than 20 bytes */                                         \
    X(bad_tcp_data_offset)     /* data offset < 5 or past the IP payload */                        \
    X(truncated_icmp)          /* ICMP/ICMPv6 shorter than its 8-byte header */                    \
    X(unsupported_l4)          /* neither TCP nor ICMP */                                          \
    /* Verdicts of the worker rather than the parser, counted in the same array. */                \
    X(not_for_us)           /* destination is neither a VIP, a flow nor our address */             \
    X(no_backend)           /* service has no backend up */                                        \
    X(flow_table_full)      /* informational: forwarded statelessly, not dropped */                \
    X(no_neighbor)          /* next hop unresolved and its wait queue full */                      \
    X(tx_full)              /* TX ring did not accept the packet */                                \
    X(ttl_exceeded)         /* TTL/hop limit would reach zero */                                   \
    X(ip_options)           /* IPv4 options on a packet to forward: dropped, as Katran does */     \
    X(chained_mbuf)         /* frame split over several buffers: headers may straddle them */      \
    X(control_ring_full)    /* slow path (ARP, unresolved next hop, probe replies) backed up */    \
    X(handoff_full)         /* the ring to the worker that owns the connection was full */         \
    X(control_budget)       /* over the worker's budget for that kind of slow-path packet */       \
    X(not_our_mac)          /* unicast frame for another MAC (a promiscuous port) */               \
    X(vlan_mismatch)        /* a tag the interface does not carry, or none where it does */        \
    X(reply_on_client_side) /* a backend's source arriving on a client-facing port */              \
    X(not_a_probe_reply)    /* TCP to our address that answers no probe of ours */                 \
    X(icmp_no_flow)         /* an ICMP error about a flow no entry knows */                        \
    X(tunnel_too_big)       /* encapsulated it would exceed the backend side's MTU */              \
    X(no_headroom)          /* no room in the buffer for the tunnel header */                      \
    X(gateway_not_held)     /* to a vrrp gateway's MAC while another host holds it */

// Why a frame is not processed. Every value is a counter in the worker; `count_` is
// last. Malformed input maps to one of these, never to a read past the end.
enum class drop_reason : uint8_t {
#define EVENFLOW_ENUMERATOR(name) name,
    EVENFLOW_DROP_REASONS(EVENFLOW_ENUMERATOR)
#undef EVENFLOW_ENUMERATOR
        count_
};

std::string_view to_string(drop_reason reason);

enum class l3_type : uint8_t { none, arp, ipv4, ipv6 };

// TCP flag bits as on the wire (byte 13 of the TCP header).
namespace tcp_flag {
inline constexpr uint8_t fin = 0x01;
inline constexpr uint8_t syn = 0x02;
inline constexpr uint8_t rst = 0x04;
inline constexpr uint8_t psh = 0x08;
inline constexpr uint8_t ack = 0x10;
} // namespace tcp_flag

inline constexpr uint8_t ipproto_icmp = 1;
inline constexpr uint8_t ipproto_tcp = 6;
inline constexpr uint8_t ipproto_icmpv6 = 58;

// Offsets are from the start of the frame. Filled by parse_frame; fields past the
// layer at which parsing stopped are left zero. In particular: key addresses, ttl and
// l3_length are set once the IP header is validated (also for ip_fragment and later
// drops); l4_offset, l4_proto and key.proto once the transport header is located
// (also for unsupported_l4 and truncated_*); ports and tcp_flags only for TCP that
// parsed. ARP sets key.src/dst to the sender/target protocol addresses, l3_length 28.
struct packet_meta {
    l3_type l3 = l3_type::none;
    uint8_t l4_proto = 0; // IPPROTO_* of the transport header reached
    bool has_vlan = false;
    bool has_ip_options = false; // IPv4 IHL > 5, or IPv6 extension headers walked
    uint16_t vlan_tci = 0;       // host order, valid when has_vlan
    uint16_t ethertype = 0;      // host order, the inner ethertype after any VLAN tag
    uint16_t l3_offset = 0;
    uint16_t l4_offset = 0;
    uint16_t payload_offset = 0; // TCP payload (l4_offset + data offset * 4); TCP only
    uint16_t l3_length = 0;      // IPv4 total length, or 40 + IPv6 payload length
    uint8_t ttl = 0;             // TTL or hop limit
    uint8_t tcp_flags = 0;
    uint8_t icmp_type = 0;
    uint8_t icmp_code = 0;
    flow_key key; // src/dst addresses, ports (TCP), proto
};

// Parses Ethernet, one optional 802.1Q tag, then ARP, IPv4 (options skipped,
// fragments reported as ip_fragment) or IPv6 (Hop-by-Hop, Routing, Destination
// Options and AH walked, at most 8; Fragment reported as ip_fragment), then TCP or
// ICMP/ICMPv6. A second VLAN tag (QinQ, 802.1ad) is unsupported_ethertype. Bytes after
// the IP packet (Ethernet padding) are allowed and ignored: everything from L4 on is
// bounded by l3_length, not the frame. Only the first 65535 bytes are looked at
// (offsets are 16-bit). The IPv4 header checksum is not verified here.
// Returns drop_reason::none on success; on failure `meta` holds what was parsed so far.
// No allocation, no exceptions; `meta` is reset first.
drop_reason parse_frame(std::span<const uint8_t> frame, packet_meta& meta);

} // namespace evenflow::net
