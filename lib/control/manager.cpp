#include "control/manager.hpp"

#include "config/diff.hpp"
#include "config/settings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

namespace evenflow::control {

std::string_view to_string(admin_state s) {
    return name_of(s);
}

std::string_view to_string(health_verdict v) {
    return name_of(v);
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

build_result config_manager::rebuild(const snapshot* previous) {
    build_result built =
        build_snapshot(m_history.back().cfg, m_registry, effective_states(running()), version(),
                       {previous, true, m_fallback_seed});
    if (built.value) {
        ++m_generation;
    }
    return built;
}

std::unique_ptr<snapshot_builder>
config_manager::builder_for(std::shared_ptr<const config::config> cfg, uint64_t version,
                            const snapshot* previous) {
    ++m_generation;
    auto states = effective_states(*cfg);
    return std::make_unique<snapshot_builder>(std::move(cfg), m_registry, std::move(states),
                                              version,
                                              build_options{previous, true, m_fallback_seed});
}

namespace {

struct walk_result {
    uint64_t start_of_last = 0; // the baseline the newest entry started under
    uint64_t now = 0;           // the baseline at `now`
};

walk_result walk_series(const std::deque<history_entry>& h,
                        std::chrono::system_clock::time_point now,
                        std::chrono::system_clock::duration window) {
    walk_result out;
    std::map<uint64_t, uint64_t> at_end; // version -> the baseline when it stopped running
    uint64_t current = 0;
    for (size_t i = 0; i < h.size(); ++i) {
        const history_entry& e = h[i];
        uint64_t start = current;
        if (i == 0) {
            start = e.baseline != 0 ? e.baseline : e.version;
        } else if (e.accepted_shift) {
            start = e.version;
        } else if (e.rollback_of != 0) {
            auto it = at_end.find(e.rollback_of);
            start = it != at_end.end() ? it->second : (e.baseline != 0 ? e.baseline : current);
        }
        auto until = i + 1 < h.size() ? h[i + 1].at : now;
        current = until - e.at >= window ? e.version : start;
        at_end[e.version] = current;
        out.start_of_last = start;
    }
    out.now = current;
    return out;
}

} // namespace

uint64_t series_baseline(const std::deque<history_entry>& history,
                         std::chrono::system_clock::time_point now,
                         std::chrono::system_clock::duration window) {
    return walk_series(history, now, window).now;
}

const history_entry* config_manager::find_entry(uint64_t version) const {
    for (const history_entry& e : m_history) {
        if (e.version == version) {
            return &e;
        }
    }
    for (const history_entry& e : m_pinned) {
        if (e.version == version) {
            return &e;
        }
    }
    return nullptr;
}

config_manager::baseline_view
config_manager::baseline(std::chrono::system_clock::time_point now) const {
    baseline_view view;
    if (m_history.empty()) {
        return view;
    }
    uint64_t v = series_baseline(m_history, now, running().skew.baseline_window);
    view.entry = find_entry(v);
    if (view.entry == nullptr) {
        view.entry = &m_history.front();
    }
    if (view.entry->accepted_shift) {
        view.accepted_from = find_entry(view.entry->accepted_from);
    }
    for (const history_entry& e : m_history) {
        if (e.version > view.entry->version) {
            view.since.push_back(&e);
        }
    }
    return view;
}

uint64_t config_manager::record(std::shared_ptr<const config::config> cfg, const actor& who,
                                std::string origin, std::vector<std::string> diff,
                                record_flags flags) {
    auto now = std::chrono::system_clock::now();
    uint64_t replaced = m_history.empty() ? 0 : baseline(now).entry->version;
    history_entry entry;
    entry.version = m_next_version++;
    entry.at = now;
    entry.who = who;
    entry.origin = std::move(origin);
    entry.diff = std::move(diff);
    entry.cfg = std::move(cfg);
    entry.accepted_shift = flags.accepted_shift && replaced != 0;
    entry.accepted_from = entry.accepted_shift ? replaced : 0;
    entry.rollback_of = flags.rollback_of;
    entry.baseline = entry.version; // the first version is its own baseline
    m_history.push_back(std::move(entry));
    auto window = m_history.back().cfg->skew.baseline_window;
    m_history.back().baseline = walk_series(m_history, now, window).start_of_last;
    trim_history(now);
    note_running(std::chrono::steady_clock::now());
    return m_history.back().version;
}

void config_manager::trim_history(std::chrono::system_clock::time_point now) {
    // Versions fall out of the kept history oldest first; the baseline's entries stay
    // (pinned) as long as the baseline refers to them.
    baseline_view view = baseline(now);
    std::set<uint64_t> needed{view.entry->version, view.entry->accepted_from};
    std::vector<history_entry> pinned;
    for (history_entry& e : m_pinned) {
        if (needed.count(e.version) != 0) {
            pinned.push_back(std::move(e));
        }
    }
    while (m_history.size() > m_keep) {
        if (needed.count(m_history.front().version) != 0) {
            pinned.push_back(std::move(m_history.front()));
        }
        m_history.pop_front();
    }
    m_pinned = std::move(pinned);
}

void config_manager::note_running(std::chrono::steady_clock::time_point now) {
    const config::config& cfg = running();
    for (const config::service_config& svc : cfg.services) {
        if (const config::pool_config* pool = cfg.find_pool(svc.pool)) {
            for (const config::backend_config& b : pool->backends) {
                if (uint32_t id = m_registry.find(svc.name, b.address, b.port)) {
                    m_last_running[id] = now;
                }
            }
        }
    }
}

size_t config_manager::reclaim_ids(std::chrono::steady_clock::time_point now,
                                   std::chrono::steady_clock::duration hold,
                                   const std::function<bool(uint32_t)>& in_use) {
    note_running(now);
    std::set<backend_registry::key> named;
    for (const history_entry& e : m_history) {
        for (const config::service_config& svc : e.cfg->services) {
            if (const config::pool_config* pool = e.cfg->find_pool(svc.pool)) {
                for (const config::backend_config& b : pool->backends) {
                    named.emplace(svc.name, b.address, b.port);
                }
            }
        }
    }
    return m_registry.release_if([&](const backend_registry::key& k, uint32_t id) {
        auto seen = m_last_running.find(id);
        bool quiet = seen == m_last_running.end() || now - seen->second >= hold;
        if (named.count(k) != 0 || !quiet || in_use(id) || m_admin.count(id) != 0) {
            return false;
        }
        m_last_running.erase(id);
        m_health.erase(id);
        return true;
    });
}

change_result config_manager::commit(std::shared_ptr<const config::config> cfg, const actor& who,
                                     std::string origin, record_flags flags) {
    change_result out;
    build_result built = build_snapshot(cfg, m_registry, effective_states(*cfg), m_next_version,
                                        {nullptr, true, m_fallback_seed});
    if (!built.value) {
        out.error = built.error;
        out.version = this->version();
        return out;
    }
    ++m_generation;
    std::vector<std::string> diff;
    if (!m_history.empty()) {
        diff = config::diff(running(), *cfg);
    }
    out.diff = diff;
    out.version = record(std::move(cfg), who, std::move(origin), std::move(diff), flags);
    out.ok = true;
    out.snap = std::move(built.value);
    return out;
}

change_result config_manager::start(const config::config& cfg, const actor& who,
                                    std::string origin) {
    return commit(std::make_shared<const config::config>(cfg), who, std::move(origin));
}

change_result config_manager::resume(std::vector<history_entry> entries, uint64_t next_version,
                                     const std::vector<named_admin>& admin,
                                     std::vector<std::string>* skipped) {
    change_result out;
    if (entries.empty()) {
        out.error = "no version to resume";
        return out;
    }
    // Saved in version order, the baseline's pinned entries among them: the same trim
    // as after an apply keeps what the series baseline still needs.
    std::sort(entries.begin(), entries.end(),
              [](const history_entry& a, const history_entry& b) { return a.version < b.version; });
    m_pinned.clear();
    m_history.assign(std::make_move_iterator(entries.begin()),
                     std::make_move_iterator(entries.end()));
    trim_history(std::chrono::system_clock::now());
    m_next_version = std::max(next_version, m_history.back().version + 1);
    for (const auto& [service, backend, state] : admin) {
        std::string error;
        if (!set_admin_state(service, backend, state, &error)) {
            skipped->push_back(
                fmt::format("{} {} {}: {}", service, backend, to_string(state), error));
        }
    }
    build_result built = rebuild();
    if (!built.value) {
        m_history.clear();
        m_admin.clear();
        m_next_version = 1;
        out.error = built.error;
        return out;
    }
    note_running(std::chrono::steady_clock::now());
    out.ok = true;
    out.version = version();
    out.snap = std::move(built.value);
    return out;
}

std::vector<config_manager::named_admin>
config_manager::admin_states(const config::config& cfg) const {
    std::vector<named_admin> out;
    for (const config::service_config& svc : cfg.services) {
        const config::pool_config* pool = cfg.find_pool(svc.pool);
        if (pool == nullptr) {
            continue;
        }
        for (const config::backend_config& b : pool->backends) {
            uint32_t id = m_registry.find(svc.name, b.address, b.port);
            if (id != balance::no_backend && admin_of(id) != admin_state::enabled) {
                out.emplace_back(svc.name, config::format_endpoint(b.address, b.port),
                                 admin_of(id));
            }
        }
    }
    return out;
}

std::shared_ptr<const config::config>
config_manager::rollback_target(std::optional<uint64_t> version, uint64_t* target,
                                std::string* error) const {
    if (m_history.size() < 2 && !version) {
        *error = "no earlier version to roll back to";
        return nullptr;
    }
    const history_entry* found = nullptr;
    if (!version) {
        found = &m_history[m_history.size() - 2];
    } else {
        for (const history_entry& e : m_history) {
            if (e.version == *version) {
                found = &e;
            }
        }
        if (found == nullptr) {
            *error = fmt::format("version {} is not kept (kept: {}..{}); see evenctl history",
                                 *version, m_history.front().version, m_history.back().version);
            return nullptr;
        }
        if (*version == this->version()) {
            *error = fmt::format("version {} is already running", *version);
            return nullptr;
        }
    }
    if (std::string why = config::restart_required(running(), *found->cfg); !why.empty()) {
        *error = why;
        return nullptr;
    }
    *target = found->version;
    return found->cfg;
}

bool config_manager::set_admin_state(const std::string& service, const std::string& backend,
                                     admin_state state, std::string* error) {
    const config::config& cfg = running();
    const config::service_config* svc = cfg.find_service(service);
    if (svc == nullptr) {
        *error = fmt::format("no service named {}; see evenctl services", service);
        return false;
    }
    const config::pool_config* pool = cfg.find_pool(svc->pool);
    uint32_t id = balance::no_backend;
    for (const config::backend_config& b : pool->backends) {
        if (config::format_endpoint(b.address, b.port) == backend) {
            id = m_registry.id_for(svc->name, b.address, b.port);
        }
    }
    if (id == balance::no_backend) {
        *error = fmt::format("service {} has no backend {}; see evenctl backends {}", service,
                             backend, service);
        return false;
    }
    if (state == admin_state::enabled) {
        m_admin.erase(id);
    } else {
        m_admin[id] = state;
    }
    ++m_states_generation;
    ++m_admin_generation;
    return true;
}

bool config_manager::record_health(uint32_t backend_id, health_verdict verdict) {
    if (health_of(backend_id) == verdict) {
        return false;
    }
    m_health[backend_id] = verdict;
    ++m_states_generation;
    return true;
}

} // namespace evenflow::control
