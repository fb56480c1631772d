// IP addresses as the data plane and the config share them: IPv4 is held as an
// IPv4-mapped IPv6 address (::ffff:a.b.c.d) so one 16-byte type serves both families.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace evenflow::net {

enum class ip_family : uint8_t { v4 = 4, v6 = 6 };

struct ip_addr {
    // Network byte order. IPv4 lives in bytes 12..15 behind the ::ffff: prefix.
    std::array<uint8_t, 16> bytes{};

    static ip_addr from_v4_be(uint32_t v4_network_order) {
        ip_addr a;
        a.bytes[10] = 0xff;
        a.bytes[11] = 0xff;
        std::memcpy(&a.bytes[12], &v4_network_order, 4);
        return a;
    }
    static ip_addr from_v6(const uint8_t* sixteen_bytes) {
        ip_addr a;
        std::memcpy(a.bytes.data(), sixteen_bytes, 16);
        return a;
    }
    // Parses dotted-quad IPv4 or RFC 4291 IPv6 text; nullopt when it is neither.
    static std::optional<ip_addr> parse(std::string_view text);

    bool is_v4() const {
        static constexpr uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return std::memcmp(bytes.data(), prefix, sizeof prefix) == 0;
    }
    ip_family family() const { return is_v4() ? ip_family::v4 : ip_family::v6; }
    uint32_t v4_be() const {
        uint32_t v;
        std::memcpy(&v, &bytes[12], 4);
        return v;
    }
    bool is_unspecified() const { return *this == ip_addr{}; }

    std::string to_string() const;

    auto operator<=>(const ip_addr&) const = default;
    // Two 64-bit compares: the defaulted form calls memcmp, and this is on the
    // per-packet path (service and neighbor lookups).
    bool operator==(const ip_addr& other) const {
        uint64_t a[2], b[2];
        std::memcpy(a, bytes.data(), 16);
        std::memcpy(b, other.bytes.data(), 16);
        return ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
    }
};

// An address with a prefix length, e.g. an interface's "10.10.0.2/24".
struct ip_prefix {
    ip_addr addr;
    uint8_t length = 0; // in the address's own family: 0..32 for IPv4, 0..128 for IPv6

    static std::optional<ip_prefix> parse(std::string_view text);
    bool contains(const ip_addr& other) const {
        if (addr.is_v4() != other.is_v4()) {
            return false;
        }
        // Compare in the 128-bit space (IPv4 sits behind the 96-bit mapped prefix),
        // as two big-endian halves under a mask: per packet when routing.
        unsigned bits = addr.is_v4() ? 96u + length : length;
        uint64_t high_mask = bits >= 64  ? ~uint64_t(0)
                             : bits == 0 ? 0
                                         : ~uint64_t(0) << (64 - bits);
        uint64_t low_mask = bits <= 64    ? 0
                            : bits >= 128 ? ~uint64_t(0)
                                          : ~uint64_t(0) << (128 - bits);
        uint64_t a[2], b[2];
        std::memcpy(a, addr.bytes.data(), 16);
        std::memcpy(b, other.bytes.data(), 16);
        return ((__builtin_bswap64(a[0] ^ b[0]) & high_mask) |
                (__builtin_bswap64(a[1] ^ b[1]) & low_mask)) == 0;
    }
    std::string to_string() const;
    bool operator==(const ip_prefix&) const = default;
};

} // namespace evenflow::net
