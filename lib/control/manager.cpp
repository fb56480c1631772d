#include "control/manager.hpp"

#include "config/diff.hpp"

#include <fmt/format.h>

namespace evenflow::control {

std::string_view to_string(admin_state s) {
    switch (s) {
    case admin_state::enabled:
        return "enabled";
    case admin_state::draining:
        return "draining";
    case admin_state::disabled:
        return "disabled";
    }
    return "?";
}

std::string_view to_string(health_verdict v) {
    switch (v) {
    case health_verdict::unknown:
        return "unknown";
    case health_verdict::up:
        return "up";
    case health_verdict::down:
        return "down";
    }
    return "?";
}

std::string restart_required(const config::config& running, const config::config& next) {
    std::vector<std::string> fixed;
    if (running.eal.args != next.eal.args) {
        fixed.emplace_back("eal.args");
    }
    if (running.control.socket != next.control.socket) {
        fixed.emplace_back("control.socket");
    }
    if (running.control.metrics != next.control.metrics) {
        fixed.emplace_back("control.metrics");
    }
    if (running.dataplane.workers != next.dataplane.workers) {
        fixed.emplace_back("dataplane.workers");
    }
    if (running.dataplane.flow_capacity != next.dataplane.flow_capacity) {
        fixed.emplace_back("dataplane.flow_capacity");
    }
    const auto& a = running.dataplane.timeouts;
    const auto& b = next.dataplane.timeouts;
    if (a.syn != b.syn || a.established != b.established || a.closing != b.closing) {
        fixed.emplace_back("dataplane.timeouts");
    }
    bool same_interfaces = running.interfaces.size() == next.interfaces.size();
    for (size_t i = 0; same_interfaces && i < running.interfaces.size(); ++i) {
        const auto& x = running.interfaces[i];
        const auto& y = next.interfaces[i];
        same_interfaces = x.name == y.name && x.device == y.device && x.address == y.address &&
                          x.gateway == y.gateway;
    }
    if (!same_interfaces) {
        fixed.emplace_back("interfaces");
    }
    if (fixed.empty()) {
        return {};
    }
    std::string list = fixed[0];
    for (size_t i = 1; i < fixed.size(); ++i) {
        list += ", " + fixed[i];
    }
    return fmt::format("{} cannot change while evenflowd runs: restart it to change {}", list,
                       fixed.size() == 1 ? "this" : "these");
}

admin_state config_manager::admin_of(uint32_t id) const {
    auto it = m_admin.find(id);
    return it == m_admin.end() ? admin_state::enabled : it->second;
}

health_verdict config_manager::health_of(uint32_t id) const {
    auto it = m_health.find(id);
    return it == m_health.end() ? health_verdict::unknown : it->second;
}

std::map<uint32_t, backend_state> config_manager::effective_states(const config::config& cfg) {
    std::map<uint32_t, backend_state> states;
    for (const config::service_config& svc : cfg.services) {
        const config::pool_config* pool = cfg.find_pool(svc.pool);
        if (pool == nullptr) {
            continue;
        }
        for (const config::backend_config& b : pool->backends) {
            uint32_t id = m_registry.id_for(svc.name, b.address, b.port);
            if (id == balance::no_backend) {
                continue;
            }
            backend_state s = backend_state::unknown;
            admin_state admin = admin_of(id);
            health_verdict health = health_of(id);
            if (admin == admin_state::disabled) {
                s = backend_state::disabled;
            } else if (admin == admin_state::draining || b.weight == 0) {
                s = backend_state::draining;
            } else if (pool->health.kind == config::health_kind::none) {
                s = backend_state::up;
            } else if (health == health_verdict::up) {
                s = backend_state::up;
            } else if (health == health_verdict::down) {
                s = backend_state::down;
            }
            states[id] = s;
        }
    }
    return states;
}

build_result config_manager::rebuild() {
    const config::config& cfg = running();
    build_result built = build_snapshot(cfg, m_registry, effective_states(cfg), version());
    if (built.value) {
        ++m_generation;
    }
    return built;
}

change_result config_manager::commit(std::shared_ptr<const config::config> cfg, const actor& who,
                                     std::string origin) {
    change_result out;
    uint64_t version = m_next_version;
    build_result built = build_snapshot(*cfg, m_registry, effective_states(*cfg), version);
    if (!built.value) {
        out.error = built.error;
        out.version = this->version();
        return out;
    }
    ++m_next_version;
    ++m_generation;
    history_entry entry;
    entry.version = version;
    entry.at = std::chrono::system_clock::now();
    entry.who = who;
    entry.origin = std::move(origin);
    if (!m_history.empty()) {
        entry.diff = config::diff(running(), *cfg);
    }
    entry.cfg = std::move(cfg);
    out.diff = entry.diff;
    m_history.push_back(std::move(entry));
    while (m_history.size() > m_keep) {
        m_history.pop_front();
    }
    out.ok = true;
    out.version = version;
    out.snap = std::move(built.value);
    return out;
}

change_result config_manager::start(const config::config& cfg, const actor& who,
                                    std::string origin) {
    return commit(std::make_shared<const config::config>(cfg), who, std::move(origin));
}

change_result config_manager::apply(const config::config& next, const actor& who,
                                    std::string origin) {
    change_result out;
    out.version = version();
    if (m_history.empty()) {
        return start(next, who, std::move(origin));
    }
    if (std::string why = restart_required(running(), next); !why.empty()) {
        out.error = why;
        return out;
    }
    if (config::diff(running(), next).empty()) {
        out.ok = true; // nothing to do: no new version
        return out;
    }
    return commit(std::make_shared<const config::config>(next), who, std::move(origin));
}

change_result config_manager::rollback(std::optional<uint64_t> version, const actor& who) {
    change_result out;
    out.version = this->version();
    if (m_history.size() < 2 && !version) {
        out.error = "no earlier version to roll back to";
        return out;
    }
    const history_entry* target = nullptr;
    if (!version) {
        target = &m_history[m_history.size() - 2];
    } else {
        for (const history_entry& e : m_history) {
            if (e.version == *version) {
                target = &e;
            }
        }
        if (target == nullptr) {
            out.error = fmt::format("version {} is not kept (kept: {}..{}); see evenctl history",
                                    *version, m_history.front().version, m_history.back().version);
            return out;
        }
        if (*version == this->version()) {
            out.error = fmt::format("version {} is already running", *version);
            return out;
        }
    }
    uint64_t target_version = target->version;
    std::shared_ptr<const config::config> cfg = target->cfg;
    if (std::string why = restart_required(running(), *cfg); !why.empty()) {
        out.error = why;
        return out;
    }
    return commit(std::move(cfg), who, fmt::format("rollback to {}", target_version));
}

change_result config_manager::set_admin(const std::string& service, const std::string& backend,
                                        admin_state state, const actor& who) {
    (void)who;
    change_result out;
    out.version = version();
    const config::config& cfg = running();
    const config::service_config* svc = cfg.find_service(service);
    if (svc == nullptr) {
        out.error = fmt::format("no service named {}; see evenctl services", service);
        return out;
    }
    const config::pool_config* pool = cfg.find_pool(svc->pool);
    uint32_t id = balance::no_backend;
    for (const config::backend_config& b : pool->backends) {
        std::string key = b.address.is_v4() ? fmt::format("{}:{}", b.address.to_string(), b.port)
                                            : fmt::format("[{}]:{}", b.address.to_string(), b.port);
        if (key == backend) {
            id = m_registry.id_for(svc->name, b.address, b.port);
        }
    }
    if (id == balance::no_backend) {
        out.error = fmt::format("service {} has no backend {}; see evenctl backends {}", service,
                                backend, service);
        return out;
    }
    if (state == admin_state::enabled) {
        m_admin.erase(id);
    } else {
        m_admin[id] = state;
    }
    build_result built = rebuild();
    if (!built.value) {
        out.error = built.error;
        return out;
    }
    out.ok = true;
    out.diff.push_back(fmt::format("~ backend {} {}: {}", service, backend, to_string(state)));
    out.snap = std::move(built.value);
    return out;
}

change_result config_manager::set_health(uint32_t backend_id, health_verdict verdict) {
    change_result out;
    out.version = version();
    if (health_of(backend_id) == verdict) {
        out.ok = true;
        return out;
    }
    m_health[backend_id] = verdict;
    build_result built = rebuild();
    if (!built.value) {
        out.error = built.error;
        return out;
    }
    out.ok = true;
    out.snap = std::move(built.value);
    return out;
}

} // namespace evenflow::control
