// Reading a config: TOML parse (toml++), then one reader per section filling the
// typed model (config.hpp) and reporting every problem through toml_reader. This
// file has the entry points and the host sections ([eal], [control], [dataplane],
// [[interfaces]], [skew]); load_pools.cpp reads pools and services; checks.cpp runs
// the checks across entries. Nothing stops at the first error: one `evenctl check`
// run lists every problem.
#include "config/loader.hpp"

#include "config/settings.hpp"
#include "config/values.hpp"

#include <fmt/format.h>

#include <sys/un.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace evenflow::config {

namespace {

constexpr size_t max_socket_path = sizeof(sockaddr_un::sun_path) - 1;

std::string lower_first(std::string_view text) {
    std::string out(text);
    if (!out.empty() && out[0] >= 'A' && out[0] <= 'Z') {
        out[0] = char(out[0] - 'A' + 'a');
    }
    return out;
}

} // namespace

load_result loader::run(const toml::table& root) {
    m_config.source_path = m_file;
    read_root(root);
    check_services();
    check_counts();
    check_reply_path();
    load_result result;
    result.errors = take_errors();
    result.warnings = take_warnings();
    if (result.errors.empty()) {
        result.value = std::move(m_config);
    }
    return result;
}

void loader::read_root(const toml::table& root) {
    check_keys(root, "",
               {"eal", "control", "dataplane", "interfaces", "pools", "services", "skew", "bgp"});
    if (auto* n = member(root, "eal", "")) {
        if (auto* t = get_table(*n, "eal")) {
            read_eal(*t);
        }
    }
    if (auto* n = member(root, "control", "")) {
        if (auto* t = get_table(*n, "control")) {
            read_control(*t);
        }
    }
    if (auto* n = root.get("dataplane")) {
        if (auto* t = get_table(*n, "dataplane")) {
            read_dataplane(*t);
        }
    } else {
        error(root, "dataplane",
              "required table is missing; add [dataplane] with e.g. workers = [1]");
    }
    if (auto* n = root.get("interfaces")) {
        for_each_entry(*n, "interfaces", "an array of tables ([[interfaces]])",
                       [&](const toml::table& t, const std::string& p) { read_interface(t, p); });
        if (auto* a = n->as_array(); a != nullptr && a->empty()) {
            error(*n, "interfaces",
                  "no interfaces; add at least one [[interfaces]] with name, device and "
                  "address");
        }
    } else {
        error(root, "interfaces",
              "required section is missing; add at least one [[interfaces]] with name, "
              "device and address");
    }
    if (auto* n = root.get("pools")) {
        for_each_entry(*n, "pools", "an array of tables ([[pools]])",
                       [&](const toml::table& t, const std::string& p) { read_pool(t, p); });
    }
    if (auto* n = root.get("services")) {
        for_each_entry(*n, "services", "an array of tables ([[services]])",
                       [&](const toml::table& t, const std::string& p) { read_service(t, p); });
    }
    if (auto* n = root.get("skew")) {
        if (auto* t = get_table(*n, "skew")) {
            read_skew(*t);
        }
    }
    if (auto* n = root.get("bgp")) {
        if (auto* t = get_table(*n, "bgp")) {
            read_bgp(*t);
        }
    }
}

