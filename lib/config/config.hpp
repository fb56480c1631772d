// The typed configuration model: what a TOML file says once it has been parsed
// and validated. Plain values, no behaviour; see load.hpp to make one.
#pragma once

#include "config/choices.hpp"
#include "net/addr.hpp"
#include "net/pick_hash.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace evenflow::config {

using duration = std::chrono::milliseconds;
using namespace std::chrono_literals;

inline constexpr uint32_t default_table_size = 65537;
inline constexpr uint32_t max_weight = 1000;

struct eal_config {
    std::vector<std::string> args;
};

// Which backends get per-backend series in /metrics (per-service aggregates are
// always there): every one, only those in trouble (an alarm, or not up), or those
// plus the `top` busiest by live flows.
struct metrics_backends {
    enum class kind : uint8_t { all, alarmed, top };
    kind which = kind::all;
    uint32_t top = 0;
    bool operator==(const metrics_backends&) const = default;
};

struct control_config {
    std::string socket = "/run/evenflow/evenflow.sock";
    std::string metrics = "127.0.0.1:9091"; // "" disables the Prometheus endpoint
    struct metrics_backends metrics_backends;
    // Who may change state (apply, rollback, drain, ...): root and these uids. Anyone
    // who can open the socket (its group: socket_group) may read.
    std::vector<uint32_t> admins;
    std::string socket_group; // "" = root's group
    // Where committed versions, admin states and history are kept for crash recovery
    // (lib/control/state_store.hpp); "" keeps nothing.
    std::string state_dir = "/var/lib/evenflow";
};

struct flow_timeouts {
    duration syn = 5s;
    duration established = 300s;
    duration closing = 10s;
};

struct dataplane_config {
    std::vector<uint32_t> workers;    // lcore ids that run poll-mode workers
    uint32_t flow_capacity = 1048576; // flows per worker
    flow_timeouts timeouts;
    // The backend pick's secret (net::pick_key): the same on every host of a fleet.
    // Unset: evenflowd generates one and keeps it in state_dir.
    std::optional<net::hash_seed> hash_seed;
};

// A gateway address for the backends that moves between hosts (VRRPv3, RFC 5798):
// the live host of highest priority holds it, answers ARP for it with the virtual MAC
// 00:00:5e:00:01:<id> and takes the backends' replies sent to it; the others take over
// within about three advert intervals when it stops advertising.
struct vrrp_config {
    uint8_t id = 0; // virtual router id, 1-255
    net::ip_addr address;
    uint8_t priority = 100; // 1-254; equal priorities: the higher interface address wins
    duration advert_interval = std::chrono::milliseconds(100); // 10ms-40.95s, in 10ms steps
    // The other hosts' addresses on the interface: adverts from anyone else are dropped
    // (a backend cannot take the gateway). Empty: any on-link sender.
    std::vector<net::ip_addr> peers;

    bool operator==(const vrrp_config&) const = default;
};

struct interface_config {
    std::string name;
    std::string device; // DPDK port name: vdev name or PCI address
    net::ip_prefix address;
    std::optional<net::ip_addr> gateway;
    uint16_t vlan = 0; // 802.1Q tag sent and accepted on the port; 0: untagged only
    // The exception path: a kernel interface (DPDK's TAP PMD) of this name, holding the
    // interface's address and MAC, receives the host's own traffic from the port (BGP,
    // BFD, ICMP errors, ARP replies) and sends the kernel's out of it. "": none, and
    // packets to the address that the workers do not answer themselves are dropped.
    std::string kernel_interface;
    std::optional<vrrp_config> vrrp; // the backends' moving gateway on this interface

    bool operator==(const interface_config&) const = default;
};

struct backend_config {
    net::ip_addr address;
    uint16_t port = 0;
    uint32_t weight = 1; // 0 = draining: no new flows, existing ones continue
};

enum class health_kind : uint8_t { tcp, none };
constexpr auto choice_names(health_kind) { // config/choices.hpp
    return std::to_array<std::string_view>({"tcp", "none"});
}

struct health_config {
    health_kind kind = health_kind::tcp;
    duration interval = 1s;
    duration timeout = 500ms;
    uint32_t rise = 2;
    uint32_t fall = 3;
    std::optional<uint16_t> port; // probe this port instead of the backend's own
};

struct pool_config {
    std::string name;
    std::vector<backend_config> backends;
    health_config health;
    duration drain_timeout = 30s;
};

// What the service's flow hash covers: the whole 5-tuple (default), or the client
// alone (source-address affinity: every connection of a client to one backend), or
// the client address and port. The same on every host, so peers agree.
enum class hash_mode : uint8_t { five_tuple, src_ip, src_ip_port };
constexpr auto choice_names(hash_mode) { // config/choices.hpp
    return std::to_array<std::string_view>({"5tuple", "src_ip", "src_ip_port"});
}

