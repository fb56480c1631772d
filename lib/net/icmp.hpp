// ICMP errors about a TCP flow through the balancer: destination unreachable (with
// "fragmentation needed", which Path MTU Discovery lives on) and time exceeded. The
// packet an error quotes names the flow; translating the error like the flow itself
// (the VIP on one side, the backend on the other) lets it reach the host that sent
// the quoted packet. IPv4 and IPv6.
#pragma once

#include "net/addr.hpp"
#include "net/flow_key.hpp"
#include "net/parse.hpp"

#include <cstdint>
#include <span>

namespace evenflow::net {

// The packet an ICMP error quotes, as it is in the error.
struct icmp_quote {
    flow_key key;           // quoted addresses and TCP ports (network order), proto
    uint16_t l3_offset = 0; // of the quoted IP header, in the frame
    uint16_t l4_offset = 0; // of the quoted TCP header
    uint16_t l4_quoted = 0; // bytes of it the error carries (at least 8)
};

// True for an ICMPv4 error (type 3 or 11) or ICMPv6 error (type 1, 2 or 3) that quotes
// a TCP packet of the same family with at least its ports.
bool read_icmp_error(std::span<const uint8_t> frame, const packet_meta& meta, icmp_quote& out);

// Translates an error for one side of a NATed flow, in place:
//  - the quoted packet's `quoted_side` address and port become (addr, port_be), with
//    its IPv4 header checksum and, when quoted far enough, its TCP checksum updated;
//  - the outer `outer_side` address becomes `outer_addr` (IPv4 header checksum
//    updated);
//  - the ICMP checksum is computed again over the message (it covers the quote, and
//    for ICMPv6 the outer addresses too).
// meta.key follows the outer change.
enum class icmp_side : uint8_t { source, destination };
void rewrite_icmp_error(std::span<uint8_t> frame, packet_meta& meta, const icmp_quote& quote,
                        icmp_side quoted_side, const ip_addr& addr, uint16_t port_be,
                        icmp_side outer_side, const ip_addr& outer_addr);

} // namespace evenflow::net
