// The command vocabulary shared by evenflowd and evenctl: every command's name, its
// arguments and options, whether it changes state, and how its words become a
// request. The daemon dispatches on it, evenctl checks arguments and picks a
// rendering with it; a new command is one entry here, one handler in the daemon
// (app/evenflowd/commands.cpp) and one rendering in evenctl.
#pragma once

#include "api/protocol.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace evenflow::api {

enum class command : uint8_t {
    status,
    services,
    backends,
    apply,
    diff,
    check,
    history,
    rollback,
    drain,
    enable,
    disable,
    stats,
    skew,
    clients,
    drain_host,
    undrain_host,
    top,
    count_
};

// How a positional argument's word becomes part of the request.
enum class value_kind : uint8_t {
    text,             // as written
    positive_integer, // 1, 2, ... (a version)
    file,             // a path evenctl reads: the text goes in "config", the path in "path"
};

struct positional {
    std::string_view metavar; // "SERVICE", "FILE"
    std::string_view key;     // request field
    value_kind kind = value_kind::text;
    bool required = true;
    std::string_view help = {}; // for `evenctl COMMAND --help`
};

struct option {
    std::string_view flag;    // "--accept-shift"
    std::string_view key;     // request field
    std::string_view metavar; // "" for a boolean flag, else the value's name ("N")
    std::string_view help;
};

struct command_spec {
    command id;
    std::string_view name;
    std::string_view summary;
    std::vector<positional> args;
    std::vector<option> options;
    bool changes_state = false; // apply, rollback, drain, enable, disable
    bool needs_daemon = true;   // false: evenctl answers it alone (check, and top's loop)
};

// Every command, in the order `evenctl --help` lists them.
std::span<const command_spec> all_commands();
const command_spec* find_command(std::string_view name);
const command_spec& spec_of(command id);

// Whether `text` is well-formed UTF-8 (requests are JSON, whose strings must be).
bool valid_utf8(std::string_view text);

// "apply FILE [--accept-shift]"
std::string usage_line(const command_spec& spec);

// Turns the words after the command name into a request {"cmd": NAME, ...}; a file
// argument is left as its path under its key for the caller to read. A usage error
// says what is wrong, naming the argument.
using parse_result = std::variant<json, std::string>;
parse_result parse_arguments(const command_spec& spec, std::span<const std::string> words);

} // namespace evenflow::api
