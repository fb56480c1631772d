// What evenflowd gives its modules (app/evenflowd/module.hpp), made of a ring_rig: its
// pipeline, snapshots and worker, and a control socket that is never opened. For the
// modules' in-process tests (app/evenflowd/modules/<name>/test_*.cpp).
#pragma once

#include "module.hpp"
#include "rig.hpp"

#include <optional>
#include <vector>

namespace evenflow::testing {

struct rig_module_context {
    explicit rig_module_context(ring_rig& rig, dataplane::slow_path* slow_path = nullptr)
        : ctx{rig.changes.pipeline,
              rig.shared,
              slow_path,
              server,
              [&rig] { return std::vector<const dataplane::worker_stats*>{&rig.worker->stats()}; },
              [&rig] { return std::vector<dataplane::worker*>{rig.worker}; },
              [] {
                  return uint64_t(1);
              }} {}

    daemon::control_server server{
        [](const api::json&, const control::actor&, daemon::control_server::ticket) {
            return std::optional<api::json>{};
        }};
    daemon::module_context ctx;
};

} // namespace evenflow::testing
