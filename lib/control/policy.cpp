#include "control/policy.hpp"

#include <algorithm>

namespace evenflow::control {

std::optional<double> probation::since_apply(clock::time_point now) const {
    if (!m_last_apply) {
        return std::nullopt;
    }
    return std::chrono::duration<double>(now - *m_last_apply).count();
}

std::vector<no_backend_alarms::change> no_backend_alarms::update(const snapshot& snap,
                                                                 wall_clock::time_point now) {
    std::vector<change> changes;
    std::map<std::string, wall_clock::time_point> still;
    for (const snapshot_service& svc : snap.services) {
        if (svc.has_backend_up) {
            continue;
        }
        auto it = m_since.find(svc.name);
        if (it == m_since.end()) {
            changes.push_back({svc.name, true});
            still[svc.name] = now;
        } else {
            still[svc.name] = it->second;
        }
    }
    for (const auto& [name, since] : m_since) {
        if (!still.count(name)) {
            changes.push_back({name, false});
        }
    }
    m_since = std::move(still);
    return changes;
}

std::vector<runtime_stamper::kept_flows> runtime_stamper::stamp(snapshot& snap, uint64_t now_ms,
                                                                bool in_probation) {
    std::vector<kept_flows> kept;
    for (snapshot_service& svc : snap.services) {
        uint64_t total = 0, down = 0;
        for (uint32_t i : svc.backend_indexes) {
            total += snap.backends[i].weight;
            down += snap.backends[i].state == backend_state::down ? snap.backends[i].weight : 0;
        }
        svc.keep_pinned_flows = in_probation && down > 0;
        if (svc.keep_pinned_flows) {
            kept.push_back({svc.name, down, total});
        }
    }
    std::map<uint32_t, uint64_t> still_draining;
    for (snapshot_backend& b : snap.backends) {
        if (b.state != backend_state::draining) {
            continue;
        }
        auto it = m_draining_since.find(b.id);
        uint64_t since = it != m_draining_since.end() ? it->second : now_ms;
        still_draining[b.id] = since;
        const config::pool_config* pool = snap.cfg->find_pool(snap.services[b.service_index].pool);
        uint64_t timeout = pool != nullptr ? uint64_t(pool->drain_timeout.count()) : 0;
        // 0 = no deadline: a zero drain_timeout means "drain until the flows end".
        b.drain_deadline_ms = timeout == 0 ? 0 : std::max<uint64_t>(since + timeout, 1);
    }
    m_draining_since = std::move(still_draining);
    return kept;
}

} // namespace evenflow::control
