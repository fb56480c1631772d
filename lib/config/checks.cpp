// The loader's checks across entries, run once every section has been read:
// services against pools (references, address families, Maglev table sizes) and
// pools that no service can use.
#include "config/loader.hpp"

#include "balance/maglev.hpp"
#include "config/values.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace evenflow::config {

void loader::check_services() {
    std::vector<std::vector<std::string_view>> users(m_config.pools.size());
    for (size_t s = 0; s < m_config.services.size(); ++s) {
        const auto& service = m_config.services[s];
        const auto& src = m_service_src[s];
        const std::string path = element("services", s);
        if (m_config.bgp.enabled && src.vip_ok && !service.vip.is_v4()) {
            // BIRD is written an IPv4 session with an IPv4 next hop: it would refuse
            // the route, and every later reconfigure with it.
            error(*src.vip, child(path, "vip"),
                  fmt::format("vip {} is IPv6, and [bgp] announces IPv4 VIPs only (its "
                              "next_hop is IPv4); serve it from hosts without [bgp]",
                              service.vip.to_string()));
        }
        if (!src.pool_ok) {
            continue;
        }
        // Match names as written, even invalid ones, so a bad pool name is reported
        // once and not again by every service that uses it.
        size_t p = 0;
        while (p < m_config.pools.size() && m_pool_src[p].raw_name != service.pool) {
            ++p;
        }
        bool some_pool_unnamed = std::any_of(m_pool_src.begin(), m_pool_src.end(),
                                             [](const pool_source& ps) { return !ps.raw_name; });
        if (p == m_config.pools.size() && some_pool_unnamed) {
            continue; // it may well be the one without a usable name
        }
        if (p == m_config.pools.size()) {
            std::vector<std::string_view> names;
            for (size_t i = 0; i < m_config.pools.size(); ++i) {
                if (m_pool_src[i].name_ok) {
                    names.push_back(m_config.pools[i].name);
                }
            }
            auto hint = closest(service.pool, names);
            error(*src.pool, child(path, "pool"),
                  hint.empty() ? fmt::format("no pool named \"{}\"; define it with [[pools]] "
                                             "name = \"{}\"",
                                             service.pool, service.pool)
                               : fmt::format("no pool named \"{}\"; did you mean \"{}\"?",
                                             service.pool, hint));
            continue;
        }
        const auto& pool = m_config.pools[p];
        users[p].push_back(service.name);

        if (src.table_size_ok) {
            check_table_size(service, src, path, pool.backends.size());
        }
        if (service.mode == forward_mode::tunnel && src.mode != nullptr) {
            // The packet arrives at the backend as the client sent it: to the VIP's port.
            for (size_t b = 0; b < pool.backends.size(); ++b) {
                if (m_pool_src[p].backends_src[b].port_ok &&
                    pool.backends[b].port != service.port) {
                    error(*src.mode, child(path, "mode"),
                          fmt::format("mode \"tunnel\" does not rewrite ports: backend {}:{} "
                                      "of pool \"{}\" must listen on the service's port {}",
                                      pool.backends[b].address.to_string(), pool.backends[b].port,
                                      pool.name, service.port));
                    break;
                }
            }
        }
        if (service.mode == forward_mode::tunnel && src.mode != nullptr && service.vip.is_v4()) {
            warning(*src.mode, child(path, "mode"),
                    fmt::format("mode \"tunnel\" needs every backend of pool \"{}\" set up: an "
                                "IPIP tunnel device, the vip {} on its loopback, ARP for it "
                                "ignored, and a route to clients that does not come back here "
                                "(scripts/tunnel-backend does this)",
                                pool.name, service.vip.to_string()));
        }
        if (src.vip_ok) {
            for (size_t b = 0; b < pool.backends.size(); ++b) {
                const auto& backend = pool.backends[b];
                if (m_pool_src[p].backends_src[b].address_ok &&
                    backend.address.is_v4() != service.vip.is_v4()) {
                    error(*src.vip, child(path, "vip"),
                          fmt::format("vip {} is {} but pool \"{}\" has {} backend {}; mixing "
                                      "IPv4 and IPv6 needs NAT64, which evenflow does not do",
                                      service.vip.to_string(),
                                      service.vip.is_v4() ? "IPv4" : "IPv6", pool.name,
                                      backend.address.is_v4() ? "IPv4" : "IPv6",
                                      backend.address.to_string()));
                    break;
                }
            }
        }
    }

    for (size_t p = 0; p < m_config.pools.size(); ++p) {
        if (users[p].empty() || !m_config.pools[p].backends.empty()) {
            continue;
        }
        const auto& src = m_pool_src[p];
        std::string quoted;
        for (auto name : users[p]) {
            quoted += fmt::format("{}\"{}\"", quoted.empty() ? "" : ", ", name);
        }
        const toml::node& at = src.backends != nullptr ? *src.backends : *src.table;
        std::string key =
            src.backends != nullptr ? child(element("pools", p), "backends") : element("pools", p);
        warning(at, key,
                fmt::format("pool \"{}\" has no backends, so {} {} {} nowhere to send new "
                            "connections; add backends or use another pool",
                            m_config.pools[p].name, users[p].size() == 1 ? "service" : "services",
                            quoted, users[p].size() == 1 ? "has" : "have"));
    }
}

