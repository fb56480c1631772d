// Binding [[interfaces]] to DPDK ports: one RX and one TX queue per worker.
#pragma once

#include "config/config.hpp"
#include "dataplane/interfaces.hpp"
#include "dataplane/steering.hpp"

#include <rte_mempool.h>

#include <cstdint>
#include <string>
#include <vector>

namespace evenflow::dataplane {

struct port_options {
    uint16_t queues = 1; // one per worker
    uint16_t rx_descriptors = 1024;
    uint16_t tx_descriptors = 1024;
    // With several queues: how flows are spread (the RETA the NIC is given) and which
    // side each interface faces (port_roles()); a port whose RSS can hash the client's
    // fields alone steers by them ("nic-rss"), the others hand off ("handoff").
    const flow_steering* steering = nullptr;
    std::vector<port_role> roles;
};

// Which side each [[interfaces]] entry faces: the one through which backends are
// reached is backend-facing, one through which none is reached client-facing; when
// every interface reaches backends (one port for both sides), both.
std::vector<port_role> port_roles(const config::config& cfg);

// Packet buffers for every port, queue and ring; sized from the config.
rte_mempool* create_packet_pool(size_t interfaces, const port_options& options, std::string* error);

// Configures and starts the port behind every interface (by DPDK device name: a
// vdev name or a PCI address). Fills `out` in [[interfaces]] order. On failure,
// ports already started are stopped again and *error says which device and why.
bool start_ports(const std::vector<config::interface_config>& interfaces,
                 const port_options& options, rte_mempool* pool, std::vector<interface_info>& out,
                 std::string* error);

void stop_ports(const std::vector<interface_info>& interfaces);

} // namespace evenflow::dataplane
