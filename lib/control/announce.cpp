#include "control/announce.hpp"

#include "control/state_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace evenflow::control {

std::string fingerprint(const config::config& cfg, const config_manager& manager) {
    // A canonical text, sorted, then hashed: listing order does not count (Maglev
    // tables do not depend on it either).
    std::vector<std::string> services;
    for (const config::service_config& svc : cfg.services) {
        std::vector<std::string> members;
        if (const config::pool_config* pool = cfg.find_pool(svc.pool)) {
            for (const config::backend_config& b : pool->backends) {
                uint32_t id = manager.registry().find(svc.name, b.address, b.port);
                admin_state admin = id != 0 ? manager.admin_of(id) : admin_state::enabled;
                members.push_back(fmt::format("{} w{} {}",
                                              config::format_endpoint(b.address, b.port), b.weight,
                                              to_string(admin)));
            }
        }
        std::sort(members.begin(), members.end());
        std::string line =
            fmt::format("{} {}:{} {} {} t{} {} [", svc.name, svc.vip.to_string(), svc.port,
                        svc.protocol, config::to_string(svc.hash), svc.table_size, svc.pool);
        for (const std::string& m : members) {
            line += m + ";";
        }
        services.push_back(line + "]");
    }
    std::sort(services.begin(), services.end());
    // The pick hash's seed: hosts that pick differently must not look alike. The
    // fingerprint is 64 bits of FNV over this text; the seed is 128: what it shows
    // leaves 2^64 seeds possible even to one who knows the rest of the config.
    std::string text =
        "seed " + cfg.dataplane.hash_seed.value_or(manager.fallback_seed()).to_hex() + "\n";
    for (const std::string& s : services) {
        text += s + "\n";
    }
    return text_hash(text);
}

std::vector<vip_announcement> decide_announcements(const snapshot& snap, bool live, bool drained) {
    std::map<net::ip_addr, bool> up; // VIP -> some service on it takes new flows
    for (const snapshot_service& svc : snap.services) {
        bool any = false;
        for (uint32_t i : svc.backend_indexes) {
            any |= takes_new_flows(snap.backends[i].state);
        }
        up[svc.vip] = up[svc.vip] || any;
    }
    std::vector<vip_announcement> out;
    for (const auto& [vip, has_backend] : up) {
        vip_announcement a{vip, false, "announced"};
        if (!live) {
            a.why = "not live";
        } else if (drained) {
            a.why = "host drained";
        } else if (!has_backend) {
            a.why = "no backend up";
        } else {
            a.announce = true;
        }
        out.push_back(a);
    }
    return out;
}

void liveness::observe(const std::vector<uint64_t>& counters,
                       std::chrono::steady_clock::time_point now) {
    if (m_last.size() != counters.size()) {
        m_last = counters;
        m_moved.assign(counters.size(), now);
        return;
    }
    for (size_t i = 0; i < counters.size(); ++i) {
        if (counters[i] != m_last[i]) {
            m_last[i] = counters[i];
            m_moved[i] = now;
        }
    }
}

std::string liveness::stuck(std::chrono::steady_clock::time_point now,
                            std::chrono::steady_clock::duration detection) const {
    for (size_t i = 0; i < m_moved.size(); ++i) {
        if (now - m_moved[i] > detection) {
            return i == 0 ? std::string("control loop") : fmt::format("worker {}", i - 1);
        }
    }
    return {};
}

std::chrono::steady_clock::time_point liveness::oldest() const {
    return m_moved.empty() ? std::chrono::steady_clock::time_point{}
                           : *std::min_element(m_moved.begin(), m_moved.end());
}

bool liveness::live(std::chrono::steady_clock::time_point now,
                    std::chrono::steady_clock::duration detection) const {
    return !m_moved.empty() && stuck(now, detection).empty();
}

std::string bird_protocol(const net::ip_addr& vip) {
    std::string name = "vip_" + vip.to_string();
    std::replace_if(
        name.begin(), name.end(), [](char c) { return c == '.' || c == ':'; }, '_');
    return name;
}

std::string render_bird_config(const config::bgp_config& bgp,
                               const std::vector<vip_announcement>& vips,
                               const std::string& log_path) {
    auto secs = [](config::duration d) {
        return std::max<long>(1, long(std::chrono::duration_cast<std::chrono::seconds>(d).count()));
    };
    std::string out = fmt::format(
        "# Written by evenflowd ([bgp]); not to be edited: evenflowd enables and disables\n"
        "# the vip_* protocols as it announces and withdraws, and writes their state here.\n"
        "log \"{}\" {} \"{}.old\" all;\n"
        "router id {};\n"
        "protocol device {{ }}\n",
        log_path, bird_log_limit, log_path, bgp.router_id.to_string());
    if (bgp.bfd) {
        out += "protocol bfd { interface \"*\" { min rx interval 100 ms; min tx interval 100 ms; "
               "multiplier 3; }; }\n";
    }
    for (const vip_announcement& v : vips) {
        // `disabled` as it is announced now: BIRD's `configure` sets each protocol to
        // what the file says, so a file that said `disabled` for every VIP withdrew the
        // announced ones at each reconfigure (a VIP added or removed).
        out += fmt::format("protocol static {} {{ {}ipv4; route {}/32 blackhole; }}\n",
                           bird_protocol(v.vip), v.announce ? "" : "disabled; ", v.vip.to_string());
    }
    size_t i = 0;
    for (const config::bgp_peer& p : bgp.peers) {
        out += fmt::format(
            "protocol bgp peer{} {{\n"
            "  local {} as {};\n"
            "  neighbor {} as {};\n"
            "  hold time {}; keepalive time {}; connect retry time 1; error wait time 1, 5;\n"
            "  graceful restart off;\n"
            // Listens on its own address only, not on every address of the host.
            "  strict bind yes;\n"
            "{}"
            "  ipv4 {{ import none; export where proto ~ \"vip_*\"; next hop address {}; }};\n"
            "}}\n",
            i++, bgp.next_hop.to_string(), bgp.local_as, p.address.to_string(), p.as,
            secs(bgp.hold_time), std::max<long>(1, secs(bgp.hold_time) / 3),
            bgp.bfd ? "  bfd on;\n" : "", bgp.next_hop.to_string());
    }
    return out;
}

} // namespace evenflow::control
