// Reading TOML with diagnostics: the typed getters every section reader uses, each
// reporting what is wrong with file:line:col, the dotted key and a hint, and never
// stopping at the first error. Internal to lib/config (the loader builds on it).
#pragma once

#include "config/choices.hpp"
#include "config/load.hpp"
#include "config/values.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <initializer_list>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace evenflow::config {

// "a.b" for key b under path a; "a[3]" for element 3.
std::string child(const std::string& path, std::string_view key);
std::string element(const std::string& path, size_t i);
// The closest candidate within two edits ("wieght" -> "weight"), or empty.
std::string_view closest(std::string_view word, std::span<const std::string_view> candidates);
std::string join(const std::vector<std::string_view>& items, std::string_view sep);

class toml_reader {
public:
    explicit toml_reader(std::string file) : m_file(std::move(file)) {}

    // Errors and warnings so far, each sorted by position in the file.
    std::vector<diagnostic> take_errors();
    std::vector<diagnostic> take_warnings();
    bool has_errors() const { return !m_errors.empty(); }
    size_t error_count() const { return m_errors.size(); }

    // ---- reporting

    void report(severity level, const toml::source_region& where, std::string key,
                std::string message);
    void error(const toml::node& at, std::string key, std::string message);
    void warning(const toml::node& at, std::string key, std::string message);

    // ---- schema helpers

    // A string naming one of E's choices (config/choices.hpp); an error listing them
    // otherwise ("unknown WHAT \"x\"; use \"a\" or \"b\"").
    template <typename E>
    std::optional<E> get_choice(const toml::node& n, const std::string& key,
                                std::string_view what) {
        auto word = get_string(n, key);
        if (!word) {
            return std::nullopt;
        }
        if (auto value = parse_choice<E>(*word)) {
            return value;
        }
        error(n, key, fmt::format("unknown {} \"{}\"; use {}", what, *word, choice_list<E>()));
        return std::nullopt;
    }

    void check_keys(const toml::table& table, const std::string& path,
                    std::initializer_list<std::string_view> known) {
        check_keys(table, path, std::span<const std::string_view>(known.begin(), known.size()));
    }
    void check_keys(const toml::table& table, const std::string& path,
                    std::span<const std::string_view> known);

    // The value under `key`, or null. A missing required key (non-empty `example`) is
    // reported at the enclosing table.
    const toml::node* member(const toml::table& table, std::string_view key,
                             const std::string& path, std::string_view example = {});

    void type_error(const toml::node& node, const std::string& path, std::string_view expected);

    std::optional<std::string> get_string(const toml::node& node, const std::string& path);

    std::optional<int64_t> get_integer(const toml::node& node, const std::string& path);

    // An integer in lo..hi; `name` is how the message calls it.
    std::optional<uint32_t> get_uint(const toml::node& node, const std::string& path,
                                     std::string_view name, int64_t lo, int64_t hi);

    std::optional<uint16_t> get_port(const toml::node& node, const std::string& path);

    std::optional<double> get_number(const toml::node& node, const std::string& path);

    // A duration string; zero only where it means something (`allow_zero`).
    // At most `max` (the bounds of values.hpp).
    std::optional<duration> get_duration(const toml::node& node, const std::string& path,
                                         bool allow_zero, duration max = bounds::max_duration);

    std::optional<net::ip_addr> get_address(const toml::node& node, const std::string& path);

    std::optional<std::string> get_name(const toml::node& node, const std::string& path);

    const toml::table* get_table(const toml::node& node, const std::string& path);

    const toml::array* get_array(const toml::node& node, const std::string& path);

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

    // Reads an optional duration into `out`; returns the node when it was present.
    const toml::node* read_duration(const toml::table& table, const std::string& path,
                                    std::string_view key, duration& out, bool allow_zero,
                                    duration max = bounds::max_duration);

protected:
    std::string m_file;

private:
    std::vector<diagnostic> m_errors;
    std::vector<diagnostic> m_warnings;
    std::set<std::string> m_hinted; // known keys that an unknown key was a near miss of
};

} // namespace evenflow::config
