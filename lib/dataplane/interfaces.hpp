// The balancer's interfaces as the data plane sees them, and next-hop selection.
#pragma once

#include "dataplane/steering.hpp"
#include "net/addr.hpp"

#include <rte_ether.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace evenflow::dataplane {

// Fixed for the daemon's lifetime: interfaces are bound to DPDK ports at start.
struct interface_info {
    uint16_t index = 0;   // position in [[interfaces]]
    uint16_t port_id = 0; // DPDK port
    std::string name;
    std::string device;
    rte_ether_addr mac{};
    net::ip_prefix address;
    std::optional<net::ip_addr> gateway;
    uint16_t vlan = 0;                              // 802.1Q tag of the port; 0: untagged
    port_role role = port_role::both;               // which side it faces
    steering_mode steering = steering_mode::single; // how packets reach their owner
    uint16_t mtu = RTE_ETHER_MTU;                   // largest IP packet it sends
    // The kernel interface of the exception path (kernel_interfaces.hpp); "": none.
    std::string kernel_interface;
    // The backends' moving gateway here (config vrrp; net/vrrp.hpp): id 0 when none.
    // Whether this host holds it now is dataplane_shared::gateway_holding.
    uint8_t vrrp_id = 0;
    net::ip_addr vrrp_address;
    rte_ether_addr vrrp_mac{};

    // The IPv4 prefix as route() tests it per packet (network byte order); set with
    // the address by set_address().
    bool v4 = false;
    uint32_t v4_network = 0;
    uint32_t v4_mask = 0;
    void set_address(const net::ip_prefix& prefix) {
        address = prefix;
        v4 = prefix.addr.is_v4();
        uint32_t host_mask = prefix.length == 0 ? 0 : ~uint32_t(0) << (32 - prefix.length);
        v4_mask = v4 ? __builtin_bswap32(host_mask) : 0;
        v4_network = v4 ? prefix.addr.v4_be() & v4_mask : 0;
    }
};

struct egress {
    uint16_t iface = 0;
    net::ip_addr next_hop;
};

// On-link destinations go to themselves through the interface whose prefix holds
// them; anything else goes to the first interface that has a gateway. nullopt when
// there is no way out (counted as not_for_us by the caller).
inline std::optional<egress> route(std::span<const interface_info> interfaces,
                                   const net::ip_addr& dst) {
    if (dst.is_v4()) {
        const uint32_t d = dst.v4_be();
        for (const interface_info& i : interfaces) {
            if (i.v4 && (d & i.v4_mask) == i.v4_network) {
                return egress{i.index, dst};
            }
        }
    } else {
        for (const interface_info& i : interfaces) {
            if (i.address.contains(dst)) {
                return egress{i.index, dst};
            }
        }
    }
    for (const interface_info& i : interfaces) {
        if (i.gateway && i.gateway->is_v4() == dst.is_v4()) {
            return egress{i.index, *i.gateway};
        }
    }
    return std::nullopt;
}

// Whether `ip` is one of the balancer's own interface addresses; sets *iface.
inline bool is_interface_address(std::span<const interface_info> interfaces, const net::ip_addr& ip,
                                 uint16_t* iface = nullptr) {
    for (const interface_info& i : interfaces) {
        if (i.address.addr == ip) {
            if (iface != nullptr) {
                *iface = i.index;
            }
            return true;
        }
    }
    return false;
}

} // namespace evenflow::dataplane