void loader::read_bgp(const toml::table& table) {
    const std::string path = "bgp";
    bgp_config& bgp = m_config.bgp;
    bgp.enabled = true;
    m_bgp_src = &table;
    check_keys(table, path, keys_of(path));
    auto v4 = [&](const toml::node& n, const std::string& key) -> std::optional<net::ip_addr> {
        auto a = get_address(n, key);
        if (a && !a->is_v4()) {
            error(n, key, "an IPv4 address is needed here, e.g. \"10.30.0.2\"");
            return std::nullopt;
        }
        return a;
    };
    if (auto* n = member(table, "local_as", path, "local_as = 65001")) {
        if (auto as =
                get_uint(*n, child(path, "local_as"), "AS number", 1, bounds::uint32_max - 1)) {
            bgp.local_as = *as;
        }
    }
    if (auto* n = member(table, "router_id", path, "router_id = \"10.30.0.2\"")) {
        if (auto a = v4(*n, child(path, "router_id"))) {
            bgp.router_id = *a;
        }
    }
    if (auto* n = member(table, "next_hop", path, "next_hop = \"10.30.0.2\"")) {
        if (auto a = v4(*n, child(path, "next_hop"))) {
            bgp.next_hop = *a;
            // The session's source address: on a port DPDK owns, the kernel has it only
            // through the exception path.
            for (size_t i = 0; i < m_config.interfaces.size(); ++i) {
                const auto& iface = m_config.interfaces[i];
                if (iface.address.addr == *a && iface.kernel_interface.empty()) {
                    warning(*n, child(path, "next_hop"),
                            fmt::format("BGP runs from {}, interfaces[{}]'s address, which has "
                                        "no kernel_interface: on a port DPDK owns the kernel "
                                        "never holds that address and the session cannot come "
                                        "up; add kernel_interface = \"ef-{}\" to interfaces[{}]",
                                        a->to_string(), i, iface.name.substr(0, 12), i));
                }
            }
        }
    }
    if (auto* n =
            member(table, "peers", path, "peers = [{ address = \"10.30.0.1\", as = 65000 }]")) {
        auto key = child(path, "peers");
        for_each_entry(*n, key, "an array of tables ({ address = ..., as = ... })",
                       [&](const toml::table& t, const std::string& p) {
                           check_keys(t, p, {"address", "as"});
                           bgp_peer peer;
                           if (auto* a = member(t, "address", p)) {
                               if (auto addr = v4(*a, child(p, "address"))) {
                                   peer.address = *addr;
                               }
                           }
                           if (auto* a = member(t, "as", p)) {
                               if (auto as = get_uint(*a, child(p, "as"), "AS number", 1,
                                                      bounds::uint32_max - 1)) {
                                   peer.as = *as;
                               }
                           }
                           bgp.peers.push_back(peer);
                       });
        if (auto* a = n->as_array(); a != nullptr && a->empty()) {
            error(*n, key, "no peers; list at least one router");
        }
    }
    if (auto* n = read_duration(table, path, "hold_time", bgp.hold_time, false,
                                bounds::max_short_duration)) {
        if (bgp.hold_time < 3s) {
            error(*n, child(path, "hold_time"), "BGP allows a hold time of 3s at least");
        }
    }
    read_duration(table, path, "detection", bgp.detection, false, bounds::max_short_duration);
    read_duration(table, path, "convergence", bgp.convergence, true, bounds::max_short_duration);
    read_duration(table, path, "drain_timeout", bgp.drain_timeout, true,
                  bounds::max_short_duration);
    if (auto* n = member(table, "speaker", path)) {
        if (auto sp = get_string(*n, child(path, "speaker"))) {
            bgp.speaker = *sp;
        }
    }
    if (auto* n = member(table, "return_path", path)) {
        auto key = child(path, "return_path");
        if (auto rp = get_string(*n, key)) {
            if (*rp == "vrrp" || *rp == "single") {
                bgp.return_path = *rp;
            } else if (*rp == "ecmp") {
                // Measured with two hosts (issue 30): a backend keeps sending half its
                // replies to a dead host's MAC until its neighbor entry fails, seconds.
                error(*n, key,
                      "\"ecmp\" loses connections: backends keep sending replies to a dead "
                      "host's MAC for seconds, until their neighbor entry fails; use \"vrrp\" "
                      "(a vrrp gateway on the backends' interface) or mode = \"tunnel\"");
            } else {
                error(*n, key, fmt::format("\"{}\" is not \"vrrp\" or \"single\"", *rp));
            }
        }
    }
    if (auto* n = member(table, "bfd", path)) {
        if (auto* b = n->as_boolean()) {
            bgp.bfd = b->get();
        } else {
            type_error(*n, child(path, "bfd"), "true or false");
        }
    }
}

void loader::read_eal(const toml::table& table) {
    const std::string path = "eal";
    check_keys(table, path, keys_of(path));
    if (auto* n = member(table, "args", path)) {
        auto args_path = child(path, "args");
        if (auto* array = get_array(*n, args_path)) {
            for (size_t i = 0; i < array->size(); ++i) {
                if (auto arg = get_string(*array->get(i), element(args_path, i))) {
                    m_config.eal.args.push_back(*arg);
                }
            }
        }
    }
}

