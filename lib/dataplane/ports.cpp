#include "dataplane/ports.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <fmt/format.h>

namespace evenflow::dataplane {

rte_mempool* create_packet_pool(size_t interfaces, const port_options& options,
                                std::string* error) {
    // Every descriptor of every queue can hold a buffer, plus what the rings to and
    // from the control thread and the neighbor wait queues may hold.
    size_t per_port = size_t(options.queues) * (options.rx_descriptors + options.tx_descriptors);
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

namespace {

bool start_one(const config::interface_config& ic, uint16_t index, const port_options& options,
               rte_mempool* pool, interface_info& out, std::string* error) {
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
    rte_eth_conf conf{};
    if (options.queues > 1) {
        // Spread flows over the workers' queues; both directions of a flow need not
        // meet on one worker (replies fall back to the snapshot, see worker.cpp).
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf =
            (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP) & info.flow_type_rss_offloads;
    }
    if (int rc = rte_eth_dev_configure(port_id, options.queues, options.queues, &conf); rc != 0) {
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
    // Not all virtual devices support it; VIPs are answered with the port's own MAC,
    // so promiscuous mode is a convenience, not a requirement.
    rte_eth_promiscuous_enable(port_id);

    out.index = index;
    out.port_id = port_id;
    out.name = ic.name;
    out.device = ic.device;
    rte_eth_macaddr_get(port_id, &out.mac);
    out.set_address(ic.address);
    out.gateway = ic.gateway;
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
