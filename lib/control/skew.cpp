#include "control/skew.hpp"

#include <cmath>

namespace evenflow::control {

std::string_view to_string(skew_kind k) {
    return k == skew_kind::hot ? "hot" : "starved";
}
std::string_view to_string(skew_basis b) {
    return b == skew_basis::new_flows ? "new_flows" : "active_flows";
}

namespace {

// z-score of observing `count` of `total` when each flow lands here with probability p.
double binomial_z(uint64_t count, uint64_t total, double p) {
    double n = double(total);
    double sd = std::sqrt(n * p * (1.0 - p));
    if (sd <= 0) {
        return 0;
    }
    return (double(count) - n * p) / sd;
}

struct verdict {
    bool skewed = false;
    skew_kind kind = skew_kind::hot;
};

verdict judge(uint64_t count, uint64_t total, double expected, double threshold,
              uint32_t min_flows) {
    if (total < min_flows || expected <= 0 || expected >= 1) {
        return {};
    }
    double observed = double(count) / double(total);
    double z = binomial_z(count, total, expected);
    if (observed >= threshold * expected && z >= skew_detector::significance_z) {
        return {true, skew_kind::hot};
    }
    if (observed <= expected / threshold && z <= -skew_detector::significance_z) {
        return {true, skew_kind::starved};
    }
    return {};
}

} // namespace

backend_view skew_detector::view(uint32_t id) const {
    auto it = m_views.find(id);
    return it == m_views.end() ? backend_view{} : it->second;
}

std::vector<skew_detector::event> skew_detector::tick(clock::time_point now,
                                                      std::chrono::system_clock::time_point wall,
                                                      const std::vector<backend_sample>& samples) {
    // Window deltas per backend and totals per service.
    std::map<uint32_t, uint64_t> delta;
    std::map<uint32_t, double> span_s;
    std::map<std::string, uint64_t> service_new, service_active;
    std::map<uint32_t, history> kept;
    for (const backend_sample& s : samples) {
        history& h = m_history[s.id];
        h.points.emplace_back(now, s.new_flows);
        while (h.points.size() > 2 && now - h.points[1].first >= m_cfg.window) {
            h.points.pop_front();
        }
        uint64_t d = s.new_flows - h.points.front().second;
        delta[s.id] = d;
        span_s[s.id] = std::chrono::duration<double>(now - h.points.front().first).count();
        service_new[s.service] += d;
        service_active[s.service] += s.active_flows;
        kept[s.id] = std::move(h);
    }
    m_history = std::move(kept); // forget backends no longer configured

    std::vector<event> events;
    std::map<uint32_t, skew_alarm> alarms;
    m_views.clear();
    for (const backend_sample& s : samples) {
        uint64_t total_new = service_new[s.service];
        uint64_t total_active = service_active[s.service];
        backend_view v;
        v.observed_share = total_new == 0 ? 0 : double(delta[s.id]) / double(total_new);
        v.new_flows_per_s = span_s[s.id] > 0 ? double(delta[s.id]) / span_s[s.id] : 0;

        verdict by_new =
            judge(delta[s.id], total_new, s.expected_share, m_cfg.threshold, m_cfg.min_flows);
        verdict by_active =
            judge(s.active_flows, total_active, s.expected_share, m_cfg.threshold, m_cfg.min_flows);
        verdict now_v = by_new.skewed ? by_new : by_active;
        skew_basis basis = by_new.skewed ? skew_basis::new_flows : skew_basis::active_flows;

        history& h = m_history[s.id];
        auto existing = m_alarms.find(s.id);
        if (now_v.skewed) {
            h.calm_ticks = 0;
            skew_alarm a;
            if (existing != m_alarms.end()) {
                a = existing->second;
            } else {
                a.since = wall;
            }
            a.service = s.service;
            a.backend = s.backend;
            a.id = s.id;
            a.kind = now_v.kind;
            a.basis = basis;
            a.expected_share = s.expected_share;
            a.observed_share =
                basis == skew_basis::new_flows
                    ? v.observed_share
                    : (total_active == 0 ? 0 : double(s.active_flows) / double(total_active));
            a.flows = basis == skew_basis::new_flows ? total_new : total_active;
            if (existing == m_alarms.end()) {
                events.push_back({true, a});
            }
            alarms[s.id] = a;
            v.skewed = true;
        } else if (existing != m_alarms.end()) {
            // Hysteresis: an alarm stays until the condition has been gone for a while.
            if (++h.calm_ticks >= clear_after_ticks) {
                events.push_back({false, existing->second});
            } else {
                alarms[s.id] = existing->second;
                v.skewed = true;
            }
        }
        m_views[s.id] = v;
    }
    m_alarms = std::move(alarms);
    return events;
}

} // namespace evenflow::control