// How a service's packets reach its backends (README "Forwarding modes"):
// dnat rewrites the destination, so replies must come back through the balancer;
// tunnel encapsulates the client's packet unchanged (IPIP) and the backend answers
// the client directly (direct server return).
enum class forward_mode : uint8_t { dnat, tunnel };
constexpr auto choice_names(forward_mode) { // config/choices.hpp
    return std::to_array<std::string_view>({"dnat", "tunnel"});
}

struct service_config {
    std::string name;
    net::ip_addr vip;
    uint16_t port = 0;
    std::string protocol = "tcp";
    std::string pool;
    uint32_t table_size = default_table_size;
    hash_mode hash = hash_mode::five_tuple;
    forward_mode mode = forward_mode::dnat;
};

enum class skew_action : uint8_t { alert, rollback };
constexpr auto choice_names(skew_action) { // config/choices.hpp
    return std::to_array<std::string_view>({"alert", "rollback"});
}

struct skew_config {
    duration window = 10s;
    double threshold = 2.0; // observed/expected share that raises an alarm
    uint32_t min_flows = 500;
    // Byte skew needs this much traffic in the window (both directions) before a
    // verdict; packet skew needs 10 x min_flows packets. Both also need min_flows flows.
    uint64_t min_bytes = 10'000'000;
    skew_action action = skew_action::alert;
    duration probation = 60s;
    // Guarded apply: refuse a config (unless the operator accepts the shift) that
    // multiplies some backend's expected share by more than this...
    double max_share_growth = 2.0;
    // ...or that takes away more than this fraction of a pool's weight.
    double max_capacity_loss = 0.5;
    // Those limits hold against the series baseline, not only the running version: a
    // version becomes the baseline once it has run this long unreplaced (or when it is
    // applied with --accept-shift). 0 judges each apply against the running version.
    duration baseline_window = std::chrono::hours(4);
    // No backend of a pool of three or more above this share unless accepted; unset:
    // no such limit.
    std::optional<double> max_share;
};

struct bgp_peer {
    net::ip_addr address;
    uint32_t as = 0;
};

// [bgp]: the VIPs are announced by a BGP speaker (BIRD 2) evenflowd runs and drives
// (app/evenflowd/bgp.cpp, policy in lib/control/announce.hpp). Routers peer with
// every host at these values (README "Running several hosts").
struct bgp_config {
    bool enabled = false; // the table is present
    uint32_t local_as = 0;
    net::ip_addr router_id;
    net::ip_addr next_hop; // the data-plane address routers send VIP traffic to
    std::vector<bgp_peer> peers;
    duration hold_time = 3s;
    // Liveness: the control loop or a worker that makes no progress for this long
    // has its VIPs withdrawn (the speaker is stopped) until it recovers.
    duration detection = 1s;
    // SIGTERM: withdraw, wait `convergence` for routers, then up to `drain_timeout`
    // for connections to finish, then close the ports.
    duration convergence = 2s;
    duration drain_timeout = 30s;
    std::string speaker = "/usr/sbin/bird"; // BIRD 2's daemon
    bool bfd = false;                       // BFD on the sessions (100 ms x 3)
    // How backends' DNAT replies reach a live host: "vrrp" (their gateway is an
    // interface's `vrrp` address, which moves between hosts) or "single" (this host is
    // the only one announcing its VIPs). With DNAT services, unset is an error.
    std::string return_path;
};

struct config {
    std::string source_path; // the file it was read from, for messages
    std::string source_text; // the TOML it was read from: what state_dir keeps of a version
    eal_config eal;
    control_config control;
    dataplane_config dataplane;
    std::vector<interface_config> interfaces;
    std::vector<pool_config> pools;
    std::vector<service_config> services;
    skew_config skew;
    bgp_config bgp;

    const pool_config* find_pool(std::string_view name) const;
    const service_config* find_service(std::string_view name) const;
};

// Text forms used in messages, diffs and the CLI.
std::string format_duration(duration d);          // "1.5s", "500ms", "5m"
std::string to_string(hash_mode m);               // "5tuple" | "src_ip" | "src_ip_port"
std::string to_string(forward_mode m);            // "dnat" | "tunnel"
std::string to_string(health_kind k);             // "tcp" | "none"
std::string to_string(skew_action a);             // "alert" | "rollback"
std::string to_string(const metrics_backends& m); // "all" | "alarmed" | "N"
// "10.20.0.11:8080", "[2001:db8::11]:8080"
std::string format_endpoint(const net::ip_addr& addr, uint16_t port);

} // namespace evenflow::config
