#include "config/diff.hpp"

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

// "~ KEY: A -> B" for the global settings.
template <class V>
void setting(lines& out, std::string_view key, const V& a, const V& b) {
    if (a != b) {
        out.push_back(fmt::format("~ {}: {} -> {}", key, a, b));
    }
}

std::string quoted(const std::string& s) {
    return fmt::format("\"{}\"", s);
}

std::string list(const std::vector<uint32_t>& items) {
    return fmt::format("[{}]", fmt::join(items, ", "));
}

std::string list(const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) {
        out += (i == 0 ? "" : ", ") + quoted(items[i]);
    }
    return out + "]";
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
        }
    }
}

void diff_settings(const config& before, const config& after, lines& out) {
    diff_interfaces(before, after, out);

    const auto& da = before.dataplane;
    const auto& db = after.dataplane;
    setting(out, "dataplane.workers", list(da.workers), list(db.workers));
    setting(out, "dataplane.flow_capacity", da.flow_capacity, db.flow_capacity);
    // The seed is a secret: a diff says that it changed, never what it is.
    auto seed_text = [](const std::optional<net::hash_seed>& s, bool another) {
        return std::string(!s ? "(unset)" : another ? "(another secret)" : "(secret)");
    };
    setting(out, "dataplane.hash_seed", seed_text(da.hash_seed, false),
            seed_text(db.hash_seed, da.hash_seed && db.hash_seed && da.hash_seed != db.hash_seed));
    setting(out, "dataplane.timeouts.syn", format_duration(da.timeouts.syn),
            format_duration(db.timeouts.syn));
    setting(out, "dataplane.timeouts.established", format_duration(da.timeouts.established),
            format_duration(db.timeouts.established));
    setting(out, "dataplane.timeouts.closing", format_duration(da.timeouts.closing),
            format_duration(db.timeouts.closing));

    const auto& sa = before.skew;
    const auto& sb = after.skew;
    setting(out, "skew.window", format_duration(sa.window), format_duration(sb.window));
    setting(out, "skew.threshold", sa.threshold, sb.threshold);
    setting(out, "skew.min_flows", sa.min_flows, sb.min_flows);
    setting(out, "skew.min_bytes", sa.min_bytes, sb.min_bytes);
    setting(out, "skew.action", to_string(sa.action), to_string(sb.action));
    setting(out, "skew.probation", format_duration(sa.probation), format_duration(sb.probation));
    setting(out, "skew.max_share_growth", sa.max_share_growth, sb.max_share_growth);
    setting(out, "skew.max_capacity_loss", sa.max_capacity_loss, sb.max_capacity_loss);
    setting(out, "skew.baseline_window", format_duration(sa.baseline_window),
            format_duration(sb.baseline_window));
    auto share_limit = [](const std::optional<double>& v) {
        return v ? fmt::format("{}", *v) : std::string("unset");
    };
    setting(out, "skew.max_share", share_limit(sa.max_share), share_limit(sb.max_share));

    setting(out, "control.socket", quoted(before.control.socket), quoted(after.control.socket));
    setting(out, "control.metrics", quoted(before.control.metrics), quoted(after.control.metrics));
    setting(out, "control.metrics_backends", to_string(before.control.metrics_backends),
            to_string(after.control.metrics_backends));
    setting(out, "control.admins", list(before.control.admins), list(after.control.admins));
    setting(out, "control.socket_group", quoted(before.control.socket_group),
            quoted(after.control.socket_group));
    setting(out, "control.state_dir", quoted(before.control.state_dir),
            quoted(after.control.state_dir));
    setting(out, "eal.args", list(before.eal.args), list(after.eal.args));
}

} // namespace

std::vector<std::string> diff(const config& before, const config& after) {
    lines out;
    diff_services(before, after, out);
    diff_pools(before, after, out);
    diff_backends(before, after, out);
    diff_settings(before, after, out);
    return out;
}

} // namespace evenflow::config
