// Value forms a config is written in, and the documented bounds of its numbers.
// Used by the loader and by anything else that reads the same forms (evenctl's
// options, the state directory's files).
#pragma once

#include "config/config.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace evenflow::config {

// Parses "5s", "500ms", "1.5s", "2m", "1h"; nullopt otherwise (including negatives).
std::optional<duration> parse_duration(std::string_view text);

// Non-empty and only ASCII digits.
bool all_digits(std::string_view s);

// "" or HOST:PORT where HOST is "localhost", an IPv4 address or a bracketed IPv6 address.
bool valid_listen_address(std::string_view text);

// Why `name` cannot be a Linux interface name (1 to 15 bytes, none of them '/', ':',
// whitespace or control characters, not "." or ".."); "" when it can.
std::string kernel_interface_name_error(std::string_view name);

// Bounds the loader enforces; README's configuration reference lists the same ranges.
namespace bounds {
inline constexpr uint32_t max_lcore = 1023;
inline constexpr int64_t min_flow_capacity = 1024;
inline constexpr int64_t max_flow_capacity = int64_t(1) << 26;
// Maglev slots per backend at least, so a backend's share is within ~1% of its weight.
inline constexpr uint32_t table_slots_per_backend = 100;
inline constexpr int64_t uint32_max = std::numeric_limits<uint32_t>::max();
// A Maglev table: the largest prime below 2^20 slots (4 MiB); every table of a host
// together at most 2^28 slots (1 GiB).
inline constexpr uint32_t max_table_size = 1'048'573;
inline constexpr uint64_t max_table_slots = uint64_t(1) << 28;
inline constexpr size_t max_services = 16'384;
inline constexpr size_t max_pools = 16'384;
inline constexpr size_t max_backends_per_pool = 10'000;
// Backends of all services together: the backend id space (ids are 16-bit).
inline constexpr size_t max_backends = 65'535;
inline constexpr uint32_t max_rise_fall = 100;
// Durations: flow timeouts are kept in 32-bit milliseconds by the workers.
inline constexpr duration max_duration = std::chrono::hours(24);
inline constexpr duration max_short_duration =
    std::chrono::hours(1); // syn, closing, probes, window
} // namespace bounds

} // namespace evenflow::config
