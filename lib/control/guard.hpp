// The checks that stand between a config and traffic: lint rules that `evenctl
// check` reports, and the shift review that a guarded `apply` refuses on.
#pragma once

#include "config/choices.hpp"

#include "config/load.hpp"
#include "snapshot/snapshot.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace evenflow::control {

// Lint a validated config against the snapshot built from it (for the real Maglev
// shares). Findings are warnings unless the config cannot serve at all (errors).
// The file is named from cfg.source_path.
std::vector<config::diagnostic> lint(const config::config& cfg, const snapshot& snap);

// The configured distribution: each backend's expected share of its service
// (weight over the pool's total), keyed by (service, "ADDR:PORT"), and each service's
// total weight.
struct distribution {
    std::map<std::pair<std::string, std::string>, double> share;
    std::map<std::string, uint64_t> weight;
};
distribution expected_distribution(const config::config& cfg);

// How much the expected distribution moves from `before` to `after`, phrased for
// review. `refused` when some backend's expected share grows by more than
// guard.max_share_growth, or a pool loses more than guard.max_capacity_loss of its
// weight. `lines` lists every notable shift either way.
struct shift_review {
    bool refused = false;
    std::vector<std::string> lines;
};
shift_review review_shift(const distribution& before, const distribution& after,
                          const config::skew_config& guard);

// The reference a candidate is judged against when it is not the running version:
// the series baseline (config_manager::baseline) and the versions applied since.
struct series {
    uint64_t baseline_version = 0; // 0: no series, the running version is the reference
    std::chrono::system_clock::time_point baseline_at;
    std::shared_ptr<const config::config> baseline;
    std::vector<std::string> steps; // "v2 uid 1000", one per version since, oldest first
};
// "baseline v1, 19:50:02" (UTC); "" without a series.
std::string baseline_label(const series& s);

// The whole review of a candidate (`after`) against the series baseline (`base`) and
// the running version (`running`), with the limits in `guard` plus `max_share`. Refused
// when, relative to the baseline, some backend's share grows by more than
// max_share_growth, a pool loses more than max_capacity_loss of its weight, a backend
// comes to hold more than half of a pool's weight of two or more backends (the funnel
// `evenctl check` warns about), or above max_share of a pool of three or more. A limit
// the baseline already exceeded is not held against the candidate (it was accepted).
shift_review review_series(const distribution& base, const distribution& running,
                           const distribution& after, const config::skew_config& guard,
                           std::optional<double> max_share, const series& story);

// The verdict on applying a loaded config to a daemon running `running`, in the
// order the daemon answers: invalid, then a refused shift (unless accepted), then a
// change only a restart can make, then unchanged. Pure and free of shared state, so
// the daemon runs it off its control loop.
enum class apply_verdict : uint8_t { accept, unchanged, invalid, shift, restart };
constexpr auto choice_names(apply_verdict) { // config/choices.hpp
    return std::to_array<std::string_view>({"accept", "unchanged", "invalid", "shift", "restart"});
}
struct apply_evaluation {
    apply_verdict verdict = apply_verdict::invalid;
    config::load_result loaded;           // its diagnostics (the config itself moves to `cfg`)
    std::vector<std::string> shift_lines; // shift: why; accept: what --accept-shift let through
    bool shift_accepted = false;          // accept: --accept-shift was needed (a new baseline)
    std::string error;                    // restart: what cannot change
    std::vector<std::string> diff;        // every valid config: what would change
    std::shared_ptr<const config::config> cfg; // accept: the new config
};
std::string_view to_string(apply_verdict v);
// `story` names the series baseline; without one the running version is the reference.
apply_evaluation evaluate_apply(config::load_result loaded,
                                std::shared_ptr<const config::config> running, bool accept_shift,
                                const series& story = {});

} // namespace evenflow::control
