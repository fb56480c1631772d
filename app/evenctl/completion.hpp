// What the build generates from the CLI11 definition evenctl parses its command line
// with (itself built from the shared command vocabulary):
//   evenctl --bash-completion   the bash completion, installed as
//                               /usr/share/bash-completion/completions/evenctl
//   evenctl --man-commands      the COMMANDS section of evenctl(1), for help2man
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace evenflow::evenctl {

std::string bash_completion(const CLI::App& app);
std::string man_commands(const CLI::App& app);

} // namespace evenflow::evenctl
