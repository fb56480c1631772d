// The diagnostics-reporting TOML getters of toml_reader.hpp.
#include "config/toml_reader.hpp"

#include "config/values.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace evenflow::config {

namespace {

std::string_view type_phrase(toml::node_type t) {
    switch (t) {
    case toml::node_type::table:
        return "a table";
    case toml::node_type::array:
        return "an array";
    case toml::node_type::string:
        return "a string";
    case toml::node_type::integer:
        return "an integer";
    case toml::node_type::floating_point:
        return "a float";
    case toml::node_type::boolean:
        return "a boolean";
    case toml::node_type::date:
        return "a date";
    case toml::node_type::time:
        return "a time";
    case toml::node_type::date_time:
        return "a date-time";
    case toml::node_type::none:
        break;
    }
    return "nothing";
}

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) {
        d[i][0] = i;
    }
    for (size_t j = 0; j <= b.size(); ++j) {
        d[0][j] = j;
    }
    for (size_t i = 1; i <= a.size(); ++i) {
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

bool valid_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

} // namespace

std::string diagnostic::to_string() const {
    std::string out = file;
    if (line != 0) {
        out += column != 0 ? fmt::format(":{}:{}", line, column) : fmt::format(":{}", line);
    }
    out += level == severity::error ? ": error: " : ": warning: ";
    if (!key.empty()) {
        out += key;
        out += ": ";
    }
    out += message;
    return out;
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, so

// "wieght" is one edit from "weight".

std::string_view closest(std::string_view word, std::span<const std::string_view> candidates) {
    std::string_view best;
    size_t best_distance = 3;
    for (std::string_view c : candidates) {
        size_t dist = edit_distance(word, c);
        if (dist < best_distance && dist < std::max(word.size(), c.size())) {
            best = c;
            best_distance = dist;
        }
    }
    return best;
}

std::string join(const std::vector<std::string_view>& items, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
        if (i != 0) {
            out += sep;
        }
        out += items[i];
    }
    return out;
}

