#include "net/tunnel.hpp"

#include "net/bytes.hpp"
#include "net/checksum.hpp"

#include <arpa/inet.h>

namespace evenflow::net {

void write_ipip_header(uint8_t* outer, const uint8_t* inner, uint16_t inner_length,
                       const ip_addr& src, const ip_addr& dst) {
    constexpr uint16_t dont_fragment = 0x4000;
    outer[0] = 0x45;     // IPv4, 20-byte header
    outer[1] = inner[1]; // DSCP and ECN travel with the packet (RFC 6040, normal mode)
    store16(outer + 2, htons(uint16_t(inner_length + ipip_overhead)));
    store16(outer + 4, 0);
    store16(outer + 6, load16(inner + 6) & htons(dont_fragment));
    outer[8] = 64;
    outer[9] = ipproto_ipip;
    store16(outer + 10, 0);
    store32(outer + 12, src.v4_be());
    store32(outer + 16, dst.v4_be());
    store16(outer + 10, checksum_fold(checksum_partial(outer, ipip_overhead)));
}

} // namespace evenflow::net
