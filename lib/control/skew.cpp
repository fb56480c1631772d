#include "control/skew.hpp"

#include <cmath>
#include <string_view>
#include <unordered_map>

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
    // Window deltas per backend (by position in `samples`) and totals per service.
    // Flat and hashed containers: a tick runs every second over every backend.
    std::vector<uint64_t> delta(samples.size());
    std::vector<double> span_s(samples.size());
    std::unordered_map<std::string_view, std::pair<uint64_t, uint64_t>> service_totals;
    service_totals.reserve(samples.size());
    ++m_tick;
    for (size_t i = 0; i < samples.size(); ++i) {
        const backend_sample& s = samples[i];
        history& h = m_history[s.id];
        h.seen_tick = m_tick;
        h.points.emplace_back(now, s.new_flows);
        while (h.points.size() > 2 && now - h.points[1].first >= m_cfg.window) {
            h.points.pop_front();
        }
        delta[i] = s.new_flows - h.points.front().second;
        span_s[i] = std::chrono::duration<double>(now - h.points.front().first).count();
        auto& totals = service_totals[s.service];
        totals.first += delta[i];
        totals.second += s.active_flows;
    }
    std::erase_if(m_history, [&](const auto& entry) {
        return entry.second.seen_tick != m_tick; // backends no longer configured
    });
    std::vector<event> events;
    std::map<uint32_t, skew_alarm> alarms;
    m_views.clear();
    for (size_t i = 0; i < samples.size(); ++i) {
        const backend_sample& s = samples[i];
        const auto& totals = service_totals[s.service];
        uint64_t total_new = totals.first;
        uint64_t total_active = totals.second;
        backend_view v;
        v.observed_share = total_new == 0 ? 0 : double(delta[i]) / double(total_new);
        v.new_flows_per_s = span_s[i] > 0 ? double(delta[i]) / span_s[i] : 0;

        verdict by_new =
            judge(delta[i], total_new, s.expected_share, m_cfg.threshold, m_cfg.min_flows);
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
