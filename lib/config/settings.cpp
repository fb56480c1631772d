#include "config/settings.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace evenflow::config {

namespace {

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

std::string number(double v) {
    return fmt::format("{}", v);
}

std::string peers(const std::vector<bgp_peer>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) {
        out += fmt::format("{}{} AS {}", i == 0 ? "" : ", ", items[i].address.to_string(),
                           items[i].as);
    }
    return out + "]";
}

// Rows read one field of `self`; `before` is set when `self` is the newer side.
#define EVENFLOW_SETTING(expr)                                                                     \
    [](const config& self, const config* before) -> std::string {                                  \
        (void)before;                                                                              \
        return expr;                                                                               \
    }

const setting_row rows[] = {
    // [dataplane]: the workers are made at start.
    {"dataplane", "workers", EVENFLOW_SETTING(list(self.dataplane.workers)), "dataplane.workers",
     "workers = [1, 2]"},
    {"dataplane", "flow_capacity",
     EVENFLOW_SETTING(fmt::format("{}", self.dataplane.flow_capacity)), "dataplane.flow_capacity",
     "flow_capacity = 131072"},
    // The seed is a secret: a diff says that it changed, never what it is. Every host
    // of a fleet must pick alike: a new seed goes everywhere at once, by restarts, not
    // host by host through applies.
    {"dataplane", "hash_seed",
     [](const config& self, const config* before) -> std::string {
         const auto& mine = self.dataplane.hash_seed;
         if (!mine) {
             return "(unset)";
         }
         const bool another = before != nullptr && before->dataplane.hash_seed &&
                              *before->dataplane.hash_seed != *mine;
         return another ? "(another secret)" : "(secret)";
     },
     "dataplane.hash_seed", "hash_seed = \"00112233445566778899aabbccddeeff\""},
    {"dataplane", "timeouts.syn", EVENFLOW_SETTING(format_duration(self.dataplane.timeouts.syn)),
     "dataplane.timeouts", "timeouts = { syn = \"7s\" }"},
    {"dataplane", "timeouts.established",
     EVENFLOW_SETTING(format_duration(self.dataplane.timeouts.established)), "dataplane.timeouts",
     "timeouts = { established = \"1h\" }"},
    {"dataplane", "timeouts.closing",
     EVENFLOW_SETTING(format_duration(self.dataplane.timeouts.closing)), "dataplane.timeouts",
     "timeouts = { closing = \"3s\" }"},
    // [skew]: all live.
    {"skew", "window", EVENFLOW_SETTING(format_duration(self.skew.window)), "", "window = \"20s\""},
    {"skew", "threshold", EVENFLOW_SETTING(number(self.skew.threshold)), "", "threshold = 3.0"},
    {"skew", "min_flows", EVENFLOW_SETTING(fmt::format("{}", self.skew.min_flows)), "",
     "min_flows = 50"},
    {"skew", "min_bytes", EVENFLOW_SETTING(fmt::format("{}", self.skew.min_bytes)), "",
     "min_bytes = 1000"},
    {"skew", "action", EVENFLOW_SETTING(to_string(self.skew.action)), "", "action = \"rollback\""},
    {"skew", "probation", EVENFLOW_SETTING(format_duration(self.skew.probation)), "",
     "probation = \"2m\""},
    {"skew", "max_share_growth", EVENFLOW_SETTING(number(self.skew.max_share_growth)), "",
     "max_share_growth = 3.0"},
    {"skew", "max_capacity_loss", EVENFLOW_SETTING(number(self.skew.max_capacity_loss)), "",
     "max_capacity_loss = 0.25"},
    {"skew", "baseline_window", EVENFLOW_SETTING(format_duration(self.skew.baseline_window)), "",
     "baseline_window = \"1h\""},
    {"skew", "max_share",
     EVENFLOW_SETTING(self.skew.max_share ? number(*self.skew.max_share) : std::string("unset")),
     "", "max_share = 0.6"},
    // [control]: the socket, the endpoint and the state directory are opened at start.
    {"control", "socket", EVENFLOW_SETTING(quoted(self.control.socket)), "control.socket",
     "socket = \"/run/evenflow/other.sock\""},
    {"control", "metrics", EVENFLOW_SETTING(quoted(self.control.metrics)), "control.metrics",
     "metrics = \"127.0.0.1:9999\""},
    {"control", "metrics_backends", EVENFLOW_SETTING(to_string(self.control.metrics_backends)), "",
     "metrics_backends = \"alarmed\""},
    {"control", "admins", EVENFLOW_SETTING(list(self.control.admins)), "", "admins = [1000]"},
    {"control", "socket_group", EVENFLOW_SETTING(quoted(self.control.socket_group)),
     "control.socket_group", "socket_group = \"root\""},
    {"control", "state_dir", EVENFLOW_SETTING(quoted(self.control.state_dir)), "control.state_dir",
     "state_dir = \"/var/lib/evenflow-other\""},
    // [eal]: DPDK starts once.
    {"eal", "args", EVENFLOW_SETTING(list(self.eal.args)), "eal.args",
     "args = [\"-l\", \"0-2\", \"--no-huge\", \"--no-pci\"]"},
    // [bgp]: the speaker's config is written at start.
    {"bgp", "", EVENFLOW_SETTING(std::string(self.bgp.enabled ? "on" : "off")), "bgp", ""},
    {"bgp", "local_as", EVENFLOW_SETTING(fmt::format("{}", self.bgp.local_as)), "bgp",
     "local_as = 65009"},
    {"bgp", "router_id", EVENFLOW_SETTING(self.bgp.router_id.to_string()), "bgp",
     "router_id = \"10.30.0.9\""},
    {"bgp", "next_hop", EVENFLOW_SETTING(self.bgp.next_hop.to_string()), "bgp",
     "next_hop = \"10.30.0.9\""},
    {"bgp", "peers", EVENFLOW_SETTING(peers(self.bgp.peers)), "bgp",
     "peers = [{ address = \"10.30.0.8\", as = 65008 }]"},
    {"bgp", "hold_time", EVENFLOW_SETTING(format_duration(self.bgp.hold_time)), "bgp",
     "hold_time = \"9s\""},
    {"bgp", "detection", EVENFLOW_SETTING(format_duration(self.bgp.detection)), "bgp",
     "detection = \"2s\""},
    {"bgp", "convergence", EVENFLOW_SETTING(format_duration(self.bgp.convergence)), "bgp",
     "convergence = \"5s\""},
    {"bgp", "drain_timeout", EVENFLOW_SETTING(format_duration(self.bgp.drain_timeout)), "bgp",
     "drain_timeout = \"10s\""},
    {"bgp", "speaker", EVENFLOW_SETTING(quoted(self.bgp.speaker)), "bgp",
     "speaker = \"/usr/local/sbin/bird\""},
    {"bgp", "bfd", EVENFLOW_SETTING(std::string(self.bgp.bfd ? "true" : "false")), "bgp",
     "bfd = true"},
    // How backends' replies reach a live host: the operator's statement, checked
    // against the services and the interfaces' vrrp gateways (which evenflowd runs).
    {"bgp", "return_path",
     EVENFLOW_SETTING(self.bgp.return_path.empty() ? std::string("unset")
                                                   : quoted(self.bgp.return_path)),
     "", "return_path = \"single\""},
};

