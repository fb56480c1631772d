// In-place NAT rewrite of TCP/IP packets with incremental checksum updates.
#pragma once

#include "net/addr.hpp"
#include "net/parse.hpp"

#include <cstdint>
#include <span>

namespace evenflow::net {

enum class nat_side : uint8_t { source, destination };

// Rewrites the address and TCP port on one side of a parsed IPv4 or IPv6 TCP packet.
// IPv4: header checksum and TCP checksum (pseudo-header + port) updated per RFC 1624.
// IPv6: TCP checksum only (no IP header checksum). `port_be` is network byte order.
// Preconditions: parse_frame returned none for `frame`, meta.l4_proto is TCP, and
// `addr` is of the packet's family. `meta.key` is updated to match.
void nat_rewrite(std::span<uint8_t> frame, packet_meta& meta, nat_side side, const ip_addr& addr,
                 uint16_t port_be);

} // namespace evenflow::net
