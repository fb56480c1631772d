#include "control/skew.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace evenflow::control {

std::string_view to_string(skew_kind k) {
    return name_of(k);
}
std::string_view to_string(skew_basis b) {
    return name_of(b);
}

namespace {

// "198.18.9.9 opened 94.0% of the window's 3000 SYNs (unverified: anyone can send
// them) to web and all of theirs went to 10.20.0.13:8080, which took 95.0%, 25.0%
// expected: without them the shares are as configured; the traffic, not the config
// (reported, never rolled back)"
std::string explain_heavy_hitter(const skew_alarm& a) {
    std::string who;
    uint64_t theirs = 0, theirs_here = 0;
    for (const heavy_client& c : a.clients) {
        if (!who.empty()) {
            who += ", ";
        }
        who += c.client;
        theirs += c.to_service;
        theirs_here += c.to_backend;
    }
    const bool by_syns = a.basis == skew_basis::syns;
    const double of_window =
        a.flows == 0 ? 0.0 : 100.0 * double(std::min(theirs, a.flows)) / double(a.flows);
    const double went_here = theirs == 0 ? 0.0 : 100.0 * double(theirs_here) / double(theirs);
    std::string what = by_syns ? fmt::format("{} SYNs (unverified: anyone can send them)", a.flows)
                               : fmt::format("{} new connections", a.flows);
    std::string shares =
        a.basis == skew_basis::new_flows || by_syns
            ? fmt::format("{} took {:.1f}%, {:.1f}% expected", a.backend, a.observed_share * 100,
                          a.expected_share * 100)
            : fmt::format("{} holds {:.1f}% of the service's {}, {:.1f}% expected", a.backend,
                          a.observed_share * 100, to_string(a.basis), a.expected_share * 100);
    return fmt::format("{} opened {:.1f}% of the window's {} to {}, {:.0f}% of theirs to {}; {}: "
                       "without them the shares are as configured, so the traffic, not the "
                       "config (reported, never rolled back)",
                       who.empty() ? std::string("a few clients") : who, of_window, what, a.service,
                       went_here, a.backend, shares);
}

} // namespace

