#include "api/commands.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

namespace evenflow::api {

namespace {

const positional service_arg{"SERVICE", "service", value_kind::text, true,
                             "a service's name (evenctl services)"};
const positional backend_arg{"BACKEND", "backend", value_kind::text, true,
                             "a backend of the service, ADDR:PORT (evenctl backends)"};
const positional config_file_arg{"FILE", "config", value_kind::file, true,
                                 "a config file (TOML, like /etc/evenflow/evenflow.toml)"};

std::vector<command_spec> make_commands() {
    std::vector<command_spec> c;
    c.push_back({command::status, "status", "running version, uptime, per-worker counters"});
    c.push_back({command::services, "services", "services and their pools"});
    c.push_back(
        {command::backends,
         "backends",
         "per-backend state, shares, flows, skew flag",
         {{"SERVICE", "service", value_kind::text, false, "only this service's backends"}}});
    c.push_back({command::apply,
                 "apply",
                 "validate FILE and make it the running config; refused if it shifts shares "
                 "too far from the series baseline unless --accept-shift",
                 {config_file_arg},
                 {{"--accept-shift", "accept_shift", "",
                   "apply even if the expected shares move beyond the guard's limits; the new "
                   "version becomes the series baseline"}},
                 true});
    c.push_back({command::diff,
                 "diff",
                 "what apply FILE would change against the running version, and whether it "
                 "would be accepted; applies nothing",
                 {config_file_arg}});
    c.push_back({command::check,
                 "check",
                 "validate FILE offline and predict its shares",
                 {config_file_arg},
                 {},
                 false,
                 false});
    c.push_back({command::history, "history", "config versions, who applied them, what changed"});
    c.push_back({command::rollback,
                 "rollback",
                 "return to VERSION (default: the previous one)",
                 {{"VERSION", "version", value_kind::positive_integer, false,
                   "a version listed by evenctl history"}},
                 {},
                 true});
    c.push_back({command::drain,
                 "drain",
                 "no new flows to ADDR:PORT; existing ones continue",
                 {service_arg, backend_arg},
                 {},
                 true});
    c.push_back(
        {command::enable, "enable", "undo drain/disable", {service_arg, backend_arg}, {}, true});
    c.push_back({command::disable,
                 "disable",
                 "out of rotation; its flows are reset",
                 {service_arg, backend_arg},
                 {},
                 true});
    c.push_back({command::stats, "stats", "data-plane counters and drops by reason"});
    c.push_back({command::skew, "skew", "active skew alarms"});
    c.push_back(
        {command::clients,
         "clients",
         "the clients that opened the most connections to SERVICE in the skew window, "
         "by address and by /24 (IPv6 /64)",
         {service_arg},
         {{"--limit", "limit", "N", "at most N clients of each kind (default 10, at most 100)"}}});
    c.push_back({command::drain_host,
                 "drain-host",
                 "withdraw this host's VIPs ([bgp]); with --timeout, wait until its "
                 "connections end (at most SECONDS)",
                 {},
                 {{"--timeout", "timeout", "SECONDS", "wait up to SECONDS for connections"}},
                 true});
    c.push_back({command::undrain_host,
                 "undrain-host",
                 "announce this host's VIPs again (those with a backend up)",
                 {},
                 {},
                 true});
    c.push_back({command::top,
                 "top",
                 "live view of the distribution, every second (q quits)",
                 {},
                 {{"--iterations", "iterations", "N", "stop after N refreshes"}},
                 false,
                 false});
    return c;
}

const std::vector<command_spec>& table() {
    static const std::vector<command_spec> commands = [] {
        auto c = make_commands();
        // The enum indexes the table: spec_of() relies on this order.
        for (size_t i = 0; i < c.size(); ++i) {
            if (size_t(c[i].id) != i) {
                std::abort();
            }
        }
        if (c.size() != size_t(command::count_)) {
            std::abort();
        }
        return c;
    }();
    return commands;
}

std::optional<uint64_t> positive_integer(const std::string& word) {
    if (word.empty() || word.size() > 19 ||
        !std::all_of(word.begin(), word.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
        return std::nullopt;
    }
    uint64_t v = std::strtoull(word.c_str(), nullptr, 10);
    return v == 0 ? std::nullopt : std::optional<uint64_t>(v);
}

} // namespace

bool valid_utf8(std::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
        auto c = uint8_t(text[i]);
        size_t len = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xe  ? 3
                     : (c >> 3) == 0x1e ? 4
                                        : 0;
        if (len == 0 || i + len > text.size() || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4)) {
            return false;
        }
        for (size_t k = 1; k < len; ++k) {
            if ((uint8_t(text[i + k]) & 0xc0) != 0x80) {
                return false;
            }
        }
        if (len == 3) {
            uint32_t cp = (uint32_t(c & 0x0f) << 12) | (uint32_t(uint8_t(text[i + 1]) & 0x3f) << 6);
            if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) {
                return false; // overlong, or a surrogate
            }
        }
        if (len == 4) {
            uint32_t cp =
                (uint32_t(c & 0x07) << 18) | (uint32_t(uint8_t(text[i + 1]) & 0x3f) << 12);
            if (cp < 0x10000 || cp > 0x10ffff) {
                return false;
            }
        }
        i += len;
    }
    return true;
}

