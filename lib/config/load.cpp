// Reading a config: TOML parse (toml++), schema check, semantic validation.
//
// The loader walks the parsed document once, filling a config and collecting a
// diagnostic for everything wrong (unknown keys, wrong types, bad values), then runs
// the cross-checks (references, uniqueness, table sizes) on whatever parsed. Nothing
// stops at the first error: one `evenctl check` run should list every problem.
#include "config/load.hpp"

#include <toml++/toml.h>

#include <fmt/format.h>

#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

namespace evenflow::config {

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

namespace {

__extension__ typedef unsigned __int128 u128;

uint64_t mul_mod(uint64_t a, uint64_t b, uint64_t m) {
    return uint64_t(u128(a) * b % m);
}

uint64_t pow_mod(uint64_t base, uint64_t exp, uint64_t m) {
    uint64_t result = 1;
    base %= m;
    while (exp != 0) {
        if (exp & 1) {
            result = mul_mod(result, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    return result;
}

} // namespace

bool is_prime(uint64_t n) {
    if (n < 2) {
        return false;
    }
    static constexpr uint64_t bases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
    for (uint64_t p : bases) {
        if (n % p == 0) {
            return n == p;
        }
    }
    // Miller-Rabin with these bases is deterministic for every 64-bit n.
    uint64_t d = n - 1;
    unsigned r = 0;
    while ((d & 1) == 0) {
        d >>= 1;
        ++r;
    }
    for (uint64_t a : bases) {
        uint64_t x = pow_mod(a, d, n);
        if (x == 1 || x == n - 1) {
            continue;
        }
        bool composite = true;
        for (unsigned i = 1; i < r; ++i) {
            x = mul_mod(x, x, n);
            if (x == n - 1) {
                composite = false;
                break;
            }
        }
        if (composite) {
            return false;
        }
    }
    return true;
}

namespace {

constexpr uint32_t max_lcore = 1023;
constexpr int64_t min_flow_capacity = 1024;
constexpr int64_t max_flow_capacity = int64_t(1) << 26;
constexpr uint32_t table_slots_per_backend = 100;
constexpr size_t max_socket_path = sizeof(sockaddr_un::sun_path) - 1;
constexpr int64_t uint32_max = std::numeric_limits<uint32_t>::max();

uint64_t next_prime(uint64_t n) {
    while (!is_prime(n)) {
        ++n;
    }
    return n;
}

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

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, so
// "wieght" is one edit from "weight".
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

// The closest candidate within two edits, or empty.
template <class Range>
std::string_view closest(std::string_view word, const Range& candidates) {
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

bool valid_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "" or HOST:PORT where HOST is "localhost", an IPv4 address or a bracketed IPv6 address.
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

// Where a pool's or service's values came from, for the checks that span entries.
struct backend_source {
    const toml::table* table = nullptr;
    bool address_ok = false;
    bool port_ok = false;
};

struct pool_source {
    const toml::table* table = nullptr;
    const toml::node* backends = nullptr;
    bool name_ok = false;
    std::optional<std::string> raw_name; // the name string even when it is invalid
    std::vector<backend_source> backends_src;
};

struct service_source {
    const toml::table* table = nullptr;
    const toml::node* vip = nullptr;
    const toml::node* pool = nullptr;
    const toml::node* table_size = nullptr;
    bool vip_ok = false;
    bool port_ok = false;
    bool pool_ok = false;
    bool table_size_ok = true; // the default is valid
};

class loader {
public:
    explicit loader(std::string file) : _file(std::move(file)) {}

    load_result run(const toml::table& root) {
        _config.source_path = _file;
        read_root(root);
        check_services();

        auto by_position = [](const diagnostic& a, const diagnostic& b) {
            return std::pair(a.line, a.column) < std::pair(b.line, b.column);
        };
        std::stable_sort(_errors.begin(), _errors.end(), by_position);
        std::stable_sort(_warnings.begin(), _warnings.end(), by_position);

        load_result result;
        if (_errors.empty()) {
            result.value = std::move(_config);
        }
        result.errors = std::move(_errors);
        result.warnings = std::move(_warnings);
        return result;
    }

private:
    std::string _file;
    config _config;
    std::vector<diagnostic> _errors;
    std::vector<diagnostic> _warnings;
    std::vector<pool_source> _pool_src;
    std::vector<service_source> _service_src;
    std::set<std::string> _hinted; // known keys that an unknown key was a near miss of

    // ---- reporting

    void report(severity level, const toml::source_region& where, std::string key,
                std::string message) {
        auto& sink = level == severity::error ? _errors : _warnings;
        sink.push_back(diagnostic{level, _file, uint32_t(where.begin.line),
                                  uint32_t(where.begin.column), std::move(key),
                                  std::move(message)});
    }
    void error(const toml::node& at, std::string key, std::string message) {
        report(severity::error, at.source(), std::move(key), std::move(message));
    }
    void warning(const toml::node& at, std::string key, std::string message) {
        report(severity::warning, at.source(), std::move(key), std::move(message));
    }

    // ---- schema helpers

    void check_keys(const toml::table& table, const std::string& path,
                    std::initializer_list<std::string_view> known) {
        for (auto&& [key, value] : table) {
            (void)value;
            std::string_view name = key.str();
            if (std::find(known.begin(), known.end(), name) != known.end()) {
                continue;
            }
            auto hint = closest(name, known);
            if (!hint.empty()) {
                _hinted.insert(child(path, hint));
            }
            std::string message =
                hint.empty() ? fmt::format("unknown key \"{}\"; allowed here: {}", name,
                                           join(std::vector<std::string_view>(known), ", "))
                             : fmt::format("unknown key \"{}\"; did you mean \"{}\"?", name, hint);
            report(severity::error, key.source(), child(path, name), std::move(message));
        }
    }

    // The value under `key`, or null. A missing required key (non-empty `example`) is
    // reported at the enclosing table.
    const toml::node* member(const toml::table& table, std::string_view key,
                             const std::string& path, std::string_view example = {}) {
        const toml::node* node = table.get(key);
        // A misspelt key already says "did you mean"; its "missing" twin would be noise.
        if (node == nullptr && !example.empty() && _hinted.count(child(path, key)) == 0) {
            error(table, child(path, key),
                  fmt::format("required key is missing; add e.g. {}", example));
        }
        return node;
    }

    void type_error(const toml::node& node, const std::string& path, std::string_view expected) {
        error(node, path, fmt::format("expected {}, got {}", expected, type_phrase(node.type())));
    }

    std::optional<std::string> get_string(const toml::node& node, const std::string& path) {
        if (auto* s = node.as_string()) {
            return s->get();
        }
        type_error(node, path, "a string");
        return std::nullopt;
    }

    std::optional<int64_t> get_integer(const toml::node& node, const std::string& path) {
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

    // An integer in lo..hi; `name` is how the message calls it.
    std::optional<uint32_t> get_uint(const toml::node& node, const std::string& path,
                                     std::string_view name, int64_t lo, int64_t hi) {
        auto value = get_integer(node, path);
        if (!value) {
            return std::nullopt;
        }
        if (*value < lo || *value > hi) {
            if (hi == uint32_max && *value < lo) {
                error(node, path, fmt::format("{} {} must be at least {}", name, *value, lo));
            } else {
                error(node, path,
                      fmt::format("{} {} is out of range; use {}..{}", name, *value, lo, hi));
            }
            return std::nullopt;
        }
        return uint32_t(*value);
    }

    std::optional<uint16_t> get_port(const toml::node& node, const std::string& path) {
        auto value = get_uint(node, path, "port", 1, 65535);
        return value ? std::optional<uint16_t>(uint16_t(*value)) : std::nullopt;
    }

    std::optional<double> get_number(const toml::node& node, const std::string& path) {
        if (auto* f = node.as_floating_point()) {
            return f->get();
        }
        if (auto* i = node.as_integer()) {
            return double(i->get());
        }
        type_error(node, path, "a number");
        return std::nullopt;
    }

    // A duration string; zero only where it means something (`allow_zero`).
    std::optional<duration> get_duration(const toml::node& node, const std::string& path,
                                         bool allow_zero) {
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
                      fmt::format("\"{}\" is negative; durations must be positive, e.g. \"5s\"",
                                  text));
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
        return value;
    }

    std::optional<net::ip_addr> get_address(const toml::node& node, const std::string& path) {
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

    std::optional<std::string> get_name(const toml::node& node, const std::string& path) {
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
                  fmt::format("name \"{}\" may contain only letters, digits, '.', '_' and '-'",
                              *name));
            return std::nullopt;
        }
        return name;
    }

    const toml::table* get_table(const toml::node& node, const std::string& path) {
        if (auto* t = node.as_table()) {
            return t;
        }
        type_error(node, path, "a table");
        return nullptr;
    }

    const toml::array* get_array(const toml::node& node, const std::string& path) {
        if (auto* a = node.as_array()) {
            return a;
        }
        type_error(node, path, "an array");
        return nullptr;
    }

    // `[[section]]` entries: calls `read(table, path)` for each element that is a table.
    template <class F>
    // `expected` names the form for the message, e.g. "an array of tables ([[pools]])".
    void for_each_entry(const toml::node& node, const std::string& path, std::string_view expected,
                        F&& read) {
        auto* array = node.as_array();
        if (array == nullptr) {
            type_error(node, path, expected);
            return;
        }
        for (size_t i = 0; i < array->size(); ++i) {
            const toml::node& item = *array->get(i);
            auto item_path = element(path, i);
            if (auto* table = get_table(item, item_path)) {
                read(*table, item_path);
            }
        }
    }

    // ---- sections

    void read_root(const toml::table& root) {
        check_keys(root, "",
                   {"eal", "control", "dataplane", "interfaces", "pools", "services", "skew"});
        if (auto* n = member(root, "eal", "")) {
            if (auto* t = get_table(*n, "eal")) {
                read_eal(*t);
            }
        }
        if (auto* n = member(root, "control", "")) {
            if (auto* t = get_table(*n, "control")) {
                read_control(*t);
            }
        }
        if (auto* n = root.get("dataplane")) {
            if (auto* t = get_table(*n, "dataplane")) {
                read_dataplane(*t);
            }
        } else {
            error(root, "dataplane",
                  "required table is missing; add [dataplane] with e.g. workers = [1]");
        }
        if (auto* n = root.get("interfaces")) {
            for_each_entry(
                *n, "interfaces", "an array of tables ([[interfaces]])",
                [&](const toml::table& t, const std::string& p) { read_interface(t, p); });
            if (auto* a = n->as_array(); a != nullptr && a->empty()) {
                error(*n, "interfaces",
                      "no interfaces; add at least one [[interfaces]] with name, device and "
                      "address");
            }
        } else {
            error(root, "interfaces",
                  "required section is missing; add at least one [[interfaces]] with name, "
                  "device and address");
        }
        if (auto* n = root.get("pools")) {
            for_each_entry(*n, "pools", "an array of tables ([[pools]])",
                           [&](const toml::table& t, const std::string& p) { read_pool(t, p); });
        }
        if (auto* n = root.get("services")) {
            for_each_entry(*n, "services", "an array of tables ([[services]])",
                           [&](const toml::table& t, const std::string& p) { read_service(t, p); });
        }
        if (auto* n = root.get("skew")) {
            if (auto* t = get_table(*n, "skew")) {
                read_skew(*t);
            }
        }
    }

    void read_eal(const toml::table& table) {
        const std::string path = "eal";
        check_keys(table, path, {"args"});
        if (auto* n = member(table, "args", path)) {
            auto args_path = child(path, "args");
            if (auto* array = get_array(*n, args_path)) {
                for (size_t i = 0; i < array->size(); ++i) {
                    if (auto arg = get_string(*array->get(i), element(args_path, i))) {
                        _config.eal.args.push_back(*arg);
                    }
                }
            }
        }
    }

    void read_control(const toml::table& table) {
        const std::string path = "control";
        check_keys(table, path, {"socket", "metrics"});
        if (auto* n = member(table, "socket", path)) {
            auto key = child(path, "socket");
            if (auto socket = get_string(*n, key)) {
                if (socket->empty() || socket->front() != '/') {
                    error(*n, key,
                          fmt::format("\"{}\" is not an absolute path; write e.g. "
                                      "\"/run/evenflow/evenflow.sock\"",
                                      *socket));
                } else if (socket->size() > max_socket_path) {
                    error(*n, key,
                          fmt::format("path is {} bytes long; a Unix socket path may have at "
                                      "most {}",
                                      socket->size(), max_socket_path));
                } else {
                    _config.control.socket = *socket;
                }
            }
        }
        if (auto* n = member(table, "metrics", path)) {
            auto key = child(path, "metrics");
            if (auto metrics = get_string(*n, key)) {
                if (!metrics->empty() && !valid_listen_address(*metrics)) {
                    error(*n, key,
                          fmt::format("\"{}\" is not HOST:PORT; write e.g. \"127.0.0.1:9091\", "
                                      "or \"\" to disable metrics",
                                      *metrics));
                } else {
                    _config.control.metrics = *metrics;
                }
            }
        }
    }

    void read_dataplane(const toml::table& table) {
        const std::string path = "dataplane";
        check_keys(table, path, {"workers", "flow_capacity", "timeouts"});
        if (auto* n = member(table, "workers", path, "workers = [1]")) {
            auto key = child(path, "workers");
            if (auto* array = get_array(*n, key)) {
                if (array->empty()) {
                    error(*n, key, "no workers; list at least one lcore, e.g. workers = [1]");
                }
                std::set<uint32_t> seen;
                for (size_t i = 0; i < array->size(); ++i) {
                    const toml::node& item = *array->get(i);
                    auto item_key = element(key, i);
                    auto lcore = get_uint(item, item_key, "lcore", 0, max_lcore);
                    if (!lcore) {
                        continue;
                    }
                    if (!seen.insert(*lcore).second) {
                        error(
                            item, item_key,
                            fmt::format("lcore {} is listed twice; list each worker once", *lcore));
                        continue;
                    }
                    _config.dataplane.workers.push_back(*lcore);
                }
            }
        }
        if (auto* n = member(table, "flow_capacity", path)) {
            if (auto v = get_uint(*n, child(path, "flow_capacity"), "flow_capacity",
                                  min_flow_capacity, max_flow_capacity)) {
                _config.dataplane.flow_capacity = *v;
            }
        }
        if (auto* n = member(table, "timeouts", path)) {
            auto key = child(path, "timeouts");
            if (auto* t = get_table(*n, key)) {
                check_keys(*t, key, {"syn", "established", "closing"});
                auto& timeouts = _config.dataplane.timeouts;
                read_duration(*t, key, "syn", timeouts.syn, false);
                read_duration(*t, key, "established", timeouts.established, false);
                read_duration(*t, key, "closing", timeouts.closing, false);
            }
        }
    }

    // Reads an optional duration into `out`; returns the node when it was present.
    const toml::node* read_duration(const toml::table& table, const std::string& path,
                                    std::string_view key, duration& out, bool allow_zero) {
        auto* n = member(table, key, path);
        if (n != nullptr) {
            if (auto v = get_duration(*n, child(path, key), allow_zero)) {
                out = *v;
            }
        }
        return n;
    }

    void read_interface(const toml::table& table, const std::string& path) {
        check_keys(table, path, {"name", "device", "address", "gateway"});
        interface_config iface;
        bool name_ok = false, device_ok = false, address_ok = false;

        if (auto* n = member(table, "name", path, "name = \"client-side\"")) {
            if (auto name = get_name(*n, child(path, "name"))) {
                iface.name = *name;
                name_ok = true;
            }
        }
        if (auto* n = member(table, "device", path, "device = \"net_af_packet0\"")) {
            auto key = child(path, "device");
            if (auto device = get_string(*n, key)) {
                if (device->empty()) {
                    error(*n, key,
                          "device is empty; write the DPDK port name, e.g. \"net_af_packet0\" "
                          "or \"0000:01:00.0\"");
                } else {
                    iface.device = *device;
                    device_ok = true;
                }
            }
        }
        if (auto* n = member(table, "address", path, "address = \"10.10.0.2/24\"")) {
            auto key = child(path, "address");
            if (auto text = get_string(*n, key)) {
                if (auto prefix = net::ip_prefix::parse(*text)) {
                    iface.address = *prefix;
                    address_ok = true;
                } else if (net::ip_addr::parse(*text)) {
                    error(*n, key,
                          fmt::format("\"{}\" has no prefix length; write e.g. \"{}/24\"", *text,
                                      *text));
                } else {
                    error(*n, key,
                          fmt::format("\"{}\" is not an address with a prefix length; write e.g. "
                                      "\"10.10.0.2/24\"",
                                      *text));
                }
            }
        }
        if (auto* n = member(table, "gateway", path)) {
            auto key = child(path, "gateway");
            if (auto gateway = get_address(*n, key)) {
                if (address_ok && !iface.address.contains(*gateway)) {
                    error(*n, key,
                          fmt::format("gateway {} is outside {}; a gateway must be on the "
                                      "interface's own network",
                                      gateway->to_string(), iface.address.to_string()));
                } else {
                    iface.gateway = *gateway;
                }
            }
        }

        // Uniqueness against the interfaces read so far.
        for (size_t i = 0; i < _config.interfaces.size(); ++i) {
            const auto& other = _config.interfaces[i];
            if (name_ok && other.name == iface.name) {
                error(*table.get("name"), child(path, "name"),
                      fmt::format("interface name \"{}\" is already used by interfaces[{}]; "
                                  "names must be unique",
                                  iface.name, i));
            }
            if (device_ok && other.device == iface.device) {
                error(*table.get("device"), child(path, "device"),
                      fmt::format("device \"{}\" is already used by interfaces[{}]; each "
                                  "interface needs its own port",
                                  iface.device, i));
            }
        }
        if (!name_ok) {
            iface.name.clear(); // never matches a later duplicate check
        }
        if (!device_ok) {
            iface.device.clear();
        }
        _config.interfaces.push_back(std::move(iface));
    }

    void read_pool(const toml::table& table, const std::string& path) {
        check_keys(table, path, {"name", "backends", "health", "drain_timeout"});
        pool_config pool;
        pool_source src;
        src.table = &table;

        if (auto* n = member(table, "name", path, "name = \"web\"")) {
            auto key = child(path, "name");
            if (auto* raw = n->as_string()) {
                src.raw_name = raw->get();
                pool.name = raw->get(); // for messages; valid only when name_ok
            }
            if (auto name = get_name(*n, key)) {
                pool.name = *name;
                src.name_ok = true;
                for (size_t i = 0; i < _config.pools.size(); ++i) {
                    if (_pool_src[i].name_ok && _config.pools[i].name == pool.name) {
                        error(*n, key,
                              fmt::format("pool name \"{}\" is already used by pools[{}]; "
                                          "names must be unique",
                                          pool.name, i));
                        break;
                    }
                }
            }
        }
        if (auto* n = member(table, "backends", path)) {
            src.backends = n;
            for_each_entry(
                *n, child(path, "backends"),
                "an array of tables such as [{ address = \"10.20.0.11\", port = 8080 }]",
                [&](const toml::table& t, const std::string& p) { read_backend(t, p, pool, src); });
        }
        if (auto* n = member(table, "health", path)) {
            auto key = child(path, "health");
            if (auto* t = get_table(*n, key)) {
                read_health(*t, key, pool.health);
            }
        }
        read_duration(table, path, "drain_timeout", pool.drain_timeout, true);

        _config.pools.push_back(std::move(pool));
        _pool_src.push_back(std::move(src));
    }

    void read_backend(const toml::table& table, const std::string& path, pool_config& pool,
                      pool_source& src) {
        check_keys(table, path, {"address", "port", "weight"});
        backend_config backend;
        backend_source bsrc;
        bsrc.table = &table;

        if (auto* n = member(table, "address", path, "address = \"10.20.0.11\"")) {
            if (auto addr = get_address(*n, child(path, "address"))) {
                backend.address = *addr;
                bsrc.address_ok = true;
            }
        }
        if (auto* n = member(table, "port", path, "port = 8080")) {
            if (auto port = get_port(*n, child(path, "port"))) {
                backend.port = *port;
                bsrc.port_ok = true;
            }
        }
        if (auto* n = member(table, "weight", path)) {
            auto key = child(path, "weight");
            if (auto weight = get_uint(*n, key, "weight", 0, max_weight)) {
                backend.weight = *weight;
                if (*weight == 0 && bsrc.address_ok && bsrc.port_ok) {
                    warning(*n, key,
                            fmt::format("backend {} has weight 0, so it is draining: it keeps "
                                        "its flows but gets no new ones",
                                        format_endpoint(backend.address, backend.port)));
                }
            }
        }

        if (bsrc.address_ok && bsrc.port_ok) {
            for (size_t i = 0; i < pool.backends.size(); ++i) {
                const auto& other = pool.backends[i];
                const auto& osrc = src.backends_src[i];
                if (osrc.address_ok && osrc.port_ok && other.address == backend.address &&
                    other.port == backend.port) {
                    error(table, path,
                          fmt::format("backend {} is already listed as backends[{}]; list it "
                                      "once and raise its weight instead",
                                      format_endpoint(backend.address, backend.port), i));
                    break;
                }
            }
        }
        pool.backends.push_back(backend);
        src.backends_src.push_back(bsrc);
    }

    void read_health(const toml::table& table, const std::string& path, health_config& health) {
        check_keys(table, path, {"kind", "interval", "timeout", "rise", "fall", "port"});
        if (auto* n = member(table, "kind", path)) {
            auto key = child(path, "kind");
            if (auto kind = get_string(*n, key)) {
                if (*kind == "tcp") {
                    health.kind = health_kind::tcp;
                } else if (*kind == "none") {
                    health.kind = health_kind::none;
                } else {
                    error(*n, key,
                          fmt::format("unknown kind \"{}\"; use \"tcp\" or \"none\"", *kind));
                }
            }
        }
        bool interval_ok = true, timeout_ok = true;
        const toml::node* interval = member(table, "interval", path);
        if (interval != nullptr) {
            auto v = get_duration(*interval, child(path, "interval"), false);
            interval_ok = v.has_value();
            health.interval = v.value_or(health.interval);
        }
        const toml::node* timeout = member(table, "timeout", path);
        if (timeout != nullptr) {
            auto v = get_duration(*timeout, child(path, "timeout"), false);
            timeout_ok = v.has_value();
            health.timeout = v.value_or(health.timeout);
        }
        if (interval_ok && timeout_ok && health.timeout >= health.interval) {
            // Point at whichever of the two the file sets, the timeout first.
            const toml::node& at =
                timeout != nullptr ? *timeout : (interval != nullptr ? *interval : table);
            std::string key = timeout != nullptr    ? child(path, "timeout")
                              : interval != nullptr ? child(path, "interval")
                                                    : path;
            error(at, key,
                  fmt::format("timeout {} must be shorter than interval {}",
                              format_duration(health.timeout), format_duration(health.interval)));
        }
        if (auto* n = member(table, "rise", path)) {
            if (auto v = get_uint(*n, child(path, "rise"), "rise", 1, uint32_max)) {
                health.rise = *v;
            }
        }
        if (auto* n = member(table, "fall", path)) {
            if (auto v = get_uint(*n, child(path, "fall"), "fall", 1, uint32_max)) {
                health.fall = *v;
            }
        }
        if (auto* n = member(table, "port", path)) {
            health.port = get_port(*n, child(path, "port"));
        }
    }

    void read_service(const toml::table& table, const std::string& path) {
        check_keys(table, path, {"name", "vip", "port", "protocol", "pool", "table_size", "hash"});
        service_config service;
        service_source src;
        src.table = &table;

        if (auto* n = member(table, "name", path, "name = \"web\"")) {
            auto key = child(path, "name");
            if (auto name = get_name(*n, key)) {
                service.name = *name;
                for (size_t i = 0; i < _config.services.size(); ++i) {
                    if (_config.services[i].name == service.name) {
                        error(*n, key,
                              fmt::format("service name \"{}\" is already used by services[{}]; "
                                          "names must be unique",
                                          service.name, i));
                        break;
                    }
                }
            }
        }
        if (auto* n = member(table, "vip", path, "vip = \"10.10.0.100\"")) {
            src.vip = n;
            if (auto vip = get_address(*n, child(path, "vip"))) {
                service.vip = *vip;
                src.vip_ok = true;
            }
        }
        if (auto* n = member(table, "port", path, "port = 80")) {
            if (auto port = get_port(*n, child(path, "port"))) {
                service.port = *port;
                src.port_ok = true;
            }
        }
        if (auto* n = member(table, "protocol", path)) {
            auto key = child(path, "protocol");
            if (auto protocol = get_string(*n, key)) {
                if (*protocol != "tcp") {
                    error(*n, key,
                          fmt::format("protocol \"{}\" is not supported; evenflow balances "
                                      "\"tcp\" only",
                                      *protocol));
                }
            }
        }
        if (auto* n = member(table, "pool", path, "pool = \"web\"")) {
            src.pool = n;
            if (auto pool = get_string(*n, child(path, "pool"))) {
                service.pool = *pool;
                src.pool_ok = true;
            }
        }
        if (auto* n = member(table, "table_size", path)) {
            src.table_size = n;
            auto v = get_uint(*n, child(path, "table_size"), "table_size", 1, uint32_max);
            src.table_size_ok = v.has_value();
            service.table_size = v.value_or(service.table_size);
        }
        if (auto* n = member(table, "hash", path)) {
            auto key = child(path, "hash");
            if (auto hash = get_string(*n, key)) {
                if (*hash == "5tuple") {
                    service.hash = hash_mode::five_tuple;
                } else if (*hash == "src_ip") {
                    service.hash = hash_mode::src_ip;
                } else {
                    error(*n, key,
                          fmt::format("unknown hash \"{}\"; use \"5tuple\" or \"src_ip\"", *hash));
                }
            }
        }

        if (src.vip_ok && src.port_ok) {
            for (size_t i = 0; i < _config.services.size(); ++i) {
                const auto& other = _config.services[i];
                const auto& osrc = _service_src[i];
                if (osrc.vip_ok && osrc.port_ok && other.vip == service.vip &&
                    other.port == service.port) {
                    error(*src.vip, child(path, "vip"),
                          fmt::format("{}/tcp is already served by services[{}] (\"{}\"); give "
                                      "each service its own vip and port",
                                      format_endpoint(service.vip, service.port), i, other.name));
                    break;
                }
            }
        }
        _config.services.push_back(std::move(service));
        _service_src.push_back(src);
    }

    void read_skew(const toml::table& table) {
        const std::string path = "skew";
        check_keys(table, path,
                   {"window", "threshold", "min_flows", "action", "probation", "max_share_growth",
                    "max_capacity_loss"});
        auto& skew = _config.skew;
        read_duration(table, path, "window", skew.window, false);
        if (auto* n = member(table, "threshold", path)) {
            auto key = child(path, "threshold");
            if (auto v = get_number(*n, key)) {
                if (!std::isfinite(*v) || !(*v > 1.0)) {
                    error(*n, key,
                          fmt::format("threshold {} must be greater than 1.0; it is the "
                                      "observed/expected share that raises an alarm, e.g. 2.0",
                                      *v));
                } else {
                    skew.threshold = *v;
                }
            }
        }
        if (auto* n = member(table, "min_flows", path)) {
            if (auto v = get_uint(*n, child(path, "min_flows"), "min_flows", 1, uint32_max)) {
                skew.min_flows = *v;
            }
        }
        if (auto* n = member(table, "action", path)) {
            auto key = child(path, "action");
            if (auto action = get_string(*n, key)) {
                if (*action == "alert") {
                    skew.action = skew_action::alert;
                } else if (*action == "rollback") {
                    skew.action = skew_action::rollback;
                } else {
                    error(*n, key,
                          fmt::format("unknown action \"{}\"; use \"alert\" or \"rollback\"",
                                      *action));
                }
            }
        }
        read_duration(table, path, "probation", skew.probation, true);
        if (auto* n = member(table, "max_share_growth", path)) {
            auto key = child(path, "max_share_growth");
            if (auto v = get_number(*n, key)) {
                if (!std::isfinite(*v) || !(*v > 1.0)) {
                    error(*n, key,
                          fmt::format("max_share_growth {} must be greater than 1.0, e.g. 2.0 "
                                      "refuses a config that doubles a backend's share",
                                      *v));
                } else {
                    skew.max_share_growth = *v;
                }
            }
        }
        if (auto* n = member(table, "max_capacity_loss", path)) {
            auto key = child(path, "max_capacity_loss");
            if (auto v = get_number(*n, key)) {
                if (!std::isfinite(*v) || !(*v > 0.0) || *v > 1.0) {
                    error(*n, key,
                          fmt::format("max_capacity_loss {} must be in (0, 1], e.g. 0.5 refuses "
                                      "a config that removes more than half of a pool's weight",
                                      *v));
                } else {
                    skew.max_capacity_loss = *v;
                }
            }
        }
    }

    // ---- checks across entries

    void check_services() {
        std::vector<std::vector<std::string_view>> users(_config.pools.size());
        for (size_t s = 0; s < _config.services.size(); ++s) {
            const auto& service = _config.services[s];
            const auto& src = _service_src[s];
            const std::string path = element("services", s);
            if (!src.pool_ok) {
                continue;
            }
            // Match names as written, even invalid ones, so a bad pool name is reported
            // once and not again by every service that uses it.
            size_t p = 0;
            while (p < _config.pools.size() && _pool_src[p].raw_name != service.pool) {
                ++p;
            }
            bool some_pool_unnamed =
                std::any_of(_pool_src.begin(), _pool_src.end(),
                            [](const pool_source& ps) { return !ps.raw_name; });
            if (p == _config.pools.size() && some_pool_unnamed) {
                continue; // it may well be the one without a usable name
            }
            if (p == _config.pools.size()) {
                std::vector<std::string_view> names;
                for (size_t i = 0; i < _config.pools.size(); ++i) {
                    if (_pool_src[i].name_ok) {
                        names.push_back(_config.pools[i].name);
                    }
                }
                auto hint = closest(service.pool, names);
                error(*src.pool, child(path, "pool"),
                      hint.empty() ? fmt::format("no pool named \"{}\"; define it with [[pools]] "
                                                 "name = \"{}\"",
                                                 service.pool, service.pool)
                                   : fmt::format("no pool named \"{}\"; did you mean \"{}\"?",
                                                 service.pool, hint));
                continue;
            }
            const auto& pool = _config.pools[p];
            users[p].push_back(service.name);

            if (src.table_size_ok) {
                check_table_size(service, src, path, pool.backends.size());
            }
            if (src.vip_ok) {
                for (size_t b = 0; b < pool.backends.size(); ++b) {
                    const auto& backend = pool.backends[b];
                    if (_pool_src[p].backends_src[b].address_ok &&
                        backend.address.is_v4() != service.vip.is_v4()) {
                        error(*src.vip, child(path, "vip"),
                              fmt::format("vip {} is {} but pool \"{}\" has {} backend {}; mixing "
                                          "IPv4 and IPv6 needs NAT64, which evenflow does not do",
                                          service.vip.to_string(),
                                          service.vip.is_v4() ? "IPv4" : "IPv6", pool.name,
                                          backend.address.is_v4() ? "IPv4" : "IPv6",
                                          backend.address.to_string()));
                        break;
                    }
                }
            }
        }

        for (size_t p = 0; p < _config.pools.size(); ++p) {
            if (users[p].empty() || !_config.pools[p].backends.empty()) {
                continue;
            }
            const auto& src = _pool_src[p];
            std::string quoted;
            for (auto name : users[p]) {
                quoted += fmt::format("{}\"{}\"", quoted.empty() ? "" : ", ", name);
            }
            const toml::node& at = src.backends != nullptr ? *src.backends : *src.table;
            std::string key = src.backends != nullptr ? child(element("pools", p), "backends")
                                                      : element("pools", p);
            warning(at, key,
                    fmt::format("pool \"{}\" has no backends, so {} {} {} nowhere to send new "
                                "connections; add backends or use another pool",
                                _config.pools[p].name,
                                users[p].size() == 1 ? "service" : "services", quoted,
                                users[p].size() == 1 ? "has" : "have"));
        }
    }

    void check_table_size(const service_config& service, const service_source& src,
                          const std::string& path, size_t backend_count) {
        const toml::node& at = src.table_size != nullptr ? *src.table_size : *src.table;
        const std::string key = child(path, "table_size");
        const uint64_t minimum = uint64_t(table_slots_per_backend) * backend_count;
        if (service.table_size < minimum) {
            error(at, key,
                  fmt::format("table_size {} is too small for {} backend{} (needs at least {}); "
                              "the next prime is {}",
                              service.table_size, backend_count, backend_count == 1 ? "" : "s",
                              minimum, next_prime(minimum)));
        } else if (!is_prime(service.table_size)) {
            error(at, key,
                  fmt::format("table_size {} is not prime; the next prime is {}",
                              service.table_size, next_prime(service.table_size)));
        }
    }
};

std::string lower_first(std::string_view text) {
    std::string out(text);
    if (!out.empty() && out[0] >= 'A' && out[0] <= 'Z') {
        out[0] = char(out[0] - 'A' + 'a');
    }
    return out;
}

} // namespace

load_result load_string(std::string_view toml_text, std::string path_for_messages) {
    toml::table root;
    try {
        root = toml::parse(toml_text, std::string_view(path_for_messages));
    } catch (const toml::parse_error& e) {
        load_result result;
        result.errors.push_back(diagnostic{severity::error, path_for_messages,
                                           uint32_t(e.source().begin.line),
                                           uint32_t(e.source().begin.column), "",
                                           "invalid TOML: " + lower_first(e.description())});
        return result;
    }
    return loader(std::move(path_for_messages)).run(root);
}

load_result load_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        load_result result;
        result.errors.push_back(diagnostic{severity::error, path, 0, 0, "",
                                           "this is a directory; give the path of a .toml file"});
        return result;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        load_result result;
        result.errors.push_back(
            diagnostic{severity::error, path, 0, 0, "",
                       "cannot read the file: " + lower_first(std::strerror(errno))});
        return result;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return load_string(text.str(), path);
}

} // namespace evenflow::config
