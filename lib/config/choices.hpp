// The words of an enum, in one place: a value's name for the CLI, logs, metrics and
// diffs, and the config readers' parsing of it, come from the same table. An enum
// takes part with a function beside its declaration (found by argument-dependent
// lookup), its words in enumerator order (values 0..N-1):
//
//   constexpr auto choice_names(hash_mode) {
//       return std::to_array<std::string_view>({"5tuple", "src_ip", "src_ip_port"});
//   }
//
// A table of the wrong length does not compile where the enum has a `count_`
// enumerator; the others are checked by their tests.
#pragma once

#include <array>
#include <cstddef>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

namespace evenflow {

// "src_ip"; "unknown" for a value outside the table.
template <typename E>
constexpr std::string_view name_of(E value) {
    constexpr auto names = choice_names(E{});
    if constexpr (requires { E::count_; }) {
        static_assert(names.size() == static_cast<size_t>(E::count_));
    }
    const auto i = static_cast<size_t>(value);
    return i < std::size(names) ? names[i] : std::string_view("unknown");
}

// The value named `word`, if any.
template <typename E>
constexpr std::optional<E> parse_choice(std::string_view word) {
    constexpr auto names = choice_names(E{});
    for (size_t i = 0; i < std::size(names); ++i) {
        if (names[i] == word) {
            return static_cast<E>(i);
        }
    }
    return std::nullopt;
}

// "\"5tuple\", \"src_ip\" or \"src_ip_port\"", for messages.
template <typename E>
std::string choice_list() {
    constexpr auto names = choice_names(E{});
    std::string out;
    for (size_t i = 0; i < std::size(names); ++i) {
        out += i == 0 ? "" : i + 1 == std::size(names) ? " or " : ", ";
        out += "\"" + std::string(names[i]) + "\"";
    }
    return out;
}

} // namespace evenflow
