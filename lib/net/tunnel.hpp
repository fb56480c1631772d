// Encapsulation for tunnel mode (direct server return): the client's IP packet,
// unchanged, inside an outer IPv4 header to the backend (IPIP, protocol 4), as
// Linux's ipip/tunl0 devices, IPVS-TUN and Katran decapsulate it. Pure bytes.
#pragma once

#include "net/addr.hpp"

#include <cstddef>
#include <cstdint>

namespace evenflow::net {

inline constexpr uint8_t ipproto_ipip = 4;
inline constexpr size_t ipip_overhead = 20;

// Writes the outer IPv4 header at `outer` for the `inner_length`-byte IPv4 packet
// that follows it at `inner`: DSCP/ECN and DF copied from the inner header (so path
// MTU discovery keeps working end to end), TTL 64, identification 0, checksum set.
void write_ipip_header(uint8_t* outer, const uint8_t* inner, uint16_t inner_length,
                       const ip_addr& src, const ip_addr& dst);

} // namespace evenflow::net
