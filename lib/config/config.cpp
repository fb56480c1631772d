#include "config/config.hpp"

#include <fmt/format.h>

namespace evenflow::config {

const pool_config* config::find_pool(std::string_view name) const {
    for (const auto& p : pools) {
        if (p.name == name) {
            return &p;
        }
    }
    return nullptr;
}

const service_config* config::find_service(std::string_view name) const {
    for (const auto& s : services) {
        if (s.name == name) {
            return &s;
        }
    }
    return nullptr;
}

std::string format_duration(duration d) {
    auto ms = d.count();
    if (ms < 0) {
        return "-" + format_duration(duration(-ms));
    }
    if (ms == 0) {
        return "0s";
    }
    if (ms % 3'600'000 == 0) {
        return fmt::format("{}h", ms / 3'600'000);
    }
    if (ms % 60'000 == 0) {
        return fmt::format("{}m", ms / 60'000);
    }
    if (ms % 1000 == 0) {
        return fmt::format("{}s", ms / 1000);
    }
    if (ms < 1000) {
        return fmt::format("{}ms", ms);
    }
    // Whole milliseconds as decimal seconds, trailing zeros dropped: 1500 -> "1.5s".
    auto frac = fmt::format("{:03}", ms % 1000);
    while (frac.back() == '0') {
        frac.pop_back();
    }
    return fmt::format("{}.{}s", ms / 1000, frac);
}

std::string to_string(hash_mode m) {
    return std::string(name_of(m));
}

std::string to_string(forward_mode m) {
    return std::string(name_of(m));
}

std::string to_string(health_kind k) {
    return std::string(name_of(k));
}

std::string to_string(skew_action a) {
    return std::string(name_of(a));
}

std::string to_string(const metrics_backends& m) {
    switch (m.which) {
    case metrics_backends::kind::all:
        return "all";
    case metrics_backends::kind::alarmed:
        return "alarmed";
    case metrics_backends::kind::top:
        return std::to_string(m.top);
    }
    return "unknown";
}

std::string format_endpoint(const net::ip_addr& addr, uint16_t port) {
    if (addr.is_v4()) {
        return fmt::format("{}:{}", addr.to_string(), port);
    }
    return fmt::format("[{}]:{}", addr.to_string(), port);
}

} // namespace evenflow::config