void loader::read_control(const toml::table& table) {
    const std::string path = "control";
    check_keys(table, path, keys_of(path));
    if (auto* n = member(table, "state_dir", path)) {
        auto key = child(path, "state_dir");
        if (auto dir = get_string(*n, key)) {
            if (!dir->empty() && dir->front() != '/') {
                error(*n, key,
                      fmt::format("\"{}\" is not an absolute path; write e.g. "
                                  "\"/var/lib/evenflow\", or \"\" to keep no state",
                                  *dir));
            } else {
                m_config.control.state_dir = *dir;
            }
        }
    }
    if (auto* n = member(table, "admins", path)) {
        auto key = child(path, "admins");
        if (auto* array = get_array(*n, key)) {
            for (size_t i = 0; i < array->size(); ++i) {
                if (auto uid = get_uint(*array->get(i), element(key, i), "uid", 0,
                                        bounds::uint32_max - 1)) {
                    m_config.control.admins.push_back(*uid);
                }
            }
        }
    }
    if (auto* n = member(table, "socket_group", path)) {
        if (auto group = get_name(*n, child(path, "socket_group"))) {
            m_config.control.socket_group = *group;
        }
    }
    if (auto* n = member(table, "socket", path)) {
        auto key = child(path, "socket");
        if (auto socket = get_string(*n, key)) {
            if (socket->empty() || socket->front() != '/') {
                error(*n, key,
                      fmt::format("\"{}\" is not an absolute path; write e.g. "
                                  "\"/run/evenflow/evenflow.sock\"",
                                  *socket));
            } else if (socket->size() > max_socket_path) {
                error(*n, key,
                      fmt::format("path is {} bytes long; a Unix socket path may have at "
                                  "most {}",
                                  socket->size(), max_socket_path));
            } else {
                m_config.control.socket = *socket;
            }
        }
    }
    if (auto* n = member(table, "metrics", path)) {
        auto key = child(path, "metrics");
        if (auto metrics = get_string(*n, key)) {
            if (!metrics->empty() && !valid_listen_address(*metrics)) {
                error(*n, key,
                      fmt::format("\"{}\" is not HOST:PORT; write e.g. \"127.0.0.1:9091\", "
                                  "or \"\" to disable metrics",
                                  *metrics));
            } else {
                m_config.control.metrics = *metrics;
            }
        }
    }
    if (auto* n = member(table, "metrics_backends", path)) {
        auto key = child(path, "metrics_backends");
        auto& out = m_config.control.metrics_backends;
        if (auto* s = n->as_string(); s != nullptr && s->get() == "all") {
            out.which = metrics_backends::kind::all;
        } else if (s != nullptr && s->get() == "alarmed") {
            out.which = metrics_backends::kind::alarmed;
        } else if (n->is_integer()) {
            if (auto v = get_uint(*n, key, "metrics_backends", 1, 1'000'000)) {
                out.which = metrics_backends::kind::top;
                out.top = *v;
            }
        } else {
            error(*n, key,
                  "metrics_backends is \"all\", \"alarmed\" (backends with an alarm or not "
                  "up) or a number N (those plus the N busiest)");
        }
    }
}

void loader::read_dataplane(const toml::table& table) {
    const std::string path = "dataplane";
    check_keys(table, path, keys_of(path));
    if (auto* n = member(table, "workers", path, "workers = [1]")) {
        auto key = child(path, "workers");
        if (auto* array = get_array(*n, key)) {
            if (array->empty()) {
                error(*n, key, "no workers; list at least one lcore, e.g. workers = [1]");
            }
            std::set<uint32_t> seen;
            for (size_t i = 0; i < array->size(); ++i) {
                const toml::node& item = *array->get(i);
                auto item_key = element(key, i);
                auto lcore = get_uint(item, item_key, "lcore", 0, bounds::max_lcore);
                if (!lcore) {
                    continue;
                }
                if (!seen.insert(*lcore).second) {
                    error(item, item_key,
                          fmt::format("lcore {} is listed twice; list each worker once", *lcore));
                    continue;
                }
                m_config.dataplane.workers.push_back(*lcore);
            }
        }
    }
    if (auto* n = member(table, "flow_capacity", path)) {
        if (auto v = get_uint(*n, child(path, "flow_capacity"), "flow_capacity",
                              bounds::min_flow_capacity, bounds::max_flow_capacity)) {
            m_config.dataplane.flow_capacity = *v;
        }
    }
    if (auto* n = member(table, "timeouts", path)) {
        auto key = child(path, "timeouts");
        if (auto* t = get_table(*n, key)) {
            check_keys(*t, key, keys_of(key));
            auto& timeouts = m_config.dataplane.timeouts;
            read_duration(*t, key, "syn", timeouts.syn, false, bounds::max_short_duration);
            read_duration(*t, key, "established", timeouts.established, false);
            read_duration(*t, key, "closing", timeouts.closing, false, bounds::max_short_duration);
        }
    }
    if (auto* n = member(table, "hash_seed", path)) {
        auto key = child(path, "hash_seed");
        if (auto text = get_string(*n, key)) {
            if (auto seed = net::hash_seed::parse(*text)) {
                m_config.dataplane.hash_seed = *seed;
            } else {
                // The value itself is a secret: never repeated in the message.
                error(*n, key,
                      fmt::format("expected 32 hex digits (128 bits), got {} characters; "
                                  "make one with: openssl rand -hex 16",
                                  text->size()));
            }
        }
    }
}

