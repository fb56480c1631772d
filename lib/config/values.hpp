// Value forms a config is written in, and the documented bounds of its numbers.
// Used by the loader and by anything else that reads the same forms (evenctl's
// options, the state directory's files).
#pragma once

#include "config/config.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace evenflow::config {

// Parses "5s", "500ms", "1.5s", "2m", "1h"; nullopt otherwise (including negatives).
std::optional<duration> parse_duration(std::string_view text);

// Non-empty and only ASCII digits.
bool all_digits(std::string_view s);

// "" or HOST:PORT where HOST is "localhost", an IPv4 address or a bracketed IPv6 address.
bool valid_listen_address(std::string_view text);

// Bounds the loader enforces; README's configuration reference lists the same ranges.
namespace bounds {
inline constexpr uint32_t max_lcore = 1023;
inline constexpr int64_t min_flow_capacity = 1024;
inline constexpr int64_t max_flow_capacity = int64_t(1) << 26;
// Maglev slots per backend at least, so a backend's share is within ~1% of its weight.
inline constexpr uint32_t table_slots_per_backend = 100;
inline constexpr int64_t uint32_max = std::numeric_limits<uint32_t>::max();
} // namespace bounds

} // namespace evenflow::config