void loader::check_table_size(const service_config& service, const service_source& src,
                              const std::string& path, size_t backend_count) {
    const toml::node& at = src.table_size != nullptr ? *src.table_size : *src.table;
    const std::string key = child(path, "table_size");
    const uint64_t minimum = uint64_t(bounds::table_slots_per_backend) * backend_count;
    if (service.table_size < minimum) {
        error(at, key,
              fmt::format("table_size {} is too small for {} backend{} (needs at least {}); "
                          "the next prime is {}",
                          service.table_size, backend_count, backend_count == 1 ? "" : "s", minimum,
                          balance::next_prime(minimum)));
    } else if (!balance::is_prime(service.table_size)) {
        error(at, key,
              fmt::format("table_size {} is not prime; the next prime is {}", service.table_size,
                          balance::next_prime(service.table_size)));
    }
}

void loader::check_counts() {
    // What one host carries at most (values.hpp), each reported at the first entry
    // past it.
    if (m_config.services.size() > bounds::max_services) {
        error(*m_service_src[bounds::max_services].table, element("services", bounds::max_services),
              fmt::format("{} services; one host serves at most {}", m_config.services.size(),
                          bounds::max_services));
    }
    if (m_config.pools.size() > bounds::max_pools) {
        error(*m_pool_src[bounds::max_pools].table, element("pools", bounds::max_pools),
              fmt::format("{} pools; at most {}", m_config.pools.size(), bounds::max_pools));
    }
    for (size_t p = 0; p < m_config.pools.size(); ++p) {
        const auto& pool = m_config.pools[p];
        if (pool.backends.size() > bounds::max_backends_per_pool) {
            error(*m_pool_src[p].backends_src[bounds::max_backends_per_pool].table,
                  child(element("pools", p), "backends"),
                  fmt::format("pool \"{}\" has {} backends; a pool has at most {}", pool.name,
                              pool.backends.size(), bounds::max_backends_per_pool));
        }
    }
    size_t backends = 0;
    uint64_t slots = 0;
    for (size_t s = 0; s < m_config.services.size(); ++s) {
        const auto& svc = m_config.services[s];
        slots += svc.table_size;
        if (const pool_config* pool = m_config.find_pool(svc.pool)) {
            backends += pool->backends.size();
        }
        if (backends > bounds::max_backends) {
            error(*m_service_src[s].table, element("services", s),
                  fmt::format("services up to here have {} backends in all; one host keeps "
                              "track of at most {}",
                              backends, bounds::max_backends));
            break;
        }
        if (slots > bounds::max_table_slots) {
            error(*m_service_src[s].table, element("services", s),
                  fmt::format("the Maglev tables of the services up to here have {} slots in "
                              "all; at most {} (1 GiB) fit",
                              slots, bounds::max_table_slots));
            break;
        }
    }
}

} // namespace evenflow::config

