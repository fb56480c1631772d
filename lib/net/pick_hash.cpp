#include "net/pick_hash.hpp"

#include <fmt/format.h>

#include <charconv>
#include <random>

namespace evenflow::net {

namespace {

// SplitMix64 (Steele, Lea, Flood 2014): expands the seed into the key's words.
uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

std::optional<uint64_t> hex64(std::string_view sixteen) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(sixteen.data(), sixteen.data() + sixteen.size(), v, 16);
    if (ec != std::errc{} || end != sixteen.data() + sixteen.size()) {
        return std::nullopt;
    }
    return v;
}

} // namespace

std::optional<hash_seed> hash_seed::parse(std::string_view hex) {
    if (hex.size() != 32) {
        return std::nullopt;
    }
    auto hi = hex64(hex.substr(0, 16));
    auto lo = hex64(hex.substr(16));
    if (!hi || !lo) {
        return std::nullopt;
    }
    return hash_seed{*hi, *lo};
}

std::string hash_seed::to_hex() const {
    return fmt::format("{:016x}{:016x}", hi, lo);
}

hash_seed hash_seed::random() {
    std::random_device entropy; // getrandom(2) on Linux
    auto word = [&] {
        return uint64_t(entropy()) << 32 | entropy();
    };
    hash_seed s;
    s.hi = word();
    s.lo = word();
    return s;
}

pick_key::pick_key(const hash_seed& seed) {
    // Two streams, one per half of the seed, so every word depends on all 128 bits.
    uint64_t a = seed.hi;
    uint64_t b = seed.lo ^ 0x6a09e667f3bcc908ull;
    auto next = [&] {
        uint64_t x = splitmix64(a);
        uint64_t y = splitmix64(b);
        return x ^ (y << 32 | y >> 32);
    };
    for (size_t i = 0; i < m_k.size(); i += 2) {
        uint64_t w = next();
        m_k[i] = uint32_t(w);
        m_k[i + 1] = uint32_t(w >> 32);
    }
    m_start = next();
}

} // namespace evenflow::net
