// The DPDK side of evengen: two ports (the balancer's client side and backend side),
// a single-core loop that sends, receives, answers ARP and checks every packet.
#pragma once

#include "verify.hpp"
#include "workload.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace evenflow::gen {

enum class traffic { established, syn, lifecycle };

struct options {
    traffic mode = traffic::established;
    std::string client_port = "net_memif0";  // faces the balancer's client side
    std::string backend_port = "net_memif1"; // where the backends live
    uint16_t queues = 1;                     // queue pairs per port (the device's workers)
    addressing addr;
    uint32_t gateway = 0x0a0a0001;    // 10.10.0.1: the router the balancer sends clients to
    uint32_t lb_client = 0x0a0a0002;  // 10.10.0.2: the balancer's client-side address
    uint32_t lb_backend = 0x0a140001; // 10.20.0.1: the balancer's backend-side address
    bool reflect = false;             // the device under test swaps 5-tuples (testpmd 5tswap)
    uint64_t flows = 1000;
    size_t packet_size = 64;
    double rate = 0;        // packets/s offered; 0 = as fast as the device returns them
    double duration_s = 5;  // measured phase
    unsigned window = 1024; // flat out: packets in flight at most (below the rings' size)
    bool reverse = true;    // established: backends send as much as clients
    unsigned lifecycle_data = 4;
    // Lifecycle: SYNs from random sources in flood_base's /16 at this rate (packets/s)
    // beside the connections; backends answer them with a SYN-ACK when flood_answer.
    // Counted apart from the load (never loss), so the connections' completion is
    // what a flood costs the legitimate clients.
    double flood = 0;
    uint32_t flood_base = 0xac1f0000; // 172.31.0.0
    bool flood_answer = false;
    // After the warm-up, print "ready" on stdout and wait for a line on stdin before
    // the measured phase; after it, "done" and wait again before stopping the ports: a
    // harness reads the device's counters at both boundaries.
    bool sync = false;
    std::string pcap_path;     // write the client side's workload here instead of sending
    uint64_t pcap_packets = 0; // 0: one round over the flows
    mac_addr pcap_dst_mac{0x02, 0, 0, 0, 0, 0x01};
};

struct phase_result {
    counters count;
    latency_histogram latency;
    double seconds = 0; // first send to last receive
};

struct run_result {
    phase_result warmup;
    phase_result measured;
    uint64_t warmup_passes = 0;
    uint64_t flows_never_landed = 0;
    uint64_t pcap_written = 0;
};

// Runs the whole job after rte_eal_init: ports up, ARP, warm-up, measured phase
// (or writes the pcap). nullopt and *error on a set-up failure.
std::optional<run_result> run(const options& opts, std::string* error);

} // namespace evenflow::gen
