// The hash that picks a new connection's backend, keyed by a secret the fleet shares
// ([dataplane] hash_seed), so that nobody outside can compute which tuples land on
// which backend and aim a flood, or a skew, at one of them.
//
// Why not CRC32-C with a seed (the flow table's hash): CRC is affine in its seed,
// crc(seed, m) = crc(seed, 0...) ^ crc(0, m), so tuples that collide without a seed
// collide under every seed, and they are found offline by linear algebra. Why not
// SipHash: a PRF, but ~110 instructions for a 5-tuple even at 1-3 rounds, +5% per new
// connection in the instruction gate. This is NH (UMAC, RFC 4418's inner hash): for
// 64-bit words w_i = (lo_i, hi_i), sum of (lo_i + k_2i) * (hi_i + k_2i+1) mod 2^64,
// with 32-bit additions; two distinct inputs of the same length collide with
// probability 2^-32 over the key. The sum then goes through MurmurHash3's 64-bit
// finalizer, so that its low bits (what `hash % table size` uses) depend on all of it.
// An attacker who never sees the key cannot craft colliding tuples offline. NH is
// universal, not a PRF: one who observes very many picks (which backend answered
// which tuple) learns something of the key; a new seed, set fleet-wide with a
// restart, starts that over.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace evenflow::net {

// 128 bits, written as 32 hex digits (`openssl rand -hex 16`).
struct hash_seed {
    uint64_t hi = 0, lo = 0;
    bool operator==(const hash_seed&) const = default;
    static std::optional<hash_seed> parse(std::string_view hex);
    std::string to_hex() const;
    // From the system's entropy (getrandom).
    static hash_seed random();
};

class pick_key {
public:
    static constexpr size_t max_words = 5; // a flow_key is 40 bytes

    // The key of the all-zero seed: a fixed, public one (what tests and tools use
    // when they do not care which backend a tuple picks, only that picks agree).
    pick_key() : pick_key(hash_seed{}) {}
    explicit pick_key(const hash_seed& seed);

    // Hashes `n` (<= max_words) 64-bit words.
    uint32_t hash(const uint64_t* words, size_t n) const {
        uint64_t acc = m_start;
        for (size_t i = 0; i < n; ++i) {
            const uint32_t lo = uint32_t(words[i]) + m_k[2 * i];
            const uint32_t hi = uint32_t(words[i] >> 32) + m_k[2 * i + 1];
            acc += uint64_t(lo) * hi;
        }
        acc ^= acc >> 33;
        acc *= 0xff51afd7ed558ccdull;
        acc ^= acc >> 33;
        acc *= 0xc4ceb9fe1a85ec53ull;
        acc ^= acc >> 33;
        return uint32_t(acc);
    }

private:
    std::array<uint32_t, 2 * max_words> m_k{};
    uint64_t m_start = 0;
};

} // namespace evenflow::net