std::span<const command_spec> all_commands() {
    return table();
}

const command_spec& spec_of(command id) {
    return table()[size_t(id)];
}

const command_spec* find_command(std::string_view name) {
    for (const command_spec& spec : table()) {
        if (spec.name == name) {
            return &spec;
        }
    }
    return nullptr;
}

std::string usage_line(const command_spec& spec) {
    std::string out(spec.name);
    for (const positional& p : spec.args) {
        out += p.required ? fmt::format(" {}", p.metavar) : fmt::format(" [{}]", p.metavar);
    }
    for (const option& o : spec.options) {
        out += o.metavar.empty() ? fmt::format(" [{}]", o.flag)
                                 : fmt::format(" [{} {}]", o.flag, o.metavar);
    }
    return out;
}

parse_result parse_arguments(const command_spec& spec, std::span<const std::string> words) {
    json request{{"cmd", spec.name}};
    size_t next_positional = 0;
    auto usage = [&](std::string why) {
        return parse_result(
            fmt::format("{}: {} (usage: evenctl {})", spec.name, why, usage_line(spec)));
    };
    for (size_t i = 0; i < words.size(); ++i) {
        const std::string& word = words[i];
        if (!valid_utf8(word)) {
            return usage(fmt::format("argument {} is not valid UTF-8", i + 1));
        }
        if (word.size() > 2 && word.compare(0, 2, "--") == 0) {
            auto it = std::find_if(spec.options.begin(), spec.options.end(),
                                   [&](const option& o) { return o.flag == word; });
            if (it == spec.options.end()) {
                return usage(fmt::format("unknown option {}", word));
            }
            if (it->metavar.empty()) {
                request[std::string(it->key)] = true;
                continue;
            }
            if (i + 1 >= words.size()) {
                return usage(fmt::format("{} needs a value {}", word, it->metavar));
            }
            auto value = positive_integer(words[++i]);
            if (!value) {
                return usage(
                    fmt::format("{} must be a positive integer, not {:?}", it->metavar, words[i]));
            }
            request[std::string(it->key)] = *value;
            continue;
        }
        if (next_positional == spec.args.size()) {
            return usage(fmt::format("unexpected argument {:?}", word));
        }
        const positional& p = spec.args[next_positional++];
        if (p.kind == value_kind::positive_integer) {
            auto value = positive_integer(word);
            if (!value) {
                return usage(
                    fmt::format("{} must be a positive integer, not {:?}", p.metavar, word));
            }
            request[std::string(p.key)] = *value;
        } else {
            request[std::string(p.key)] = word;
        }
    }
    for (size_t i = next_positional; i < spec.args.size(); ++i) {
        if (spec.args[i].required) {
            return usage(fmt::format("missing {}", spec.args[i].metavar));
        }
    }
    return request;
}

} // namespace evenflow::api
