#include "net/addr.hpp"

#include <arpa/inet.h>

#include <fmt/format.h>

namespace evenflow::net {

std::optional<ip_addr> ip_addr::parse(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
        return std::nullopt;
    }
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';

    uint32_t v4;
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        return from_v4_be(v4);
    }
    uint8_t v6[16];
    if (inet_pton(AF_INET6, buf, v6) == 1) {
        return from_v6(v6);
    }
    return std::nullopt;
}

std::string ip_addr::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    if (is_v4()) {
        inet_ntop(AF_INET, &bytes[12], buf, sizeof buf);
    } else {
        inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
    }
    return buf;
}

std::optional<ip_prefix> ip_prefix::parse(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    auto addr = ip_addr::parse(text.substr(0, slash));
    if (!addr) {
        return std::nullopt;
    }
    auto len_text = text.substr(slash + 1);
    if (len_text.empty() || len_text.size() > 3) {
        return std::nullopt;
    }
    unsigned len = 0;
    for (char c : len_text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        len = len * 10 + unsigned(c - '0');
    }
    if (len > (addr->is_v4() ? 32u : 128u)) {
        return std::nullopt;
    }
    return ip_prefix{*addr, uint8_t(len)};
}

std::string ip_prefix::to_string() const {
    return fmt::format("{}/{}", addr.to_string(), length);
}

} // namespace evenflow::net
