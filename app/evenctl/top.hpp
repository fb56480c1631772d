// evenctl top: a live view of the distribution, refreshed every second.
#pragma once

#include <string>

namespace evenflow::evenctl {

// Runs until 'q' (or Ctrl-C), or for `iterations` refreshes when > 0.
// Returns an evenctl exit code.
int run_top(const std::string& socket_path, int iterations);

} // namespace evenflow::evenctl
