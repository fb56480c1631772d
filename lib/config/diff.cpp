#include "config/diff.hpp"

#include "config/settings.hpp"

#include <fmt/format.h>

#include <map>
#include <utility>

namespace evenflow::config {

namespace {

using lines = std::vector<std::string>;

// Entries of both configs keyed by name (or endpoint), in key order: a change is
// listed in the same place whatever order the file lists things in.
template <class Key, class T>
using pairing = std::map<Key, std::pair<const T*, const T*>>;

template <class Key, class T, class KeyOf>
pairing<Key, T> pair_up(const std::vector<T>& before, const std::vector<T>& after, KeyOf key_of) {
    pairing<Key, T> out;
    for (const auto& item : before) {
        out[key_of(item)].first = &item;
    }
    for (const auto& item : after) {
        out[key_of(item)].second = &item;
    }
    return out;
}

// "~ PREFIX: NAME A -> B" when the values differ.
template <class V>
void change(lines& out, const std::string& prefix, std::string_view name, const V& a, const V& b) {
    if (a != b) {
        out.push_back(fmt::format("~ {}: {} {} -> {}", prefix, name, a, b));
    }
}

std::string backend_count(size_t n) {
    return fmt::format("{} backend{}", n, n == 1 ? "" : "s");
}

std::string service_summary(const service_config& s) {
    return fmt::format("{} {} -> pool {}{}", s.name, format_endpoint(s.vip, s.port), s.pool,
                       s.mode == forward_mode::dnat ? "" : " (" + to_string(s.mode) + ")");
}

std::string interface_summary(const interface_config& i) {
    return fmt::format("{} {} {}", i.name, i.device, i.address.to_string());
}

std::string gateway_text(const std::optional<net::ip_addr>& g) {
    return g ? g->to_string() : "none";
}

std::string kernel_interface_text(const std::string& name) {
    return name.empty() ? "none" : name;
}

std::string vrrp_text(const std::optional<vrrp_config>& v) {
    if (!v) {
        return "none";
    }
    std::string peers;
    for (const net::ip_addr& p : v->peers) {
        peers += (peers.empty() ? "" : ",") + p.to_string();
    }
    return fmt::format("id {} {} priority {} every {} peers {}", v->id, v->address.to_string(),
                       v->priority, format_duration(v->advert_interval),
                       peers.empty() ? "any" : peers);
}

std::string port_text(const std::optional<uint16_t>& p) {
    return p ? fmt::format("{}", *p) : "backend's own";
}

void diff_services(const config& before, const config& after, lines& out) {
    auto services = pair_up<std::string>(before.services, after.services,
                                         [](const service_config& s) { return s.name; });
    for (const auto& [name, pair] : services) {
        const auto* a = pair.first;
        const auto* b = pair.second;
        if (b == nullptr) {
            out.push_back("- service " + service_summary(*a));
        } else if (a == nullptr) {
            out.push_back("+ service " + service_summary(*b));
        } else {
            const std::string prefix = "service " + name;
            change(out, prefix, "vip", a->vip.to_string(), b->vip.to_string());
            change(out, prefix, "port", a->port, b->port);
            change(out, prefix, "protocol", a->protocol, b->protocol);
            change(out, prefix, "pool", a->pool, b->pool);
            change(out, prefix, "table_size", a->table_size, b->table_size);
            change(out, prefix, "hash", to_string(a->hash), to_string(b->hash));
            change(out, prefix, "mode", to_string(a->mode), to_string(b->mode));
        }
    }
}

void diff_pools(const config& before, const config& after, lines& out) {
    auto pools = pair_up<std::string>(before.pools, after.pools,
                                      [](const pool_config& p) { return p.name; });
    for (const auto& [name, pair] : pools) {
        const auto* a = pair.first;
        const auto* b = pair.second;
        if (b == nullptr) {
            out.push_back(fmt::format("- pool {} ({})", name, backend_count(a->backends.size())));
        } else if (a == nullptr) {
            out.push_back(fmt::format("+ pool {} ({})", name, backend_count(b->backends.size())));
        } else {
            const std::string prefix = "pool " + name;
            const auto& ha = a->health;
            const auto& hb = b->health;
            change(out, prefix, "health.kind", to_string(ha.kind), to_string(hb.kind));
            change(out, prefix, "health.interval", format_duration(ha.interval),
                   format_duration(hb.interval));
            change(out, prefix, "health.timeout", format_duration(ha.timeout),
                   format_duration(hb.timeout));
            change(out, prefix, "health.rise", ha.rise, hb.rise);
            change(out, prefix, "health.fall", ha.fall, hb.fall);
            change(out, prefix, "health.port", port_text(ha.port), port_text(hb.port));
            change(out, prefix, "drain_timeout", format_duration(a->drain_timeout),
                   format_duration(b->drain_timeout));
        }
    }
}

void diff_backends(const config& before, const config& after, lines& out) {
    auto pools = pair_up<std::string>(before.pools, after.pools,
                                      [](const pool_config& p) { return p.name; });
    static const std::vector<backend_config> none;
    for (const auto& [name, pair] : pools) {
        const auto& a = pair.first != nullptr ? pair.first->backends : none;
        const auto& b = pair.second != nullptr ? pair.second->backends : none;
        auto backends = pair_up<std::pair<net::ip_addr, uint16_t>>(
            a, b, [](const backend_config& be) { return std::pair(be.address, be.port); });
        for (const auto& [key, bp] : backends) {
            const auto endpoint = format_endpoint(key.first, key.second);
            if (bp.second == nullptr) {
                out.push_back(
                    fmt::format("- backend {} {} (weight {})", name, endpoint, bp.first->weight));
            } else if (bp.first == nullptr) {
                out.push_back(
                    fmt::format("+ backend {} {} (weight {})", name, endpoint, bp.second->weight));
            } else {
                change(out, fmt::format("backend {} {}", name, endpoint), "weight",
                       bp.first->weight, bp.second->weight);
            }
        }
    }
}

void diff_interfaces(const config& before, const config& after, lines& out) {
    auto interfaces = pair_up<std::string>(before.interfaces, after.interfaces,
                                           [](const interface_config& i) { return i.name; });
    for (const auto& [name, pair] : interfaces) {
        const auto* a = pair.first;
        const auto* b = pair.second;
        if (b == nullptr) {
            out.push_back("- interface " + interface_summary(*a));
        } else if (a == nullptr) {
            out.push_back("+ interface " + interface_summary(*b));
        } else {
            const std::string prefix = "interface " + name;
            change(out, prefix, "device", a->device, b->device);
            change(out, prefix, "address", a->address.to_string(), b->address.to_string());
            change(out, prefix, "gateway", gateway_text(a->gateway), gateway_text(b->gateway));
            change(out, prefix, "vlan", std::to_string(a->vlan), std::to_string(b->vlan));
            change(out, prefix, "kernel_interface", kernel_interface_text(a->kernel_interface),
                   kernel_interface_text(b->kernel_interface));
            change(out, prefix, "vrrp", vrrp_text(a->vrrp), vrrp_text(b->vrrp));
        }
    }
}

} // namespace

std::vector<std::string> diff(const config& before, const config& after) {
    lines out;
    diff_services(before, after, out);
    diff_pools(before, after, out);
    diff_backends(before, after, out);
    diff_interfaces(before, after, out);
    diff_settings(before, after, out);
    return out;
}

} // namespace evenflow::config
