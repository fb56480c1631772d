// The exception path: the host's own traffic on a data port, to and from the kernel.
//
// A port DPDK owns is invisible to the kernel, so the host's own protocols (BGP and
// BFD to the routers, the ICMP errors and ARP replies they need) have no address to
// use there. For each [[interfaces]] entry with a `kernel_interface`, a TAP port
// (DPDK's TAP PMD: a kernel interface whose frames a DPDK port reads and writes)
// gets the data port's MAC, address and MTU on its kernel side, as VPP's linux-cp,
// DPVS's KNI and grout's control-plane interfaces do. The workers hand over what
// arrives for that address and they do not answer themselves (worker.hpp, reasons
// `host` and `peer`, each with its budget); what the kernel sends leaves by the data
// port through worker 0. A TAP port rather than virtio-user: it needs no vhost
// module, and the kernel interface lives and dies with the daemon's file descriptor.
//
// Control thread only.
#pragma once

#include "dataplane/interfaces.hpp"

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace evenflow::dataplane {

class kernel_interfaces {
public:
    struct counters {
        uint64_t to_kernel = 0;         // frames written to the kernel side
        uint64_t from_kernel = 0;       // frames the kernel sent, handed to the data port
        uint64_t to_kernel_dropped = 0; // the TAP queue did not take it
    };
    struct entry {
        uint16_t iface = 0; // interface index
        uint16_t port_id = 0;
        std::string vdev;   // the TAP port's DPDK name
        std::string kernel; // the kernel interface's name
        counters stats;
    };

    kernel_interfaces() = default;
    kernel_interfaces(const kernel_interfaces&) = delete;
    kernel_interfaces& operator=(const kernel_interfaces&) = delete;
    ~kernel_interfaces() { stop(); }

    // One TAP port per interface with a kernel_interface, its kernel side given the
    // interface's MAC, address, MTU and up. false and *error when one cannot be made
    // (those made are removed again).
    bool start(std::span<const interface_info> interfaces, rte_mempool* pool, std::string* error);
    void stop();

    // A frame for the kernel side of interface m->port; its 802.1Q tag, if any, is
    // removed (the kernel side is untagged). Takes the buffer.
    void deliver(rte_mbuf* m);
    // Up to `max` frames the kernel sent, each with m->port set to its interface.
    unsigned receive(rte_mbuf** out, unsigned max);

    std::span<const entry> entries() const { return m_entries; }

private:
    std::vector<entry> m_entries;
    std::vector<int> m_by_iface; // interface index -> m_entries index, -1: none
};

} // namespace evenflow::dataplane