void loader::read_interface(const toml::table& table, const std::string& path) {
    check_keys(table, path,
               {"name", "device", "address", "gateway", "vlan", "kernel_interface", "vrrp"});
    interface_config iface;
    bool name_ok = false, device_ok = false, address_ok = false;

    if (auto* n = member(table, "name", path, "name = \"client-side\"")) {
        if (auto name = get_name(*n, child(path, "name"))) {
            iface.name = *name;
            name_ok = true;
        }
    }
    if (auto* n = member(table, "device", path, "device = \"net_af_packet0\"")) {
        auto key = child(path, "device");
        if (auto device = get_string(*n, key)) {
            if (device->empty()) {
                error(*n, key,
                      "device is empty; write the DPDK port name, e.g. \"net_af_packet0\" "
                      "or \"0000:01:00.0\"");
            } else {
                iface.device = *device;
                device_ok = true;
            }
        }
    }
    if (auto* n = member(table, "address", path, "address = \"10.10.0.2/24\"")) {
        auto key = child(path, "address");
        if (auto text = get_string(*n, key)) {
            if (auto prefix = net::ip_prefix::parse(*text)) {
                iface.address = *prefix;
                address_ok = true;
            } else if (net::ip_addr::parse(*text)) {
                error(
                    *n, key,
                    fmt::format("\"{}\" has no prefix length; write e.g. \"{}/24\"", *text, *text));
            } else {
                error(*n, key,
                      fmt::format("\"{}\" is not an address with a prefix length; write e.g. "
                                  "\"10.10.0.2/24\"",
                                  *text));
            }
        }
    }
    if (auto* n = member(table, "gateway", path)) {
        auto key = child(path, "gateway");
        if (auto gateway = get_address(*n, key)) {
            if (address_ok && !iface.address.contains(*gateway)) {
                error(*n, key,
                      fmt::format("gateway {} is outside {}; a gateway must be on the "
                                  "interface's own network",
                                  gateway->to_string(), iface.address.to_string()));
            } else {
                iface.gateway = *gateway;
            }
        }
    }

    if (auto* n = member(table, "vlan", path)) {
        if (auto v = get_uint(*n, child(path, "vlan"), "vlan", 1, 4094)) {
            iface.vlan = uint16_t(*v);
        }
    }

    if (auto* n = member(table, "kernel_interface", path)) {
        auto key = child(path, "kernel_interface");
        if (auto name = get_string(*n, key)) {
            if (std::string why = kernel_interface_name_error(*name); !why.empty()) {
                error(*n, key, why);
            } else if (address_ok && !iface.address.addr.is_v4()) {
                error(*n, key,
                      fmt::format("the kernel interface is given IPv4 addresses only; {} is "
                                  "IPv6",
                                  iface.address.to_string()));
            } else {
                iface.kernel_interface = *name;
            }
        }
    }

    const toml::node* vrrp_node = member(table, "vrrp", path);
    if (vrrp_node != nullptr) {
        iface.vrrp = read_vrrp(*vrrp_node, child(path, "vrrp"), iface, address_ok);
    }

    // Uniqueness against the interfaces read so far.
    for (size_t i = 0; i < m_config.interfaces.size(); ++i) {
        const auto& other = m_config.interfaces[i];
        if (!iface.kernel_interface.empty() && other.kernel_interface == iface.kernel_interface) {
            error(*table.get("kernel_interface"), child(path, "kernel_interface"),
                  fmt::format("kernel interface \"{}\" is already interfaces[{}]'s",
                              iface.kernel_interface, i));
        }
        if (name_ok && other.name == iface.name) {
            error(*table.get("name"), child(path, "name"),
                  fmt::format("interface name \"{}\" is already used by interfaces[{}]; "
                              "names must be unique",
                              iface.name, i));
        }
        if (device_ok && other.device == iface.device) {
            error(*table.get("device"), child(path, "device"),
                  fmt::format("device \"{}\" is already used by interfaces[{}]; each "
                              "interface needs its own port",
                              iface.device, i));
        }
    }
    if (!name_ok) {
        iface.name.clear(); // never matches a later duplicate check
    }
    if (!device_ok) {
        iface.device.clear();
    }
    m_vrrp_src.push_back(iface.vrrp ? vrrp_node : nullptr);
    m_config.interfaces.push_back(std::move(iface));
}

