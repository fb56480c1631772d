// Command-line parsing for evenflowd, evenctl and evengen: CLI11 (Debian's
// libcli11-dev), with the exit codes and error lines the three share. --help and
// --version exit 0; every usage error is one line "PROG: WHAT", naming the argument,
// then a pointer to --help, and exit 2.
#pragma once

#include "version.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace evenflow::cli {

inline constexpr int exit_usage = 2;

// "evenctl 0.1.0": what --version prints.
inline std::string version_line(const std::string& program) {
    return program + " " + EVENFLOW_VERSION;
}

// A usage error, printed the same way whether CLI11 or the program found it.
inline int usage_error(const std::string& program, const std::string& message,
                       const std::string& help_hint) {
    std::fprintf(stderr, "%s: %s\n(see %s)\n", program.c_str(), message.c_str(), help_hint.c_str());
    return exit_usage;
}

// Splits argv at the first "--": the words before it for CLI11, the rest (EAL
// arguments) returned as they are. CLI11 never sees the EAL's options.
inline std::vector<std::string> split_at_double_dash(int argc, char** argv,
                                                     std::vector<std::string>* after) {
    std::vector<std::string> before;
    int i = 1;
    for (; i < argc; ++i) {
        if (std::string(argv[i]) == "--") {
            ++i;
            break;
        }
        before.emplace_back(argv[i]);
    }
    for (; i < argc; ++i) {
        after->emplace_back(argv[i]);
    }
    return before;
}

// CLI11's message for a usage error, in the words of this project: the unknown option
// or stray word by name, an option without its value by its value's name.
inline std::string default_phrase(const CLI::App& app, const CLI::ParseError& e) {
    std::string what = e.what();
    if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
        std::vector<std::string> rest = app.remaining(true);
        if (!rest.empty()) {
            const std::string& first = rest[0];
            return first.size() > 1 && first[0] == '-' ? "unknown option " + first
                                                       : "unexpected argument \"" + first + "\"";
        }
    }
    if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr) {
        // "--config: 1 required FILE missing"
        size_t colon = what.find(": ");
        size_t required = what.find(" required ");
        size_t missing = what.rfind(" missing");
        if (colon != std::string::npos && required != std::string::npos &&
            missing != std::string::npos && required + 10 < missing) {
            return what.substr(0, colon) + " needs a value " +
                   what.substr(required + 10, missing - required - 10);
        }
    }
    return what;
}

// Parses `words` (without the program name). nullopt: go on; otherwise the exit code
// (0 after --help/--version, 2 after a usage error). `phrase` may reword CLI11's
// message for an error (return "" to keep it) and point to a more precise help.
using phrase_fn = std::function<std::string(const CLI::ParseError&, std::string* help_hint)>;
inline std::optional<int> parse(CLI::App& app, std::vector<std::string> words,
                                std::string help_hint, const phrase_fn& phrase = {}) {
    std::reverse(words.begin(), words.end()); // CLI11 takes them last first
    try {
        app.parse(words);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string message = phrase ? phrase(e, &help_hint) : std::string();
        return usage_error(app.get_name(), message.empty() ? default_phrase(app, e) : message,
                           help_hint);
    }
    return std::nullopt;
}

} // namespace evenflow::cli
