// Internet checksum helpers (RFC 1071) and incremental update (RFC 1624).
#pragma once

#include <cstddef>
#include <cstdint>

namespace evenflow::net {

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), applied to a run of 16-bit words that
// changed from `old_data` to `new_data` (both `len` bytes, len even). Works on the
// checksum as stored in the header (network byte order in, network byte order out).
uint16_t checksum_update(uint16_t checksum, const void* old_data, const void* new_data, size_t len);

// RFC 1624 eqn. 3 with the difference already summed: HC' = ~(~HC + diff), where
// diff is the unfolded sum of ~m + m' over the changed words (any number of them,
// all loaded in the same byte order as the checksum).
inline uint16_t checksum_apply(uint16_t checksum, uint64_t diff) {
    uint64_t acc = uint64_t(uint16_t(~checksum)) + diff;
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    return uint16_t(~acc);
}

// Same for one 16-bit word (e.g. a port, the TTL), both values in network byte
// order. Inline: it runs for every forwarded packet.
inline uint16_t checksum_update16(uint16_t checksum, uint16_t old_word, uint16_t new_word) {
    uint32_t acc = uint32_t(uint16_t(~checksum)) + uint16_t(~old_word) + new_word;
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    return uint16_t(~acc);
}

// Full computation over a buffer (ones' complement sum, folded, not inverted).
// Chain calls by passing the previous result as `sum`; only the last piece may have
// an odd length (an odd byte is padded with zero as the end of the data).
uint32_t checksum_partial(const void* data, size_t len, uint32_t sum = 0);
uint16_t checksum_fold(uint32_t sum); // fold to 16 bits and invert

} // namespace evenflow::net