std::optional<vrrp_config> loader::read_vrrp(const toml::node& node, const std::string& path,
                                             const interface_config& iface, bool address_ok) {
    const toml::table* table = get_table(node, path);
    if (table == nullptr) {
        return std::nullopt;
    }
    check_keys(*table, path, {"id", "address", "priority", "advert_interval", "peers"});
    vrrp_config vrrp;
    size_t errors_before = error_count();
    // What VRRP carries here: IPv4 on the interface's own network (the backends'
    // gateway is a neighbor of theirs).
    auto on_link = [&](const toml::node& n, const std::string& key,
                       std::string_view what) -> std::optional<net::ip_addr> {
        auto a = get_address(n, key);
        if (!a) {
            return std::nullopt;
        }
        if (!a->is_v4()) {
            error(n, key,
                  fmt::format("{} {} is IPv6; VRRP is run for IPv4 here", what, a->to_string()));
            return std::nullopt;
        }
        if (address_ok && !iface.address.contains(*a)) {
            error(n, key,
                  fmt::format("{} {} is outside {}: it must be on the interface's own network",
                              what, a->to_string(), iface.address.to_string()));
            return std::nullopt;
        }
        if (address_ok && *a == iface.address.addr) {
            error(n, key,
                  fmt::format("{} {} is this interface's own address; {}", what, a->to_string(),
                              what == "peer" ? "peers are the other hosts' addresses"
                                             : "the moving gateway needs an address of its own"));
            return std::nullopt;
        }
        return a;
    };
    if (auto* n = member(*table, "id", path, "id = 20")) {
        if (auto id = get_uint(*n, child(path, "id"), "virtual router id", 1, 255)) {
            vrrp.id = uint8_t(*id);
        }
    }
    if (auto* n = member(*table, "address", path, "address = \"10.20.0.1\"")) {
        if (auto a = on_link(*n, child(path, "address"), "the gateway address")) {
            vrrp.address = *a;
        }
    }
    if (auto* n = member(*table, "priority", path)) {
        // 255 is the address owner's and 0 a host leaving: neither is configured.
        if (auto p = get_uint(*n, child(path, "priority"), "priority", 1, 254)) {
            vrrp.priority = uint8_t(*p);
        }
    }
    if (auto* n = read_duration(*table, path, "advert_interval", vrrp.advert_interval, false,
                                std::chrono::milliseconds(40950))) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(vrrp.advert_interval);
        if (ms < std::chrono::milliseconds(10) || ms.count() % 10 != 0 ||
            ms != vrrp.advert_interval) {
            error(*n, child(path, "advert_interval"),
                  fmt::format("{} is not a whole number of centiseconds from 10ms to 40.95s "
                              "(VRRPv3 carries it in centiseconds)",
                              format_duration(vrrp.advert_interval)));
        }
    }
    if (auto* n = member(*table, "peers", path)) {
        auto key = child(path, "peers");
        if (const toml::array* a = get_array(*n, key)) {
            for (size_t i = 0; i < a->size(); ++i) {
                if (auto peer = on_link(*a->get(i), element(key, i), "peer")) {
                    if (*peer == vrrp.address) {
                        error(*a->get(i), element(key, i),
                              "a peer is another host's interface address, not the gateway's");
                    } else {
                        vrrp.peers.push_back(*peer);
                    }
                }
            }
        }
    } else {
        warning(*table, path,
                "no peers: adverts from any host on the network are believed, so a backend "
                "could take the gateway; list the other hosts' addresses, e.g. peers = "
                "[\"10.20.0.3\"]");
    }
    if (error_count() != errors_before) {
        return std::nullopt;
    }
    return vrrp;
}