std::string child(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

std::string element(const std::string& path, size_t i) {
    return fmt::format("{}[{}]", path, i);
}

namespace {

std::vector<diagnostic> sorted_by_position(std::vector<diagnostic> found) {
    std::stable_sort(found.begin(), found.end(), [](const diagnostic& a, const diagnostic& b) {
        return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    return found;
}

} // namespace

std::vector<diagnostic> toml_reader::take_errors() {
    return sorted_by_position(std::move(m_errors));
}

std::vector<diagnostic> toml_reader::take_warnings() {
    return sorted_by_position(std::move(m_warnings));
}

void toml_reader::report(severity level, const toml::source_region& where, std::string key,
                         std::string message) {
    auto& sink = level == severity::error ? m_errors : m_warnings;
    sink.push_back(diagnostic{level, m_file, uint32_t(where.begin.line),
                              uint32_t(where.begin.column), std::move(key), std::move(message)});
}

void toml_reader::error(const toml::node& at, std::string key, std::string message) {
    report(severity::error, at.source(), std::move(key), std::move(message));
}

void toml_reader::warning(const toml::node& at, std::string key, std::string message) {
    report(severity::warning, at.source(), std::move(key), std::move(message));
}

void toml_reader::check_keys(const toml::table& table, const std::string& path,
                             std::span<const std::string_view> known) {
    for (auto&& [key, value] : table) {
        (void)value;
        std::string_view name = key.str();
        if (std::find(known.begin(), known.end(), name) != known.end()) {
            continue;
        }
        auto hint = closest(name, known);
        if (!hint.empty()) {
            m_hinted.insert(child(path, hint));
        }
        std::string message =
            hint.empty()
                ? fmt::format("unknown key \"{}\"; allowed here: {}", name,
                              join(std::vector<std::string_view>(known.begin(), known.end()), ", "))
                : fmt::format("unknown key \"{}\"; did you mean \"{}\"?", name, hint);
        report(severity::error, key.source(), child(path, name), std::move(message));
    }
}

const toml::node* toml_reader::member(const toml::table& table, std::string_view key,
                                      const std::string& path, std::string_view example) {
    const toml::node* node = table.get(key);
    // A misspelt key already says "did you mean"; its "missing" twin would be noise.
    if (node == nullptr && !example.empty() && m_hinted.count(child(path, key)) == 0) {
        error(table, child(path, key),
              fmt::format("required key is missing; add e.g. {}", example));
    }
    return node;
}

void toml_reader::type_error(const toml::node& node, const std::string& path,
                             std::string_view expected) {
    error(node, path, fmt::format("expected {}, got {}", expected, type_phrase(node.type())));
}

std::optional<std::string> toml_reader::get_string(const toml::node& node,
                                                   const std::string& path) {
    if (auto* s = node.as_string()) {
        return s->get();
    }
    type_error(node, path, "a string");
    return std::nullopt;
}

std::optional<int64_t> toml_reader::get_integer(const toml::node& node, const std::string& path) {
    if (auto* i = node.as_integer()) {
        return i->get();
    }
    if (auto* s = node.as_string(); s != nullptr && all_digits(s->get())) {
        error(node, path, "expected an integer, got a string; remove the quotes");
    } else {
        type_error(node, path, "an integer");
    }
    return std::nullopt;
}

std::optional<uint32_t> toml_reader::get_uint(const toml::node& node, const std::string& path,
                                              std::string_view name, int64_t lo, int64_t hi) {
    auto value = get_integer(node, path);
    if (!value) {
        return std::nullopt;
    }
    if (*value < lo || *value > hi) {
        if (hi == bounds::uint32_max && *value < lo) {
            error(node, path, fmt::format("{} {} must be at least {}", name, *value, lo));
        } else {
            error(node, path,
                  fmt::format("{} {} is out of range; use {}..{}", name, *value, lo, hi));
        }
        return std::nullopt;
    }
    return uint32_t(*value);
}

std::optional<uint16_t> toml_reader::get_port(const toml::node& node, const std::string& path) {
    auto value = get_uint(node, path, "port", 1, 65535);
    return value ? std::optional<uint16_t>(uint16_t(*value)) : std::nullopt;
}

std::optional<double> toml_reader::get_number(const toml::node& node, const std::string& path) {
    if (auto* f = node.as_floating_point()) {
        return f->get();
    }
    if (auto* i = node.as_integer()) {
        return double(i->get());
    }
    type_error(node, path, "a number");
    return std::nullopt;
}

std::optional<duration> toml_reader::get_duration(const toml::node& node, const std::string& path,
                                                  bool allow_zero, duration max) {
    auto* s = node.as_string();
    if (s == nullptr) {
        type_error(node, path, "a duration string such as \"5s\"");
        return std::nullopt;
    }
    const std::string& text = s->get();
    auto value = parse_duration(text);
    if (!value) {
        if (!text.empty() && text.front() == '-') {
            error(node, path,
                  fmt::format("\"{}\" is negative; durations must be positive, e.g. \"5s\"", text));
        } else {
            error(node, path,
                  fmt::format("\"{}\" is not a duration; write a number and a unit (ms, s, "
                              "m or h), e.g. \"5s\" or \"1.5s\"",
                              text));
        }
        return std::nullopt;
    }
    if (!allow_zero && value->count() == 0) {
        error(node, path, fmt::format("\"{}\" is zero; use a positive duration", text));
        return std::nullopt;
    }
    if (*value > max) {
        error(node, path,
              fmt::format("\"{}\" is longer than {}, the most this setting takes", text,
                          format_duration(max)));
        return std::nullopt;
    }
    return value;
}

std::optional<net::ip_addr> toml_reader::get_address(const toml::node& node,
                                                     const std::string& path) {
    auto text = get_string(node, path);
    if (!text) {
        return std::nullopt;
    }
    auto addr = net::ip_addr::parse(*text);
    if (!addr) {
        error(node, path,
              fmt::format("\"{}\" is not an IP address; write e.g. \"10.20.0.11\" or "
                          "\"2001:db8::11\"",
                          *text));
    }
    return addr;
}

std::optional<std::string> toml_reader::get_name(const toml::node& node, const std::string& path) {
    auto name = get_string(node, path);
    if (!name) {
        return std::nullopt;
    }
    if (name->empty()) {
        error(node, path, "name is empty; give it a short name such as \"web\"");
        return std::nullopt;
    }
    if (!valid_name(*name)) {
        error(node, path,
              fmt::format("name \"{}\" may contain only letters, digits, '.', '_' and '-'", *name));
        return std::nullopt;
    }
    return name;
}

const toml::table* toml_reader::get_table(const toml::node& node, const std::string& path) {
    if (auto* t = node.as_table()) {
        return t;
    }
    type_error(node, path, "a table");
    return nullptr;
}

const toml::array* toml_reader::get_array(const toml::node& node, const std::string& path) {
    if (auto* a = node.as_array()) {
        return a;
    }
    type_error(node, path, "an array");
    return nullptr;
}

const toml::node* toml_reader::read_duration(const toml::table& table, const std::string& path,
                                             std::string_view key, duration& out, bool allow_zero,
                                             duration max) {
    auto* n = member(table, key, path);
    if (n != nullptr) {
        if (auto v = get_duration(*n, child(path, key), allow_zero, max)) {
            out = *v;
        }
    }
    return n;
}

} // namespace evenflow::config
