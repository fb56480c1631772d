// Parsing of the value forms in values.hpp: durations and listen addresses.
#include "config/values.hpp"

#include "net/addr.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace evenflow::config {

std::optional<duration> parse_duration(std::string_view text) {
    size_t i = 0;
    const size_t n = text.size();
    auto is_digit = [&](size_t at) {
        return at < n && text[at] >= '0' && text[at] <= '9';
    };

    // At most 12 integer digits keep every product below in range of int64 milliseconds.
    uint64_t whole = 0;
    size_t whole_digits = 0;
    for (; is_digit(i); ++i, ++whole_digits) {
        if (whole_digits == 12) {
            return std::nullopt;
        }
        whole = whole * 10 + uint64_t(text[i] - '0');
    }
    if (whole_digits == 0) {
        return std::nullopt;
    }
    uint64_t frac = 0, frac_scale = 1;
    if (i < n && text[i] == '.') {
        ++i;
        size_t frac_digits = 0;
        for (; is_digit(i); ++i, ++frac_digits) {
            if (frac_digits == 9) {
                return std::nullopt;
            }
            frac = frac * 10 + uint64_t(text[i] - '0');
            frac_scale *= 10;
        }
        if (frac_digits == 0) {
            return std::nullopt;
        }
    }
    auto unit = text.substr(i);
    uint64_t unit_ms = 0;
    if (unit == "ms") {
        unit_ms = 1;
    } else if (unit == "s") {
        unit_ms = 1000;
    } else if (unit == "m") {
        unit_ms = 60'000;
    } else if (unit == "h") {
        unit_ms = 3'600'000;
    } else {
        return std::nullopt;
    }
    const uint64_t frac_ms = frac * unit_ms;
    if (frac_ms % frac_scale != 0) {
        return std::nullopt; // finer than a millisecond
    }
    return duration(int64_t(whole * unit_ms + frac_ms / frac_scale));
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string kernel_interface_name_error(std::string_view name) {
    // IFNAMSIZ is 16 with the terminating NUL; dev_valid_name() in the kernel says the rest.
    constexpr size_t max_length = 15;
    if (name.empty() || name.size() > max_length) {
        return fmt::format("\"{}\" is {} bytes; a Linux interface name has 1 to {}", name,
                           name.size(), max_length);
    }
    if (name == "." || name == "..") {
        return fmt::format("\"{}\" cannot name an interface", name);
    }
    for (char c : name) {
        if (c == '/' || c == ':' || c <= ' ' || c == 0x7f) {
            return fmt::format("\"{}\" has a character interface names cannot have ('/', ':', "
                               "space or a control character)",
                               name);
        }
    }
    return {};
}

bool valid_listen_address(std::string_view text) {
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find("]:");
        if (close == std::string_view::npos) {
            return false;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        auto addr = net::ip_addr::parse(host);
        if (!addr || addr->is_v4()) {
            return false;
        }
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return false;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host != "localhost") {
            auto addr = net::ip_addr::parse(host);
            if (!addr || !addr->is_v4()) {
                return false;
            }
        }
    }
    if (!all_digits(port) || port.size() > 5) {
        return false;
    }
    unsigned value = 0;
    for (char c : port) {
        value = value * 10 + unsigned(c - '0');
    }
    return value >= 1 && value <= 65535;
}

} // namespace evenflow::config
