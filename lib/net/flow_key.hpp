// The 5-tuple that identifies one direction of a flow, and its hash.
#pragma once

#include "net/addr.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace evenflow::net {

// Fixed 40-byte layout with explicit zero padding so that memcmp and hashing over
// the whole struct are well defined. Ports are in network byte order, as on the wire.
struct alignas(8) flow_key {
    ip_addr src;
    ip_addr dst;
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    uint8_t proto = 0;
    uint8_t pad[3] = {};

    bool operator==(const flow_key& other) const {
        return std::memcmp(this, &other, sizeof *this) == 0;
    }
    // The key of the packets that travel the other way.
    flow_key reversed() const {
        flow_key r;
        r.src = dst;
        r.dst = src;
        r.src_port = dst_port;
        r.dst_port = src_port;
        r.proto = proto;
        return r;
    }
};
static_assert(sizeof(flow_key) == 40);

// CRC32-C, eight bytes at a time. Deterministic across hosts and runs, so balancers
// behind ECMP that share a backend set pick the same backend. Header-only and free of
// EAL so that evenctl can predict shares without linking DPDK.
inline uint32_t crc32c(const void* data, size_t len, uint32_t seed) {
    const auto* p = static_cast<const uint8_t*>(data);
    uint64_t crc = seed;
#if defined(__SSE4_2__)
    for (; len >= 8; len -= 8, p += 8) {
        uint64_t word;
        std::memcpy(&word, p, 8);
        crc = _mm_crc32_u64(crc, word);
    }
    for (; len > 0; --len, ++p) {
        crc = _mm_crc32_u8(uint32_t(crc), *p);
    }
#else
    // Bitwise Castagnoli CRC for targets without the instruction; same results.
    for (; len > 0; --len, ++p) {
        crc ^= *p;
        for (int bit = 0; bit < 8; ++bit) {
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - uint32_t(crc & 1)));
        }
    }
#endif
    return uint32_t(crc);
}

inline uint32_t flow_hash(const flow_key& key, uint32_t seed = 0x9e3779b9u) {
    return crc32c(&key, sizeof key, seed);
}

} // namespace evenflow::net