#undef EVENFLOW_SETTING

} // namespace

std::string setting_row::name() const {
    return key.empty() ? std::string(section) : fmt::format("{}.{}", section, key);
}

std::span<const setting_row> settings() {
    return rows;
}

std::vector<std::string_view> keys_of(std::string_view table) {
    std::vector<std::string_view> keys;
    for (const setting_row& row : rows) {
        std::string_view key = row.key;
        if (table != row.section) {
            // "dataplane.timeouts": the rows "dataplane", "timeouts.X".
            if (!table.starts_with(row.section) || table.size() <= row.section.size() ||
                table[row.section.size()] != '.') {
                continue;
            }
            std::string_view sub = table.substr(row.section.size() + 1);
            if (!key.starts_with(sub) || key.size() <= sub.size() || key[sub.size()] != '.') {
                continue;
            }
            key = key.substr(sub.size() + 1);
        }
        key = key.substr(0, key.find('.'));
        if (!key.empty() && std::find(keys.begin(), keys.end(), key) == keys.end()) {
            keys.push_back(key);
        }
    }
    return keys;
}

void diff_settings(const config& before, const config& after, std::vector<std::string>& out) {
    for (const setting_row& row : rows) {
        std::string a = row.text(before, nullptr);
        std::string b = row.text(after, &before);
        if (a != b) {
            out.push_back(fmt::format("~ {}: {} -> {}", row.name(), a, b));
        }
    }
}

std::vector<std::string> settings_needing_restart(const config& running, const config& next) {
    std::vector<std::string> names;
    for (const setting_row& row : rows) {
        if (row.restart_as.empty() || row.text(running, nullptr) == row.text(next, &running)) {
            continue;
        }
        if (std::find(names.begin(), names.end(), row.restart_as) == names.end()) {
            names.emplace_back(row.restart_as);
        }
    }
    return names;
}

std::string restart_required(const config& running, const config& next) {
    std::vector<std::string> fixed = settings_needing_restart(running, next);
    if (running.interfaces != next.interfaces) {
        fixed.emplace_back("interfaces");
    }
    // A service's live connections were set up for its mode (DNAT replies come back
    // through us; tunnel ones go straight to the client): switching would break them.
    for (const service_config& s : next.services) {
        if (const service_config* r = running.find_service(s.name);
            r != nullptr && r->mode != s.mode) {
            fixed.push_back(fmt::format("services {} mode", s.name));
        }
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

} // namespace evenflow::config
