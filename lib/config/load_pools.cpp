// The loader's readers for [[pools]] (with their backends and health checks) and
// [[services]]; the other sections are in load.cpp.
#include "config/loader.hpp"
#include "config/values.hpp"

#include <fmt/format.h>

namespace evenflow::config {

void loader::read_pool(const toml::table& table, const std::string& path) {
    check_keys(table, path, {"name", "backends", "health", "drain_timeout"});
    pool_config pool;
    pool_source src;
    src.table = &table;

    if (auto* n = member(table, "name", path, "name = \"web\"")) {
        auto key = child(path, "name");
        if (auto* raw = n->as_string()) {
            src.raw_name = raw->get();
            pool.name = raw->get(); // for messages; valid only when name_ok
        }
        if (auto name = get_name(*n, key)) {
            pool.name = *name;
            src.name_ok = true;
            for (size_t i = 0; i < m_config.pools.size(); ++i) {
                if (m_pool_src[i].name_ok && m_config.pools[i].name == pool.name) {
                    error(*n, key,
                          fmt::format("pool name \"{}\" is already used by pools[{}]; "
                                      "names must be unique",
                                      pool.name, i));
                    break;
                }
            }
        }
    }
    if (auto* n = member(table, "backends", path)) {
        src.backends = n;
        for_each_entry(
            *n, child(path, "backends"),
            "an array of tables such as [{ address = \"10.20.0.11\", port = 8080 }]",
            [&](const toml::table& t, const std::string& p) { read_backend(t, p, pool, src); });
    }
    if (auto* n = member(table, "health", path)) {
        auto key = child(path, "health");
        if (auto* t = get_table(*n, key)) {
            read_health(*t, key, pool.health);
        }
    }
    read_duration(table, path, "drain_timeout", pool.drain_timeout, true);

    m_config.pools.push_back(std::move(pool));
    m_pool_src.push_back(std::move(src));
}

void loader::read_backend(const toml::table& table, const std::string& path, pool_config& pool,
                          pool_source& src) {
    check_keys(table, path, {"address", "port", "weight"});
    backend_config backend;
    backend_source bsrc;
    bsrc.table = &table;

    if (auto* n = member(table, "address", path, "address = \"10.20.0.11\"")) {
        if (auto addr = get_address(*n, child(path, "address"))) {
            backend.address = *addr;
            bsrc.address_ok = true;
        }
    }
    if (auto* n = member(table, "port", path, "port = 8080")) {
        if (auto port = get_port(*n, child(path, "port"))) {
            backend.port = *port;
            bsrc.port_ok = true;
        }
    }
    if (auto* n = member(table, "weight", path)) {
        auto key = child(path, "weight");
        if (auto weight = get_uint(*n, key, "weight", 0, max_weight)) {
            backend.weight = *weight;
            if (*weight == 0 && bsrc.address_ok && bsrc.port_ok) {
                warning(*n, key,
                        fmt::format("backend {} has weight 0, so it is draining: it keeps "
                                    "its flows but gets no new ones",
                                    format_endpoint(backend.address, backend.port)));
            }
        }
    }

    if (bsrc.address_ok && bsrc.port_ok) {
        for (size_t i = 0; i < pool.backends.size(); ++i) {
            const auto& other = pool.backends[i];
            const auto& osrc = src.backends_src[i];
            if (osrc.address_ok && osrc.port_ok && other.address == backend.address &&
                other.port == backend.port) {
                error(table, path,
                      fmt::format("backend {} is already listed as backends[{}]; list it "
                                  "once and raise its weight instead",
                                  format_endpoint(backend.address, backend.port), i));
                break;
            }
        }
    }
    pool.backends.push_back(backend);
    src.backends_src.push_back(bsrc);
}

void loader::read_health(const toml::table& table, const std::string& path, health_config& health) {
    check_keys(table, path, {"kind", "interval", "timeout", "rise", "fall", "port"});
    if (auto* n = member(table, "kind", path)) {
        if (auto kind = get_choice<health_kind>(*n, child(path, "kind"), "kind")) {
            health.kind = *kind;
        }
    }
    bool interval_ok = true, timeout_ok = true;
    const toml::node* interval = member(table, "interval", path);
    if (interval != nullptr) {
        auto v =
            get_duration(*interval, child(path, "interval"), false, bounds::max_short_duration);
        interval_ok = v.has_value();
        health.interval = v.value_or(health.interval);
    }
    const toml::node* timeout = member(table, "timeout", path);
    if (timeout != nullptr) {
        auto v = get_duration(*timeout, child(path, "timeout"), false, bounds::max_short_duration);
        timeout_ok = v.has_value();
        health.timeout = v.value_or(health.timeout);
    }
    if (interval_ok && timeout_ok && health.timeout >= health.interval) {
        // Point at whichever of the two the file sets, the timeout first.
        const toml::node& at =
            timeout != nullptr ? *timeout : (interval != nullptr ? *interval : table);
        std::string key = timeout != nullptr    ? child(path, "timeout")
                          : interval != nullptr ? child(path, "interval")
                                                : path;
        error(at, key,
              fmt::format("timeout {} must be shorter than interval {}",
                          format_duration(health.timeout), format_duration(health.interval)));
    }
    if (auto* n = member(table, "rise", path)) {
        if (auto v = get_uint(*n, child(path, "rise"), "rise", 1, bounds::max_rise_fall)) {
            health.rise = *v;
        }
    }
    if (auto* n = member(table, "fall", path)) {
        if (auto v = get_uint(*n, child(path, "fall"), "fall", 1, bounds::max_rise_fall)) {
            health.fall = *v;
        }
    }
    if (auto* n = member(table, "port", path)) {
        health.port = get_port(*n, child(path, "port"));
    }
}

void loader::read_service(const toml::table& table, const std::string& path) {
    check_keys(table, path,
               {"name", "vip", "port", "protocol", "pool", "table_size", "hash", "mode"});
    service_config service;
    service_source src;
    src.table = &table;

    if (auto* n = member(table, "name", path, "name = \"web\"")) {
        auto key = child(path, "name");
        if (auto name = get_name(*n, key)) {
            service.name = *name;
            for (size_t i = 0; i < m_config.services.size(); ++i) {
                if (m_config.services[i].name == service.name) {
                    error(*n, key,
                          fmt::format("service name \"{}\" is already used by services[{}]; "
                                      "names must be unique",
                                      service.name, i));
                    break;
                }
            }
        }
    }
    if (auto* n = member(table, "vip", path, "vip = \"10.10.0.100\"")) {
        src.vip = n;
        if (auto vip = get_address(*n, child(path, "vip"))) {
            service.vip = *vip;
            src.vip_ok = true;
        }
    }
    if (auto* n = member(table, "port", path, "port = 80")) {
        if (auto port = get_port(*n, child(path, "port"))) {
            service.port = *port;
            src.port_ok = true;
        }
    }
    if (auto* n = member(table, "protocol", path)) {
        auto key = child(path, "protocol");
        if (auto protocol = get_string(*n, key)) {
            if (*protocol != "tcp") {
                error(*n, key,
                      fmt::format("protocol \"{}\" is not supported; evenflow balances "
                                  "\"tcp\" only",
                                  *protocol));
            }
        }
    }
    if (auto* n = member(table, "pool", path, "pool = \"web\"")) {
        src.pool = n;
        if (auto pool = get_string(*n, child(path, "pool"))) {
            service.pool = *pool;
            src.pool_ok = true;
        }
    }
    if (auto* n = member(table, "table_size", path)) {
        src.table_size = n;
        auto v = get_uint(*n, child(path, "table_size"), "table_size", 1, bounds::max_table_size);
        src.table_size_ok = v.has_value();
        service.table_size = v.value_or(service.table_size);
    }
    if (auto* n = member(table, "hash", path)) {
        if (auto hash = get_choice<hash_mode>(*n, child(path, "hash"), "hash")) {
            service.hash = *hash;
        }
    }
    if (auto* n = member(table, "mode", path)) {
        src.mode = n;
        auto key = child(path, "mode");
        if (auto* word = n->as_string(); word != nullptr && word->get() == "fullnat") {
            error(*n, key,
                  fmt::format("mode \"fullnat\" is not available yet; use {}",
                              choice_list<forward_mode>()));
        } else if (auto mode = get_choice<forward_mode>(*n, key, "mode")) {
            service.mode = *mode;
            if (*mode == forward_mode::tunnel && src.vip_ok && !service.vip.is_v4()) {
                error(*n, key, "mode \"tunnel\" carries IPv4 only (IPIP); this vip is IPv6");
            }
        }
    }

    if (src.vip_ok && src.port_ok) {
        for (size_t i = 0; i < m_config.services.size(); ++i) {
            const auto& other = m_config.services[i];
            const auto& osrc = m_service_src[i];
            if (osrc.vip_ok && osrc.port_ok && other.vip == service.vip &&
                other.port == service.port) {
                error(*src.vip, child(path, "vip"),
                      fmt::format("{}/tcp is already served by services[{}] (\"{}\"); give "
                                  "each service its own vip and port",
                                  format_endpoint(service.vip, service.port), i, other.name));
                break;
            }
        }
    }
    m_config.services.push_back(std::move(service));
    m_service_src.push_back(src);
}

} // namespace evenflow::config
