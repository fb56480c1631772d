#include "control/guard.hpp"

#include <fmt/format.h>

#include <cmath>
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
                            svc.table.size(), worst_backend, worst * 100.0)));
        }
    }
    return out;
}

shift_review review_shift(const snapshot& before, const snapshot& after,
                          const config::skew_config& guard) {
    shift_review review;
    std::map<std::pair<std::string, std::string>, double> old_share;
    std::map<std::string, uint64_t> old_weight;
    for (const snapshot_backend& b : before.backends) {
        const snapshot_service& svc = before.services[b.service_index];
        old_share[{svc.name, b.key()}] = b.expected_share;
        old_weight[svc.name] += b.weight;
    }
    std::map<std::string, uint64_t> new_weight;
    for (const snapshot_backend& b : after.backends) {
        const snapshot_service& svc = after.services[b.service_index];
        new_weight[svc.name] += b.weight;
        auto it = old_share.find({svc.name, b.key()});
        if (it == old_share.end() || it->second <= 0) {
            continue; // new capacity, not a shift onto an existing server
        }
        double growth = b.expected_share / it->second;
        if (growth > guard.max_share_growth) {
            review.refused = true;
            review.lines.push_back(fmt::format(
                "service {}: backend {} expected share {} -> {} (x{:.1f}, limit x{:.1f})", svc.name,
                b.key(), pct(it->second), pct(b.expected_share), growth, guard.max_share_growth));
        }
    }
    for (const auto& [service, weight] : old_weight) {
        auto it = new_weight.find(service);
        if (it == new_weight.end() || weight == 0) {
            continue; // a removed service is a decision, not a capacity loss
        }
        double lost = 1.0 - double(it->second) / double(weight);
        if (lost > guard.max_capacity_loss) {
            review.refused = true;
            review.lines.push_back(fmt::format(
                "service {}: pool weight {} -> {} ({:.0f}% of its capacity removed, "
                "limit {:.0f}%)",
                service, weight, it->second, lost * 100.0, guard.max_capacity_loss * 100.0));
        }
    }
    return review;
}

} // namespace evenflow::control
