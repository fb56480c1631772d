#include "control/guard.hpp"

#include "config/diff.hpp"
#include "config/settings.hpp"

#include <fmt/format.h>

#include <cmath>
#include <ctime>
#include <map>

namespace evenflow::control {

namespace {

config::diagnostic finding(const config::config& cfg, config::severity level, std::string key,
                           std::string message) {
    config::diagnostic d;
    d.level = level;
    d.file = cfg.source_path;
    d.key = std::move(key);
    d.message = std::move(message);
    return d;
}

std::string pct(double share) {
    return fmt::format("{:.1f}%", share * 100.0);
}

} // namespace

std::vector<config::diagnostic> lint(const config::config& cfg, const snapshot& snap) {
    using config::severity;
    std::vector<config::diagnostic> out;

    for (size_t p = 0; p < cfg.pools.size(); ++p) {
        const config::pool_config& pool = cfg.pools[p];
        std::string key = fmt::format("pools[{}]", p);
        uint64_t total = 0;
        for (const auto& b : pool.backends) {
            total += b.weight;
        }
        bool used = false;
        for (const auto& svc : cfg.services) {
            used |= svc.pool == pool.name;
        }
        if (!used) {
            out.push_back(finding(cfg, severity::warning, key,
                                  fmt::format("pool {} is used by no service", pool.name)));
            continue;
        }
        if (!pool.backends.empty() && total == 0) {
            out.push_back(finding(cfg, severity::error, key,
                                  fmt::format("every backend of pool {} has weight 0: its "
                                              "services would send no traffic anywhere",
                                              pool.name)));
            continue;
        }
        if (pool.backends.size() == 1) {
            out.push_back(finding(cfg, severity::warning, key,
                                  fmt::format("pool {} has one backend: all of its traffic goes "
                                              "to one server and nothing takes over when it fails",
                                              pool.name)));
        }
        if (pool.backends.size() > 1) {
            for (size_t b = 0; b < pool.backends.size(); ++b) {
                const auto& be = pool.backends[b];
                if (2 * uint64_t(be.weight) > total) {
                    out.push_back(finding(
                        cfg, severity::warning, fmt::format("{}.backends[{}].weight", key, b),
                        fmt::format("backend {} holds {} of pool {}'s weight ({} of {}): more "
                                    "than all the others together",
                                    config::format_endpoint(be.address, be.port),
                                    pct(double(be.weight) / double(total)), pool.name, be.weight,
                                    total)));
                }
            }
        }
        if (cfg.skew.max_share && pool.backends.size() >= 3) {
            for (size_t b = 0; b < pool.backends.size(); ++b) {
                const auto& be = pool.backends[b];
                double share = double(be.weight) / double(total);
                if (share > *cfg.skew.max_share) {
                    out.push_back(finding(
                        cfg, severity::error, fmt::format("{}.backends[{}].weight", key, b),
                        fmt::format("backend {} holds {} of pool {}'s weight ({} of {}): above "
                                    "[skew] max_share {}",
                                    config::format_endpoint(be.address, be.port), pct(share),
                                    pool.name, be.weight, total, pct(*cfg.skew.max_share))));
                }
            }
        }
    }

    // The same address in two pools with different ports is usually a copy-paste slip.
    std::map<net::ip_addr, std::pair<std::string, uint16_t>> seen;
    for (const auto& pool : cfg.pools) {
        for (const auto& b : pool.backends) {
            auto [it, fresh] = seen.try_emplace(b.address, pool.name, b.port);
            if (!fresh && it->second.first != pool.name && it->second.second != b.port) {
                out.push_back(finding(
                    cfg, config::severity::warning, fmt::format("pools ({})", pool.name),
                    fmt::format("backend {} is in pool {} on port {} and in pool {} on port {}: "
                                "is one of the ports a mistake?",
                                b.address.to_string(), it->second.first, it->second.second,
                                pool.name, b.port)));
            }
        }
    }

    for (size_t s = 0; s < cfg.services.size(); ++s) {
        const auto& svc = cfg.services[s];
        bool on_link = false;
        for (const auto& i : cfg.interfaces) {
            on_link |= i.address.contains(svc.vip);
        }
        if (!on_link) {
            out.push_back(finding(cfg, config::severity::warning,
                                  fmt::format("services[{}].vip", s),
                                  fmt::format("VIP {} is on no interface's subnet: routers must "
                                              "send it to the balancer by a static route",
                                              svc.vip.to_string())));
        }
    }

    // Maglev can only approximate weights in a finite table.
    for (const snapshot_service& svc : snap.services) {
        double worst = 0;
        std::string worst_backend;
        for (uint32_t i : svc.backend_indexes) {
            const snapshot_backend& b = snap.backends[i];
            if (b.expected_share <= 0 || b.state != backend_state::unknown) {
                continue;
            }
            double off = std::abs(b.predicted_share - b.expected_share) / b.expected_share;
            if (off > worst) {
                worst = off;
                worst_backend = b.key();
            }
        }
        if (worst > 0.01) {
            out.push_back(finding(
                cfg, config::severity::warning, fmt::format("services[{}].table_size", svc.index),
                fmt::format("table_size {} puts backend {} {:.1f}% off its weight share; a "
                            "larger prime table evens it out",
                            svc.table_size(), worst_backend, worst * 100.0)));
        }
    }
    return out;
}

distribution expected_distribution(const config::config& cfg) {
    distribution d;
    std::map<std::string_view, const config::pool_config*> pools;
    for (const config::pool_config& p : cfg.pools) {
        pools.emplace(p.name, &p);
    }
    for (const config::service_config& svc : cfg.services) {
        auto it = pools.find(svc.pool);
        if (it == pools.end()) {
            continue;
        }
        uint64_t total = 0;
        for (const config::backend_config& b : it->second->backends) {
            total += b.weight;
        }
        d.weight[svc.name] = total;
        for (const config::backend_config& b : it->second->backends) {
            d.share[{svc.name, config::format_endpoint(b.address, b.port)}] =
                total == 0 ? 0.0 : double(b.weight) / double(total);
        }
    }
    return d;
}

namespace {

// Growth and capacity loss from `base` to `after`; with `series_rules`, also the funnel
// and max_share limits, and the story of the series in the lines.
shift_review review(const distribution& base, const distribution& running,
                    const distribution& after, const config::skew_config& guard,
                    std::optional<double> max_share, const series* story, bool series_rules) {
    shift_review review;
    const std::string label = story != nullptr ? baseline_label(*story) : std::string();
    std::string path;
    if (!label.empty() && !story->steps.empty()) {
        for (const std::string& step : story->steps) {
            path += step + ", ";
        }
        path = fmt::format("across {} applies ({}candidate)", story->steps.size() + 1, path);
    }
    auto share_of = [](const distribution& d, const auto& key) -> std::optional<double> {
        auto it = d.share.find(key);
        return it == d.share.end() ? std::nullopt : std::optional<double>(it->second);
    };
    std::map<std::string, size_t> backends; // per service, in the candidate
    for (const auto& [key, share] : after.share) {
        ++backends[key.first];
    }
    for (const auto& entry : after.share) {
        // Named copies, not structured bindings: the lambda below captures them, which
        // clang 14 (the fuzzing build) refuses for bindings.
        const auto& key = entry.first;
        const double share = entry.second;
        // The reference: the baseline's share, or the running one for a backend added
        // since (a new backend is new capacity, not a shift onto an existing server).
        std::optional<double> ref = share_of(base, key);
        bool from_base = ref.has_value();
        if (!ref) {
            ref = share_of(running, key);
        }
        std::optional<double> now = share_of(running, key);
        // The story is worth telling when the series moved this backend before.
        bool series = !path.empty() && from_base && now && std::abs(*now - *ref) > 1e-9;
        auto told = [&](const std::string& tail) {
            if (!ref) {
                return fmt::format("service {}: new backend {} expected share {} ({})", key.first,
                                   key.second, pct(share), tail);
            }
            return series
                       ? fmt::format("service {}: backend {} expected share {} ({}) -> {} {}: {}",
                                     key.first, key.second, pct(*ref), label, pct(share), path,
                                     tail)
                       : fmt::format("service {}: backend {} expected share {} -> {} ({})",
                                     key.first, key.second, pct(*ref), pct(share), tail);
        };
        if (ref && *ref > 0) {
            double growth = share / *ref;
            if (growth > guard.max_share_growth) {
                review.refused = true;
                review.lines.push_back(
                    told(fmt::format("x{:.1f}, limit x{:.1f}", growth, guard.max_share_growth)));
            }
        }
        if (!series_rules) {
            continue;
        }
        double before = ref.value_or(0.0);
        if (backends[key.first] >= 2 && share > 0.5 && before <= 0.5) {
            review.refused = true;
            review.lines.push_back(told("more than all the others together: the funnel "
                                        "`evenctl check` warns about"));
        }
        if (max_share && backends[key.first] >= 3 && share > *max_share && before <= *max_share) {
            review.refused = true;
            review.lines.push_back(told(fmt::format("above [skew] max_share {} in a pool of {}",
                                                    pct(*max_share), backends[key.first])));
        }
    }
    for (const auto& [service, weight] : base.weight) {
        auto it = after.weight.find(service);
        if (it == after.weight.end() || weight == 0) {
            continue; // a removed service is a decision, not a capacity loss
        }
        double lost = 1.0 - double(it->second) / double(weight);
        if (lost > guard.max_capacity_loss) {
            review.refused = true;
            auto now = running.weight.find(service);
            bool series = !path.empty() && now != running.weight.end() && now->second != weight;
            std::string tail = fmt::format("{:.0f}% of its capacity removed, limit {:.0f}%",
                                           lost * 100.0, guard.max_capacity_loss * 100.0);
            review.lines.push_back(series
                                       ? fmt::format("service {}: pool weight {} ({}) -> {} {}: {}",
                                                     service, weight, label, it->second, path, tail)
                                       : fmt::format("service {}: pool weight {} -> {} ({})",
                                                     service, weight, it->second, tail));
        }
    }
    return review;
}

} // namespace

shift_review review_shift(const distribution& before, const distribution& after,
                          const config::skew_config& guard) {
    return review(before, before, after, guard, std::nullopt, nullptr, false);
}

std::string baseline_label(const series& s) {
    if (s.baseline_version == 0) {
        return {};
    }
    std::time_t t = std::chrono::system_clock::to_time_t(s.baseline_at);
    std::tm tm{};
    gmtime_r(&t, &tm);
    return fmt::format("baseline v{}, {:02}:{:02}:{:02}", s.baseline_version, tm.tm_hour, tm.tm_min,
                       tm.tm_sec);
}

shift_review review_series(const distribution& base, const distribution& running,
                           const distribution& after, const config::skew_config& guard,
                           std::optional<double> max_share, const series& story) {
    return review(base, running, after, guard, max_share, &story, true);
}

std::string_view to_string(apply_verdict v) {
    return name_of(v);
}

apply_evaluation evaluate_apply(config::load_result loaded,
                                std::shared_ptr<const config::config> running, bool accept_shift,
                                const series& story) {
    apply_evaluation out;
    out.loaded = std::move(loaded);
    if (!out.loaded.ok()) {
        out.verdict = apply_verdict::invalid;
        return out;
    }
    auto next = std::make_shared<const config::config>(std::move(*out.loaded.value));
    out.loaded.value.reset();
    out.diff = config::diff(*running, *next); // shown by `evenctl diff` whatever the verdict
    // The running config's limits apply, so a config cannot loosen its own guard; a
    // max_share it sets can only tighten it.
    std::optional<double> max_share = running->skew.max_share;
    if (next->skew.max_share && (!max_share || *next->skew.max_share < *max_share)) {
        max_share = next->skew.max_share;
    }
    distribution now = expected_distribution(*running);
    distribution base = story.baseline ? expected_distribution(*story.baseline) : now;
    shift_review review =
        review_series(base, now, expected_distribution(*next), running->skew, max_share, story);
    out.shift_lines = std::move(review.lines);
    if (review.refused && !accept_shift && !out.diff.empty()) {
        out.verdict = apply_verdict::shift;
        return out;
    }
    out.shift_accepted = review.refused && !out.diff.empty();
    if (std::string why = config::restart_required(*running, *next); !why.empty()) {
        out.verdict = apply_verdict::restart;
        out.error = std::move(why);
        return out;
    }
    out.verdict = out.diff.empty() ? apply_verdict::unchanged : apply_verdict::accept;
    out.cfg = std::move(next);
    return out;
}

} // namespace evenflow::control
