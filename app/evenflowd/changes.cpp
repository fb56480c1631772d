// The daemon's side of the change pipeline (lib/control/changes.hpp, which reviews,
// builds, saves and records every change): a publication's way to the workers (RCU)
// and the work that follows it (the modules' on_replaced and on_publish).
#include "daemon.hpp"

#include "control/log.hpp"

#include <algorithm>

namespace evenflow::daemon {

using api::json;
using control::log_event;

control::change_pipeline::host evenflowd::pipeline_host() {
    control::change_pipeline::host h;
    h.publish = [this](std::unique_ptr<snapshot> snap, const control::publication& what) {
        publish(std::move(snap), what);
    };
    h.running_snapshot = [this] {
        return m_shared.snap.load();
    };
    // Asked once per id while ids are reclaimed (tens of thousands): no list per call.
    h.backend_in_use = [this](uint32_t id) {
        return std::any_of(m_workers.begin(), m_workers.end(), [id](const auto& w) {
            return w->stats().backends[id].active_flows.get() != 0;
        });
    };
    h.on_automatic_rollback = [this] {
        for (const auto& m : m_modules) {
            m->on_automatic_rollback();
        }
    };
    return h;
}

control::change_pipeline::reply_fn evenflowd::reply_to(control_server::ticket ticket) {
    return [this, ticket](const json& reply) {
        m_server.reply(ticket, reply);
    };
}

void evenflowd::publish(std::unique_ptr<snapshot> snap, const control::publication& what) {
    auto now = std::chrono::steady_clock::now();
    bool in_probation = m_changes.probation().active(now, manager().running().skew);
    for (const auto& kept : m_stamper.stamp(*snap, dataplane::worker::now_ms(), in_probation)) {
        log_event("warning", "probation_keeps_flows",
                  {{"service", kept.service},
                   {"down_weight", std::to_string(kept.down_weight)},
                   {"total_weight", std::to_string(kept.total_weight)},
                   {"action", "established flows of down backends kept, not reset"},
                   {"version", std::to_string(manager().version())}});
    }
    m_reclaimer.retire(m_shared.snap.replace(std::move(snap), *m_qsbr));
    m_labels_of = nullptr; // the old snapshot is gone; its address may come back
    for (const auto& m : m_modules) {
        m->on_replaced(what);
    }
    // What follows the snapshot runs in the next iterations, each on its own, so that
    // a publication at ten thousand backends does not hold the loop in one piece.
    m_changes.defer([this, what] {
        const snapshot& running = *m_shared.snap.load();
        for (const auto& m : m_modules) {
            m->on_publish(running, what);
        }
    });
    if (what.new_version) {
        m_changes.defer([this] { after_config_change(); });
        // Shares against the series baseline (status, /metrics), in an iteration of
        // their own: at ten thousand backends they take a few milliseconds.
        m_changes.defer([this] { drift(); });
    }
}

void evenflowd::after_config_change() {
    m_slow_path->want_neighbors(manager().running());
    m_slow_path->announce_vips(*m_shared.snap.load());
}

} // namespace evenflow::daemon