std::string explain(const skew_alarm& a, const backend_view& v) {
    const double observed = a.observed_share * 100;
    const double expected = a.expected_share * 100;
    if (a.kind == skew_kind::heavy_hitter) {
        return explain_heavy_hitter(a);
    }
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
    case skew_basis::syns:
        return fmt::format("{} took {:.1f}% of {} SYNs, {:.1f}% expected", a.backend, observed,
                           a.flows, expected);
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

namespace {

// Which backends of one service a few clients explain, for one kind of count.
struct explanation {
    bool found = false;
    std::vector<uint8_t> explained;               // per member
    std::vector<std::vector<heavy_client>> named; // per member: its heavy clients
    std::vector<heavy_client> all_named;          // the service's, heaviest first
};

struct member_counts {
    uint32_t id;
    double expected;
    uint64_t count; // in the window
    verdict v;
};

explanation explain_by_clients(const std::vector<member_counts>& members, uint64_t total,
                               flow::client_event event, const client_window& clients,
                               const config::skew_config& cfg) {
    explanation x;
    x.explained.assign(members.size(), 0);
    x.named.assign(members.size(), {});
    for (bool networks : {false, true}) {
        std::vector<client_key> heavy; // client with network bit, backend 0
        std::vector<std::vector<client_window::ranked>> found(members.size());
        for (size_t i = 0; i < members.size(); ++i) {
            const member_counts& m = members[i];
            if (!m.v.skewed || m.v.kind != skew_kind::hot) {
                continue;
            }
            const double excess = double(m.count) - m.expected * double(total);
            const auto at_least =
                uint64_t(std::max(1.0, std::ceil(skew_detector::heavy_hitter_share * excess)));
            found[i] = clients.of_backend(m.id, networks, event, at_least,
                                          skew_detector::max_named_clients);
            for (const auto& r : found[i]) {
                client_key k{r.key.client, networks ? flow::client_sketch::network_bit : 0};
                if (std::find(heavy.begin(), heavy.end(), k) == heavy.end()) {
                    heavy.push_back(k);
                }
            }
        }
        if (heavy.empty()) {
            continue;
        }
        // Take them out (by what they surely sent) and judge again.
        std::vector<uint64_t> removed(members.size(), 0);
        std::vector<uint64_t> per_client(heavy.size(), 0);
        uint64_t removed_total = 0;
        for (size_t i = 0; i < members.size(); ++i) {
            for (size_t h = 0; h < heavy.size(); ++h) {
                uint64_t n =
                    clients.counts({heavy[h].client, heavy[h].tag | members[i].id})[size_t(event)]
                        .lower_bound();
                per_client[h] += n;
                removed[i] += n;
            }
            removed[i] = std::min(removed[i], members[i].count);
            removed_total += removed[i];
        }
        removed_total = std::min(removed_total, total);
        for (size_t i = 0; i < members.size(); ++i) {
            const member_counts& m = members[i];
            if (!m.v.skewed) {
                continue;
            }
            verdict again = judge(m.count - removed[i], total - removed_total, m.expected,
                                  cfg.threshold, cfg.min_flows);
            if (!again.skewed) {
                x.explained[i] = 1;
                x.found = x.found || m.v.kind == skew_kind::hot;
            }
        }
        if (!x.found) {
            std::fill(x.explained.begin(), x.explained.end(), uint8_t(0));
            continue;
        }
        auto service_count = [&](const client_key& k) {
            for (size_t h = 0; h < heavy.size(); ++h) {
                if (heavy[h].client == k.client) {
                    return per_client[h];
                }
            }
            return uint64_t(0);
        };
        for (size_t i = 0; i < members.size(); ++i) {
            for (const auto& r : found[i]) {
                heavy_client c{r.key.text(), r.counts[size_t(event)].lower_bound(),
                               service_count(r.key)};
                x.named[i].push_back(c);
                auto same = [&](const heavy_client& o) {
                    return o.client == c.client;
                };
                if (std::find_if(x.all_named.begin(), x.all_named.end(), same) ==
                    x.all_named.end()) {
                    x.all_named.push_back(c);
                }
            }
        }
        std::sort(x.all_named.begin(), x.all_named.end(),
                  [](const heavy_client& a, const heavy_client& b) {
                      return a.to_service > b.to_service;
                  });
        if (x.all_named.size() > skew_detector::max_named_clients) {
            x.all_named.resize(skew_detector::max_named_clients);
        }
        return x;
    }
    return x;
}

} // namespace

std::vector<skew_detector::event> skew_detector::tick(clock::time_point now,
                                                      std::chrono::system_clock::time_point wall,
                                                      const std::vector<backend_sample>& samples) {
    // Window deltas per backend (by position in `samples`) and totals per service.
    // Flat and hashed containers: a tick runs every second over every backend.
    struct window_delta {
        uint64_t new_flows = 0, syns = 0, bytes = 0, packets = 0;
    };
    struct service_total {
        uint64_t new_flows = 0, syns = 0, active_flows = 0, bytes = 0, packets = 0;
        std::vector<size_t> members; // positions in `samples`
    };
    std::vector<window_delta> delta(samples.size());
    std::vector<double> span_s(samples.size());
    std::vector<size_t> member_index(samples.size(), 0); // position in its service
    std::unordered_map<std::string_view, service_total> service_totals;
    service_totals.reserve(samples.size());
    ++m_tick;
    for (size_t i = 0; i < samples.size(); ++i) {
        const backend_sample& s = samples[i];
        history& h = m_history[s.id];
        h.seen_tick = m_tick;
        h.points.push_back({now, s.new_flows, s.syns, s.bytes, s.packets});
        while (h.points.size() > 2 && now - h.points[1].at >= m_cfg.window) {
            h.points.pop_front();
        }
        const point& first = h.points.front();
        delta[i] = {s.new_flows - first.new_flows, s.syns - first.syns, s.bytes - first.bytes,
                    s.packets - first.packets};
        span_s[i] = std::chrono::duration<double>(now - first.at).count();
        service_total& totals = service_totals[s.service];
        totals.new_flows += delta[i].new_flows;
        totals.syns += delta[i].syns;
        totals.active_flows += s.active_flows;
        totals.bytes += delta[i].bytes;
        totals.packets += delta[i].packets;
        member_index[i] = totals.members.size();
        totals.members.push_back(i);
    }
    std::erase_if(m_history, [&](const auto& entry) {
        return entry.second.seen_tick != m_tick; // backends no longer configured
    });
    auto share = [](uint64_t part, uint64_t whole) {
        return whole == 0 ? 0.0 : double(part) / double(whole);
    };

    // Verdicts per backend: on verified connections, on unverified SYNs, and the first
    // of the others (active flows, then bytes, then packets) that is skewed.
    std::vector<verdict> on_flows(samples.size()), on_syns(samples.size()),
        on_other(samples.size());
    std::vector<skew_basis> other_basis(samples.size(), skew_basis::active_flows);
    for (size_t i = 0; i < samples.size(); ++i) {
        const backend_sample& s = samples[i];
        const service_total& totals = service_totals[s.service];
        on_flows[i] = judge(delta[i].new_flows, totals.new_flows, s.expected_share, m_cfg.threshold,
                            m_cfg.min_flows);
        on_syns[i] =
            judge(delta[i].syns, totals.syns, s.expected_share, m_cfg.threshold, m_cfg.min_flows);
        // The flows behind the window's bytes: those that started in it or still run.
        const uint64_t flows_seen = std::max(totals.new_flows, totals.active_flows);
        const std::pair<verdict, skew_basis> others[] = {
            {judge(s.active_flows, totals.active_flows, s.expected_share, m_cfg.threshold,
                   m_cfg.min_flows),
             skew_basis::active_flows},
            {judge_volume(delta[i].bytes, totals.bytes, m_cfg.min_bytes, flows_seen,
                          s.expected_share, m_cfg.threshold, m_cfg.min_flows),
             skew_basis::bytes},
            {judge_volume(delta[i].packets, totals.packets, uint64_t(m_cfg.min_flows) * 10,
                          flows_seen, s.expected_share, m_cfg.threshold, m_cfg.min_flows),
             skew_basis::packets},
        };
        for (const auto& [candidate, b] : others) {
            if (candidate.skewed) {
                on_other[i] = candidate;
                other_basis[i] = b;
                break;
            }
        }
    }

    // Per service: which of those verdicts a few clients explain.
    std::vector<const explanation*> flows_by(samples.size(), nullptr),
        syns_by(samples.size(), nullptr);
    std::vector<explanation> explanations;
    explanations.reserve(service_totals.size() * 2);
    // (Not a structured binding: lambdas below capture it, which clang 14 refuses.)
    for (const auto& entry : service_totals) {
        const service_total& totals = entry.second;
        if (!samples[totals.members.front()].pins_clients) {
            continue;
        }
        auto members_of = [&](const std::vector<verdict>& v, bool syns) {
            std::vector<member_counts> m;
            for (size_t k = 0; k < totals.members.size(); ++k) {
                size_t i = totals.members[k];
                m.push_back({samples[i].id, samples[i].expected_share,
                             syns ? delta[i].syns : delta[i].new_flows, v[i]});
            }
            return m;
        };
        auto any_hot = [&](const std::vector<verdict>& v) {
            return std::any_of(totals.members.begin(), totals.members.end(), [&](size_t i) {
                return v[i].skewed && v[i].kind == skew_kind::hot;
            });
        };
        if (any_hot(on_flows)) {
            explanations.push_back(explain_by_clients(members_of(on_flows, false), totals.new_flows,
                                                      flow::client_event::verified, m_clients,
                                                      m_cfg));
            for (size_t i : totals.members) {
                flows_by[i] = &explanations.back();
            }
        }
        if (any_hot(on_syns)) {
            explanations.push_back(explain_by_clients(members_of(on_syns, true), totals.syns,
                                                      flow::client_event::syn, m_clients, m_cfg));
            for (size_t i : totals.members) {
                syns_by[i] = &explanations.back();
            }
        }
    }

    std::vector<event> events;
    std::map<uint32_t, skew_alarm> alarms;
    m_views.clear();
    for (size_t i = 0; i < samples.size(); ++i) {
        const backend_sample& s = samples[i];
        const service_total& totals = service_totals[s.service];
        backend_view v;
        v.observed_share = share(delta[i].new_flows, totals.new_flows);
        v.new_flows_per_s = span_s[i] > 0 ? double(delta[i].new_flows) / span_s[i] : 0;
        v.bytes_share = share(delta[i].bytes, totals.bytes);
        v.packets_share = share(delta[i].packets, totals.packets);
        v.window_new_flows = delta[i].new_flows;
        v.window_syns = delta[i].syns;

        const size_t k = member_index[i];
        const explanation* fx = flows_by[i];
        const explanation* sx = syns_by[i];
        std::optional<skew_alarm> found;
        auto make = [&](skew_kind kind, skew_basis basis) {
            skew_alarm a;
            a.service = s.service;
            a.backend = s.backend;
            a.id = s.id;
            a.kind = kind;
            a.basis = basis;
            a.expected_share = s.expected_share;
            switch (basis) {
            case skew_basis::new_flows:
                a.observed_share = v.observed_share;
                a.flows = totals.new_flows;
                break;
            case skew_basis::syns:
                a.observed_share = share(delta[i].syns, totals.syns);
                a.flows = totals.syns;
                break;
            case skew_basis::active_flows:
                a.observed_share = share(s.active_flows, totals.active_flows);
                a.flows = totals.active_flows;
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
            return a;
        };
        const bool service_explained = fx != nullptr && fx->found;
        if (on_flows[i].skewed) {
            if (service_explained && fx->explained[k] != 0) {
                if (on_flows[i].kind == skew_kind::hot) { // starved by them: no alarm
                    found = make(skew_kind::heavy_hitter, skew_basis::new_flows);
                    found->clients = fx->named[k];
                }
            } else {
                found = make(on_flows[i].kind, skew_basis::new_flows);
            }
        } else if (on_other[i].skewed) {
            // The same clients' connections stay open and carry their bytes.
            found = make(service_explained ? skew_kind::heavy_hitter : on_other[i].kind,
                         other_basis[i]);
            if (service_explained) {
                found->clients = fx->all_named;
            }
        } else if (on_syns[i].skewed && on_syns[i].kind == skew_kind::hot && sx != nullptr &&
                   sx->found && sx->explained[k] != 0) {
            found = make(skew_kind::heavy_hitter, skew_basis::syns);
            found->clients = sx->named[k];
        }

        history& h = m_history[s.id];
        auto existing = m_alarms.find(s.id);
        if (found) {
            h.calm_ticks = 0;
            skew_alarm& a = *found;
            const bool anew = existing == m_alarms.end() || existing->second.kind != a.kind ||
                              (causes_rollback(a) && !causes_rollback(existing->second));
            a.since = anew ? wall : existing->second.since;
            if (anew) {
                events.push_back({true, a});
            }
            alarms[s.id] = std::move(a);
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
