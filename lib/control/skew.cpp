#include "control/skew.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_map>

namespace evenflow::control {

std::string_view to_string(skew_kind k) {
    return k == skew_kind::hot ? "hot" : "starved";
}
std::string_view to_string(skew_basis b) {
    switch (b) {
    case skew_basis::new_flows:
        return "new_flows";
    case skew_basis::active_flows:
        return "active_flows";
    case skew_basis::bytes:
        return "bytes";
    case skew_basis::packets:
        return "packets";
    }
    return "?";
}

std::string explain(const skew_alarm& a, const backend_view& v) {
    const double observed = a.observed_share * 100;
    const double expected = a.expected_share * 100;
    switch (a.basis) {
    case skew_basis::new_flows:
        return fmt::format("{} took {:.1f}% of {} new connections in the window, {:.1f}% "
                           "expected by weight and health: the config sends them there",
                           a.backend, observed, a.flows, expected);
    case skew_basis::active_flows:
        return fmt::format("{} holds {:.1f}% of {} open connections, {:.1f}% expected: "
                           "connections pinned there from an earlier config or health state",
                           a.backend, observed, a.flows, expected);
    case skew_basis::bytes:
    case skew_basis::packets:
        return fmt::format("{} carried {:.1f}% of the service's {} in the window, {:.1f}% "
                           "expected, while it took {:.1f}% of new connections: the "
                           "traffic's shape (larger transfers there), not the config; "
                           "reported, never rolled back",
                           a.backend, observed,
                           a.basis == skew_basis::bytes
                               ? fmt::format("{:.1f} MB", double(a.flows) / 1e6)
                               : fmt::format("{} packets", a.flows),
                           expected, v.observed_share * 100);
    }
    return {};
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

// Bytes and packets are not independent trials (a flow's packets go together), so
// their share is tested with the flows as the sample size. Only a hot backend is
// flagged: when one carries the large transfers, the others' small shares are the
// same cause seen again, not alarms of their own.
verdict judge_volume(uint64_t amount, uint64_t total, uint64_t min_total, uint64_t flows,
                     double expected, double threshold, uint32_t min_flows) {
    if (total < min_total || flows < min_flows || expected <= 0 || expected >= 1) {
        return {};
    }
    double observed = double(amount) / double(total);
    double sd = std::sqrt(expected * (1.0 - expected) / double(flows));
    double z = (observed - expected) / sd;
    if (observed >= threshold * expected && z >= skew_detector::significance_z) {
        return {true, skew_kind::hot};
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
    struct window_delta {
        uint64_t new_flows = 0, bytes = 0, packets = 0;
    };
    struct service_total {
        uint64_t new_flows = 0, active_flows = 0, bytes = 0, packets = 0;
    };
    std::vector<window_delta> delta(samples.size());
    std::vector<double> span_s(samples.size());
    std::unordered_map<std::string_view, service_total> service_totals;
    service_totals.reserve(samples.size());
    ++m_tick;
    for (size_t i = 0; i < samples.size(); ++i) {
        const backend_sample& s = samples[i];
        history& h = m_history[s.id];
        h.seen_tick = m_tick;
        h.points.push_back({now, s.new_flows, s.bytes, s.packets});
        while (h.points.size() > 2 && now - h.points[1].at >= m_cfg.window) {
            h.points.pop_front();
        }
        const point& first = h.points.front();
        delta[i] = {s.new_flows - first.new_flows, s.bytes - first.bytes,
                    s.packets - first.packets};
        span_s[i] = std::chrono::duration<double>(now - first.at).count();
        service_total& totals = service_totals[s.service];
        totals.new_flows += delta[i].new_flows;
        totals.active_flows += s.active_flows;
        totals.bytes += delta[i].bytes;
        totals.packets += delta[i].packets;
    }
    std::erase_if(m_history, [&](const auto& entry) {
        return entry.second.seen_tick != m_tick; // backends no longer configured
    });
    std::vector<event> events;
    std::map<uint32_t, skew_alarm> alarms;
    m_views.clear();
    for (size_t i = 0; i < samples.size(); ++i) {
        const backend_sample& s = samples[i];
        const service_total& totals = service_totals[s.service];
        const uint64_t total_new = totals.new_flows;
        const uint64_t total_active = totals.active_flows;
        auto share = [](uint64_t part, uint64_t whole) {
            return whole == 0 ? 0.0 : double(part) / double(whole);
        };
        backend_view v;
        v.observed_share = share(delta[i].new_flows, total_new);
        v.new_flows_per_s = span_s[i] > 0 ? double(delta[i].new_flows) / span_s[i] : 0;
        v.bytes_share = share(delta[i].bytes, totals.bytes);
        v.packets_share = share(delta[i].packets, totals.packets);

        // The flows behind the window's bytes: those that started in it or still run.
        const uint64_t flows_seen = std::max(total_new, total_active);
        // In order of preference: what a config decides first, then the traffic's shape.
        const std::pair<verdict, skew_basis> verdicts[] = {
            {judge(delta[i].new_flows, total_new, s.expected_share, m_cfg.threshold,
                   m_cfg.min_flows),
             skew_basis::new_flows},
            {judge(s.active_flows, total_active, s.expected_share, m_cfg.threshold,
                   m_cfg.min_flows),
             skew_basis::active_flows},
            {judge_volume(delta[i].bytes, totals.bytes, m_cfg.min_bytes, flows_seen,
                          s.expected_share, m_cfg.threshold, m_cfg.min_flows),
             skew_basis::bytes},
            {judge_volume(delta[i].packets, totals.packets, uint64_t(m_cfg.min_flows) * 10,
                          flows_seen, s.expected_share, m_cfg.threshold, m_cfg.min_flows),
             skew_basis::packets},
        };
        verdict now_v;
        skew_basis basis = skew_basis::new_flows;
        for (const auto& [candidate, b] : verdicts) {
            if (candidate.skewed) {
                now_v = candidate;
                basis = b;
                break;
            }
        }

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
            switch (basis) {
            case skew_basis::new_flows:
                a.observed_share = v.observed_share;
                a.flows = total_new;
                break;
            case skew_basis::active_flows:
                a.observed_share = share(s.active_flows, total_active);
                a.flows = total_active;
                break;
            case skew_basis::bytes:
                a.observed_share = v.bytes_share;
                a.flows = totals.bytes;
                break;
            case skew_basis::packets:
                a.observed_share = v.packets_share;
                a.flows = totals.packets;
                break;
            }
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
