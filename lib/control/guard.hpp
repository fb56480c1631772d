// The checks that stand between a config and traffic: lint rules that `evenctl
// check` reports, and the shift review that a guarded `apply` refuses on.
#pragma once

#include "config/load.hpp"
#include "snapshot/snapshot.hpp"

#include <string>
#include <vector>

namespace evenflow::control {

// Lint a validated config against the snapshot built from it (for the real Maglev
// shares). Findings are warnings unless the config cannot serve at all (errors).
// The file is named from cfg.source_path.
std::vector<config::diagnostic> lint(const config::config& cfg, const snapshot& snap);

// How much the expected distribution moves from `before` to `after`, phrased for
// review. `refused` when some backend's expected share grows by more than
// guard.max_share_growth, or a pool loses more than guard.max_capacity_loss of its
// weight. `lines` lists every notable shift either way.
struct shift_review {
    bool refused = false;
    std::vector<std::string> lines;
};
shift_review review_shift(const snapshot& before, const snapshot& after,
                          const config::skew_config& guard);

} // namespace evenflow::control
