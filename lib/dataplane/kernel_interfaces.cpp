#include "dataplane/kernel_interfaces.hpp"

#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_ether.h>

#include <fmt/format.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace evenflow::dataplane {

namespace {

constexpr uint16_t tap_descriptors = 256;

// The kernel side's IPv4 address, netmask, MTU and up, by the classic ioctls: the
// values are few and fixed for the daemon's life, which netlink would not improve.
std::string configure_kernel_side(const std::string& name, const interface_info& ifc) {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return fmt::format("socket: {}", std::strerror(errno));
    }
    auto request = [&](unsigned long op, ifreq& ifr, const char* what) -> std::string {
        std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
        if (::ioctl(fd, op, &ifr) != 0) {
            return fmt::format("{} of {}: {}", what, name, std::strerror(errno));
        }
        return {};
    };
    auto v4 = [](uint32_t be) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = be;
        sockaddr sa{};
        std::memcpy(&sa, &sin, sizeof sin);
        return sa;
    };
    std::string error;
    ifreq ifr{};
    ifr.ifr_addr = v4(ifc.address.addr.v4_be());
    error = request(SIOCSIFADDR, ifr, "address");
    if (error.empty()) {
        ifr = {};
        ifr.ifr_netmask = v4(ifc.v4_mask);
        error = request(SIOCSIFNETMASK, ifr, "netmask");
    }
    if (error.empty()) {
        ifr = {};
        ifr.ifr_mtu = ifc.mtu;
        error = request(SIOCSIFMTU, ifr, "MTU");
    }
    if (error.empty()) {
        ifr = {};
        error = request(SIOCGIFFLAGS, ifr, "flags");
        if (error.empty()) {
            ifr.ifr_flags = short(ifr.ifr_flags | IFF_UP);
            error = request(SIOCSIFFLAGS, ifr, "up");
        }
    }
    ::close(fd);
    // IPv4 only: the kernel's IPv6 (router solicitations, DAD, MLD) would only add
    // frames to the port that nothing here expects.
    if (FILE* f =
            std::fopen(fmt::format("/proc/sys/net/ipv6/conf/{}/disable_ipv6", name).c_str(), "w")) {
        std::fputs("1\n", f);
        std::fclose(f);
    }
    return error;
}

std::string start_tap(const std::string& vdev, const std::string& kernel, const interface_info& ifc,
                      rte_mempool* pool, uint16_t* port_id) {
    char mac[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(mac, sizeof mac, &ifc.mac);
    const std::string args = fmt::format("iface={},mac={}", kernel, mac);
    if (int rc = rte_eal_hotplug_add("vdev", vdev.c_str(), args.c_str()); rc != 0) {
        return fmt::format("cannot create kernel interface {} (DPDK TAP port {}): {}; is the name "
                           "taken, /dev/net/tun missing or CAP_NET_ADMIN lacking?",
                           kernel, vdev, rte_strerror(rc < 0 ? -rc : rc));
    }
    if (rte_eth_dev_get_port_by_name(vdev.c_str(), port_id) != 0) {
        return fmt::format("TAP port {} made no DPDK port", vdev);
    }
    rte_eth_conf conf{};
    if (int rc = rte_eth_dev_configure(*port_id, 1, 1, &conf); rc != 0) {
        return fmt::format("cannot configure TAP port {}: {}", vdev, rte_strerror(-rc));
    }
    const int socket = rte_eth_dev_socket_id(*port_id);
    if (int rc = rte_eth_rx_queue_setup(*port_id, 0, tap_descriptors, socket, nullptr, pool);
        rc != 0) {
        return fmt::format("TAP port {}: RX queue: {}", vdev, rte_strerror(-rc));
    }
    if (int rc = rte_eth_tx_queue_setup(*port_id, 0, tap_descriptors, socket, nullptr); rc != 0) {
        return fmt::format("TAP port {}: TX queue: {}", vdev, rte_strerror(-rc));
    }
    if (int rc = rte_eth_dev_start(*port_id); rc != 0) {
        return fmt::format("cannot start TAP port {}: {}", vdev, rte_strerror(-rc));
    }
    // The kernel drops frames for another MAC: its side must have the port's (the TAP
    // driver silently picks a random one for a MAC it cannot set, all zeros say).
    rte_ether_addr kernel_mac{};
    if (rte_eth_macaddr_get(*port_id, &kernel_mac) != 0 ||
        !rte_is_same_ether_addr(&kernel_mac, &ifc.mac)) {
        return fmt::format("its MAC cannot be the port's ({}): the kernel would ignore every "
                           "frame for it",
                           mac);
    }
    if (std::string error = configure_kernel_side(kernel, ifc); !error.empty()) {
        return "kernel interface " + error;
    }
    return {};
}

} // namespace

bool kernel_interfaces::start(std::span<const interface_info> interfaces, rte_mempool* pool,
                              std::string* error) {
    m_by_iface.assign(interfaces.size(), -1);
    for (const interface_info& ifc : interfaces) {
        if (ifc.kernel_interface.empty()) {
            continue;
        }
        entry e;
        e.iface = ifc.index;
        e.kernel = ifc.kernel_interface;
        // A name of the TAP driver's (net_tap...) that [eal] args would not use.
        e.vdev = fmt::format("net_tap_evenflow{}", ifc.index);
        std::string why = start_tap(e.vdev, e.kernel, ifc, pool, &e.port_id);
        m_by_iface[ifc.index] = int(m_entries.size());
        m_entries.push_back(std::move(e));
        if (!why.empty()) {
            *error = fmt::format("interface {}: {}", ifc.name, why);
            stop();
            return false;
        }
    }
    return true;
}

void kernel_interfaces::stop() {
    for (const entry& e : m_entries) {
        uint16_t port_id;
        if (rte_eth_dev_get_port_by_name(e.vdev.c_str(), &port_id) == 0) {
            rte_eth_dev_stop(port_id);
            rte_eth_dev_close(port_id);
        }
        rte_eal_hotplug_remove("vdev", e.vdev.c_str());
    }
    m_entries.clear();
    m_by_iface.clear();
}

void kernel_interfaces::deliver(rte_mbuf* m) {
    const int at = m->port < m_by_iface.size() ? m_by_iface[m->port] : -1;
    if (at < 0) {
        rte_pktmbuf_free(m);
        return;
    }
    entry& e = m_entries[size_t(at)];
    const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN) && rte_vlan_strip(m) != 0) {
        rte_pktmbuf_free(m);
        ++e.stats.to_kernel_dropped;
        return;
    }
    m->ol_flags = 0; // what the data port's RX said is no request to the TAP's TX
    if (rte_eth_tx_burst(e.port_id, 0, &m, 1) != 1) {
        rte_pktmbuf_free(m);
        ++e.stats.to_kernel_dropped;
        return;
    }
    ++e.stats.to_kernel;
}

unsigned kernel_interfaces::receive(rte_mbuf** out, unsigned max) {
    unsigned n = 0;
    for (entry& e : m_entries) {
        if (n == max) {
            break;
        }
        const uint16_t got = rte_eth_rx_burst(e.port_id, 0, out + n, uint16_t(max - n));
        for (uint16_t i = 0; i < got; ++i) {
            out[n + i]->port = e.iface;
        }
        e.stats.from_kernel += got;
        n += got;
    }
    return n;
}

} // namespace evenflow::dataplane
