#include "net/checksum.hpp"

#include <cstring>

namespace evenflow::net {

namespace {

// Folds end-around carries until the sum fits in 16 bits (RFC 1071 section 4.1).
uint32_t fold16(uint64_t sum) {
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return uint32_t(sum);
}

} // namespace

// Words are loaded in host byte order and the result is stored the same way: the
// ones' complement sum commutes with byte swapping (RFC 1071 section 2 (B)), so the
// result comes out in network order without a swap per word.
uint32_t checksum_partial(const void* data, size_t len, uint32_t sum) {
    const auto* p = static_cast<const uint8_t*>(data);
    // A 64-bit accumulator takes 2^32 32-bit words before it can overflow, so the
    // carries are folded once at the end rather than per word.
    uint64_t acc = sum;
    for (; len >= 8; len -= 8, p += 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        acc += w & 0xffffffffu;
        acc += w >> 32;
    }
    for (; len >= 2; len -= 2, p += 2) {
        uint16_t w;
        std::memcpy(&w, p, 2);
        acc += w;
    }
    if (len == 1) {
        // The odd byte is the high-order byte of a word padded with zero, i.e. the
        // byte at the lower address: load it through memory for byte-order independence.
        uint8_t last[2] = {*p, 0};
        uint16_t w;
        std::memcpy(&w, last, 2);
        acc += w;
    }
    return fold16(acc);
}

uint16_t checksum_fold(uint32_t sum) {
    return uint16_t(~fold16(sum));
}

// RFC 1624 eqn. 3 rather than eqn. 2 (HC' = HC - ~m - m'): subtraction can produce
// 0xffff (-0) where a full computation gives 0x0000; adding complements cannot.
uint16_t checksum_update(uint16_t checksum, const void* old_data, const void* new_data,
                         size_t len) {
    const auto* o = static_cast<const uint8_t*>(old_data);
    const auto* n = static_cast<const uint8_t*>(new_data);
    uint64_t acc = uint16_t(~checksum);
    for (size_t i = 0; i + 1 < len; i += 2) {
        uint16_t ow, nw;
        std::memcpy(&ow, o + i, 2);
        std::memcpy(&nw, n + i, 2);
        acc += uint16_t(~ow);
        acc += nw;
    }
    return uint16_t(~fold16(acc));
}

} // namespace evenflow::net
