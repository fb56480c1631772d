// Reading a config: TOML parse (toml++), schema check, semantic validation.
#pragma once

#include "config/config.hpp"
#include "config/values.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evenflow::config {

enum class severity : uint8_t { error, warning };

// One finding, located in the file. `key` is the dotted path of the offending
// value, e.g. "pools[0].backends[2].weight"; empty when the whole file is meant.
struct diagnostic {
    severity level = severity::error;
    std::string file;
    uint32_t line = 0;   // 1-based; 0 when unknown
    uint32_t column = 0; // 1-based; 0 when unknown
    std::string key;
    std::string message;

    // "FILE:LINE:COLUMN: error: KEY: MESSAGE" (LINE/COLUMN and KEY omitted when unknown).
    std::string to_string() const;
};

struct load_result {
    std::optional<config> value; // set only when there are no errors
    std::vector<diagnostic> errors;
    std::vector<diagnostic> warnings;
    bool ok() const { return value.has_value(); }
};

// Parses and validates. Every error found is reported, not only the first.
load_result load_file(const std::string& path);
load_result load_string(std::string_view toml_text, std::string path_for_messages);

} // namespace evenflow::config