void loader::read_skew(const toml::table& table) {
    const std::string path = "skew";
    check_keys(table, path, keys_of(path));
    auto& skew = m_config.skew;
    read_duration(table, path, "window", skew.window, false, bounds::max_short_duration);
    if (auto* n = member(table, "threshold", path)) {
        auto key = child(path, "threshold");
        if (auto v = get_number(*n, key)) {
            if (!std::isfinite(*v) || !(*v > 1.0)) {
                error(*n, key,
                      fmt::format("threshold {} must be greater than 1.0; it is the "
                                  "observed/expected share that raises an alarm, e.g. 2.0",
                                  *v));
            } else {
                skew.threshold = *v;
            }
        }
    }
    if (auto* n = member(table, "min_flows", path)) {
        if (auto v = get_uint(*n, child(path, "min_flows"), "min_flows", 1, 1'000'000'000)) {
            skew.min_flows = *v;
        }
    }
    if (auto* n = member(table, "min_bytes", path)) {
        if (auto v = get_uint(*n, child(path, "min_bytes"), "min_bytes", 1, 4'000'000'000)) {
            skew.min_bytes = *v;
        }
    }
    if (auto* n = member(table, "action", path)) {
        if (auto action = get_choice<skew_action>(*n, child(path, "action"), "action")) {
            skew.action = *action;
        }
    }
    read_duration(table, path, "probation", skew.probation, true);
    if (auto* n = member(table, "max_share_growth", path)) {
        auto key = child(path, "max_share_growth");
        if (auto v = get_number(*n, key)) {
            if (!std::isfinite(*v) || !(*v > 1.0)) {
                error(*n, key,
                      fmt::format("max_share_growth {} must be greater than 1.0, e.g. 2.0 "
                                  "refuses a config that doubles a backend's share",
                                  *v));
            } else {
                skew.max_share_growth = *v;
            }
        }
    }
    if (auto* n = member(table, "max_capacity_loss", path)) {
        auto key = child(path, "max_capacity_loss");
        if (auto v = get_number(*n, key)) {
            if (!std::isfinite(*v) || !(*v > 0.0) || *v > 1.0) {
                error(*n, key,
                      fmt::format("max_capacity_loss {} must be in (0, 1], e.g. 0.5 refuses "
                                  "a config that removes more than half of a pool's weight",
                                  *v));
            } else {
                skew.max_capacity_loss = *v;
            }
        }
    }
    read_duration(table, path, "baseline_window", skew.baseline_window, true, bounds::max_duration);
    if (auto* n = member(table, "max_share", path)) {
        auto key = child(path, "max_share");
        if (auto v = get_number(*n, key)) {
            if (!std::isfinite(*v) || !(*v > 0.0) || !(*v < 1.0)) {
                error(*n, key,
                      fmt::format("max_share {} must be in (0, 1), e.g. 0.5: no backend of a "
                                  "pool of three or more above half of its traffic",
                                  *v));
            } else {
                skew.max_share = *v;
            }
        }
    }
}

load_result load_string(std::string_view toml_text, std::string path_for_messages) {
    toml::table root;
    try {
        root = toml::parse(toml_text, std::string_view(path_for_messages));
    } catch (const toml::parse_error& e) {
        load_result result;
        result.errors.push_back(diagnostic{severity::error, path_for_messages,
                                           uint32_t(e.source().begin.line),
                                           uint32_t(e.source().begin.column), "",
                                           "invalid TOML: " + lower_first(e.description())});
        return result;
    }
    load_result result = loader(std::move(path_for_messages)).run(root);
    if (result.value) {
        result.value->source_text = std::string(toml_text);
    }
    return result;
}

load_result load_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        load_result result;
        result.errors.push_back(diagnostic{severity::error, path, 0, 0, "",
                                           "this is a directory; give the path of a .toml file"});
        return result;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        load_result result;
        result.errors.push_back(
            diagnostic{severity::error, path, 0, 0, "",
                       "cannot read the file: " + lower_first(std::strerror(errno))});
        return result;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return load_string(text.str(), path);
}

} // namespace evenflow::config