namespace evenflow::config {

void loader::check_reply_path() {
    // A moving gateway's address is no VIP or backend, and its id is the network's
    // (one virtual MAC): two interfaces on one network cannot share it unnoticed.
    for (size_t i = 0; i < m_config.interfaces.size(); ++i) {
        const interface_config& iface = m_config.interfaces[i];
        if (!iface.vrrp || m_vrrp_src[i] == nullptr) {
            continue;
        }
        const std::string key = child(element("interfaces", i), "vrrp");
        for (const service_config& s : m_config.services) {
            if (s.vip == iface.vrrp->address) {
                error(*m_vrrp_src[i], key,
                      fmt::format("the gateway address {} is service {}'s vip",
                                  iface.vrrp->address.to_string(), s.name));
            }
        }
        for (const pool_config& p : m_config.pools) {
            for (const backend_config& b : p.backends) {
                if (b.address == iface.vrrp->address) {
                    error(*m_vrrp_src[i], key,
                          fmt::format("the gateway address {} is a backend of pool {}",
                                      iface.vrrp->address.to_string(), p.name));
                }
            }
        }
        for (size_t j = 0; j < i; ++j) {
            const interface_config& other = m_config.interfaces[j];
            if (other.vrrp &&
                (other.vrrp->address == iface.vrrp->address || other.vrrp->id == iface.vrrp->id)) {
                error(*m_vrrp_src[i], key,
                      fmt::format("interfaces[{}] has vrrp id {} address {} already; each "
                                  "gateway needs its own id and address",
                                  j, other.vrrp->id, other.vrrp->address.to_string()));
            }
        }
    }
    if (!m_config.bgp.enabled || m_bgp_src == nullptr) {
        return;
    }
    // Several hosts announce the VIPs: a DNAT service's replies go to the backends'
    // gateway, which must survive any one host.
    const service_config* dnat = nullptr;
    for (const service_config& s : m_config.services) {
        if (s.mode == forward_mode::dnat) {
            dnat = &s;
            break;
        }
    }
    if (dnat == nullptr) {
        return; // tunnel mode: backends answer clients directly
    }
    const std::string& rp = m_config.bgp.return_path;
    const toml::node* at = m_bgp_src->get("return_path");
    if (rp.empty() && at == nullptr) {
        error(*m_bgp_src, "bgp.return_path",
              fmt::format("service {} is DNAT: its backends reply through their gateway, "
                          "which must not be one host when several announce its VIP; give "
                          "the backends' interface a vrrp gateway and set return_path = "
                          "\"vrrp\", or use mode = \"tunnel\", or say return_path = "
                          "\"single\" if this host is the only one (README \"Running "
                          "several hosts\")",
                          dnat->name));
        return;
    }
    if (rp == "vrrp") {
        // The gateway is the backends' neighbor: on a network that holds backends.
        bool any = false;
        for (const interface_config& iface : m_config.interfaces) {
            for (const pool_config& p : m_config.pools) {
                for (const backend_config& b : p.backends) {
                    any |= iface.vrrp.has_value() && iface.address.contains(b.address);
                }
            }
        }
        if (!any) {
            error(*at, "bgp.return_path",
                  "return_path = \"vrrp\" but no interface on the backends' network has a vrrp "
                  "gateway; add e.g. vrrp = { id = 20, address = \"10.20.0.1\", peers = "
                  "[\"10.20.0.3\"] } to it and make it the backends' default route");
        }
    }
}

} // namespace evenflow::config
