#include "dataplane/ports.hpp"

#include "dataplane/worker.hpp"

#include "net/vrrp.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace evenflow::dataplane {

rte_mempool* create_packet_pool(size_t interfaces, const port_options& options,
                                std::string* error) {
    // Every descriptor of every queue can hold a buffer, plus what the rings to and
    // from the control thread, the neighbor wait queues and the kernel interfaces'
    // queues (kernel_interfaces.cpp: 256 + 256) may hold.
    size_t per_port =
        size_t(options.queues) * (options.rx_descriptors + options.tx_descriptors) + 512;
    size_t count = interfaces * per_port + size_t(options.queues) * 1024 + 4096 + 4096;
    rte_mempool* pool = rte_pktmbuf_pool_create("ef_mbufs", uint32_t(count), 256, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
    if (pool == nullptr) {
        *error = fmt::format("cannot create a pool of {} packet buffers: {} (give EAL more "
                             "memory with -m, or reserve hugepages)",
                             count, rte_strerror(rte_errno));
    }
    return pool;
}

std::vector<port_role> port_roles(const config::config& cfg) {
    std::vector<interface_info> interfaces(cfg.interfaces.size());
    for (size_t i = 0; i < cfg.interfaces.size(); ++i) {
        interfaces[i].index = uint16_t(i);
        interfaces[i].set_address(cfg.interfaces[i].address);
        interfaces[i].gateway = cfg.interfaces[i].gateway;
    }
    std::vector<bool> reaches_backends(interfaces.size(), false);
    for (const config::pool_config& pool : cfg.pools) {
        for (const config::backend_config& b : pool.backends) {
            if (auto out = route(interfaces, b.address)) {
                reaches_backends[out->iface] = true;
            }
        }
    }
    bool all =
        std::all_of(reaches_backends.begin(), reaches_backends.end(), [](bool r) { return r; });
    std::vector<port_role> roles;
    for (bool r : reaches_backends) {
        roles.push_back(all ? port_role::both : r ? port_role::backend : port_role::client);
    }
    return roles;
}

namespace {

// The RSS types that hash only the client's address and port on a port of this role.
uint64_t client_only_rss(port_role role) {
    const uint64_t tcp = RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV6_TCP;
    if (role == port_role::client) {
        return tcp | RTE_ETH_RSS_L3_SRC_ONLY | RTE_ETH_RSS_L4_SRC_ONLY;
    }
    if (role == port_role::backend) {
        return tcp | RTE_ETH_RSS_L3_DST_ONLY | RTE_ETH_RSS_L4_DST_ONLY;
    }
    return 0;
}

// Gives the port the steering RETA; false when its table cannot express it (a size
// the worker count does not divide, or a driver that refuses).
bool set_reta(uint16_t port_id, const rte_eth_dev_info& info, const flow_steering& steering) {
    uint16_t size = info.reta_size;
    if (size == 0 || size > flow_steering::reta_size || (size & (size - 1)) != 0 ||
        size % steering.workers() != 0) {
        return false;
    }
    std::vector<rte_eth_rss_reta_entry64> reta(size / RTE_ETH_RETA_GROUP_SIZE + 1);
    for (uint16_t i = 0; i < size; ++i) {
        auto& group = reta[i / RTE_ETH_RETA_GROUP_SIZE];
        group.mask |= uint64_t(1) << (i % RTE_ETH_RETA_GROUP_SIZE);
        group.reta[i % RTE_ETH_RETA_GROUP_SIZE] = steering.reta()[i];
    }
    return rte_eth_dev_rss_reta_update(port_id, reta.data(), size) == 0;
}

bool start_one(const config::interface_config& ic, uint16_t index, const port_options& options,
               rte_mempool* pool, interface_info& out, std::string* error) {
    out.role = index < options.roles.size() ? options.roles[index] : port_role::both;
    out.mtu = RTE_ETHER_MTU;
    uint16_t port_id;
    if (rte_eth_dev_get_port_by_name(ic.device.c_str(), &port_id) != 0) {
        *error = fmt::format("interface {}: no DPDK port named {} (for a virtual device add "
                             "--vdev={},... to [eal] args; for a NIC bind it with "
                             "dpdk-devbind.py and use its PCI address)",
                             ic.name, ic.device, ic.device);
        return false;
    }
    rte_eth_dev_info info;
    if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0) {
        *error = fmt::format("interface {}: cannot query port {}: {}", ic.name, ic.device,
                             rte_strerror(-rc));
        return false;
    }
    if (info.max_rx_queues < options.queues || info.max_tx_queues < options.queues) {
        *error =
            fmt::format("interface {}: port {} has {} RX / {} TX queues, {} workers need "
                        "one each",
                        ic.name, ic.device, info.max_rx_queues, info.max_tx_queues, options.queues);
        return false;
    }
    // Several queues: steer by the client in the NIC where it can (the RSS types that
    // hash only the client's fields, our key), else spread flows as it can and let the
    // workers hand packets to their owners.
    rte_eth_conf conf{};
    std::array<uint8_t, 64> key{};
    out.steering = steering_mode::single;
    if (options.queues > 1) {
        out.steering = steering_mode::handoff;
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        uint64_t want = client_only_rss(out.role);
        size_t key_len = info.hash_key_size != 0 ? info.hash_key_size : 40;
        if (want != 0 && (info.flow_type_rss_offloads & want) == want && key_len <= key.size() &&
            options.steering != nullptr) {
            for (size_t i = 0; i < key_len; ++i) {
                key[i] = flow_steering::key[i % flow_steering::key_size];
            }
            conf.rx_adv_conf.rss_conf.rss_key = key.data();
            conf.rx_adv_conf.rss_conf.rss_key_len = uint8_t(key_len);
            conf.rx_adv_conf.rss_conf.rss_hf = want;
            if (rte_eth_dev_configure(port_id, options.queues, options.queues, &conf) == 0) {
                out.steering = steering_mode::nic_rss;
            }
        }
        if (out.steering == steering_mode::handoff) {
            conf.rx_adv_conf.rss_conf = {};
            conf.rx_adv_conf.rss_conf.rss_hf =
                (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP) & info.flow_type_rss_offloads;
            if (conf.rx_adv_conf.rss_conf.rss_hf == 0) {
                conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE; // virtual devices: no RSS at all
            }
        }
    }
    int configured = out.steering == steering_mode::nic_rss
                         ? 0
                         : rte_eth_dev_configure(port_id, options.queues, options.queues, &conf);
    if (int rc = configured; rc != 0) {
        *error = fmt::format("interface {}: cannot configure port {}: {}", ic.name, ic.device,
                             rte_strerror(-rc));
        return false;
    }
    uint16_t rx_desc = options.rx_descriptors, tx_desc = options.tx_descriptors;
    rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rx_desc, &tx_desc);
    int socket = rte_eth_dev_socket_id(port_id);
    for (uint16_t q = 0; q < options.queues; ++q) {
        if (int rc = rte_eth_rx_queue_setup(port_id, q, rx_desc, socket, nullptr, pool); rc != 0) {
            *error = fmt::format("interface {}: RX queue {} on {}: {}", ic.name, q, ic.device,
                                 rte_strerror(-rc));
            return false;
        }
        if (int rc = rte_eth_tx_queue_setup(port_id, q, tx_desc, socket, nullptr); rc != 0) {
            *error = fmt::format("interface {}: TX queue {} on {}: {}", ic.name, q, ic.device,
                                 rte_strerror(-rc));
            return false;
        }
    }
    if (int rc = rte_eth_dev_start(port_id); rc != 0) {
        *error = fmt::format("interface {}: cannot start port {}: {}", ic.name, ic.device,
                             rte_strerror(-rc));
        return false;
    }
    if (out.steering == steering_mode::nic_rss && !set_reta(port_id, info, *options.steering)) {
        out.steering = steering_mode::handoff; // the NIC's spread cannot be ours: hand off
    }
    // Not all virtual devices support it; VIPs are answered with the port's own MAC,
    // so promiscuous mode is a convenience, not a requirement.
    rte_eth_promiscuous_enable(port_id);

    out.index = index;
    out.port_id = port_id;
    out.name = ic.name;
    out.device = ic.device;
    rte_eth_macaddr_get(port_id, &out.mac);
    if (uint16_t mtu = 0; rte_eth_dev_get_mtu(port_id, &mtu) == 0 && mtu >= RTE_ETHER_MIN_MTU) {
        out.mtu = mtu;
    }
    out.set_address(ic.address);
    out.gateway = ic.gateway;
    out.vlan = ic.vlan;
    out.kernel_interface = ic.kernel_interface;
    if (ic.vrrp && index >= dataplane_shared::max_gateway_interfaces) {
        *error = fmt::format("interface {}: a vrrp gateway is run on the first {} interfaces "
                             "only; move it up the list",
                             ic.name, dataplane_shared::max_gateway_interfaces);
        return false;
    }
    if (ic.vrrp) {
        out.vrrp_id = ic.vrrp->id;
        out.vrrp_address = ic.vrrp->address;
        const net::mac_addr vmac = net::vrrp_virtual_mac(ic.vrrp->id);
        std::memcpy(out.vrrp_mac.addr_bytes, vmac.data(), 6);
        // A NIC filters unicast by MAC: the virtual one is added beside the port's own
        // (virtual devices without a filter refuse, and need none; promiscuous mode
        // above covers the rest).
        (void)rte_eth_dev_mac_addr_add(port_id, &out.vrrp_mac, 0);
    }
    return true;
}

} // namespace

bool start_ports(const std::vector<config::interface_config>& interfaces,
                 const port_options& options, rte_mempool* pool, std::vector<interface_info>& out,
                 std::string* error) {
    out.clear();
    for (size_t i = 0; i < interfaces.size(); ++i) {
        interface_info info;
        if (!start_one(interfaces[i], uint16_t(i), options, pool, info, error)) {
            stop_ports(out);
            out.clear();
            return false;
        }
        out.push_back(info);
    }
    return true;
}

void stop_ports(const std::vector<interface_info>& interfaces) {
    for (const interface_info& i : interfaces) {
        rte_eth_dev_stop(i.port_id);
        rte_eth_dev_close(i.port_id);
    }
}

} // namespace evenflow::dataplane
