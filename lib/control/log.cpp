#include "control/log.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>

namespace evenflow::control {

namespace {

std::string quoted_if_needed(const std::string& v) {
    if (!v.empty() && v.find_first_of(" \"=\t") == std::string::npos) {
        return v;
    }
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
        }
        out.push_back(c == '\n' ? ' ' : c);
    }
    out.push_back('"');
    return out;
}

std::string format_line(std::string_view level, std::string_view event,
                        std::span<const log_field> fields) {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
    std::string line =
        fmt::format("ts={:%Y-%m-%dT%H:%M:%S}.{:03d}Z level={} event={}",
                    std::chrono::floor<std::chrono::seconds>(now), ms.count(), level, event);
    for (const auto& [key, value] : fields) {
        line += fmt::format(" {}={}", key, quoted_if_needed(value));
    }
    line.push_back('\n');
    return line;
}

void write_out(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
}

} // namespace

void log_event(std::string_view level, std::string_view event, std::span<const log_field> fields) {
    write_out(format_line(level, event, fields));
}

void log_batch::add(std::string_view level, std::string_view event,
                    std::initializer_list<log_field> fields) {
    m_text += format_line(level, event, std::span<const log_field>(fields.begin(), fields.size()));
}

log_batch::~log_batch() {
    if (!m_text.empty()) {
        write_out(m_text);
    }
}

} // namespace evenflow::control
