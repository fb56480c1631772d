// evengen's engine, shared by its two halves: setup.cpp brings the ports up and
// learns the balancer's MACs over ARP; generator.cpp runs the send/receive loop and
// checks every packet. Private to app/evengen (generator.hpp is the interface).
#pragma once

#include "generator.hpp"
#include "pacing.hpp"
#include "queues.hpp"

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <csignal>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>

namespace evenflow::gen {

inline constexpr uint16_t burst = 32;
inline constexpr uint16_t descriptors = 1024;
inline constexpr size_t side_client = 0;
inline constexpr size_t side_backend = 1;

// Set by SIGINT/SIGTERM (setup.cpp installs the handler): every loop stops.
extern volatile std::sig_atomic_t g_interrupted;

struct port_state {
    uint16_t id = 0;
    mac_addr mac{};
    mac_addr peer{}; // the balancer's MAC on this link
    bool peer_known = false;
    uint16_t rx_queues = 1; // polled in turn; packets leave by queue 0
    rte_mbuf* tx[burst * 8];
    uint16_t tx_count = 0;
};

class generator {
public:
    explicit generator(const options& opts)
        : m_opts(opts), m_tracker(opts.pcap_path.empty() ? opts.flows : 0) {}

    bool set_up(std::string* error);
    bool resolve(std::string* error);
    void warm_up(run_result& result);
    void measure(run_result& result);
    uint64_t write_pcap();

private:
    // Sends what `next` produces until it has nothing more, the time is up or the
    // job is interrupted; receives and checks all along, then drains.
    template <class Next>
    void pump(Next&& next, double seconds, double rate);
    void receive(size_t side, uint64_t now);
    void receive_queue(size_t side, uint16_t queue, uint64_t now);
    void on_tcp(size_t side, const received_tcp& pkt, uint64_t now);
    void on_arp(size_t side, const arp_message& arp);
    void send_arp(size_t side, uint16_t op, const mac_addr& dst, uint32_t sender_ip,
                  uint32_t target_ip);
    // Builds one packet from the side's template (data or control size).
    // A flood packet (`flood`) is not part of the load: counted apart, dropped when
    // the ring is full.
    bool enqueue(size_t side, const tcp_fields& f, bool data, bool flood = false);
    bool is_flood_source(const endpoint& e) const {
        return m_opts.flood > 0 && (e.addr >> 16) == (m_opts.flood_base >> 16);
    }
    tcp_fields flood_syn();
    void flush(size_t side);
    bool add_port(const std::string& name, port_state& port, std::string* error);
    void rebuild_templates();
    tcp_fields forward_fields(uint64_t flow, uint32_t seq, uint8_t flags) const;
    tcp_fields reverse_fields(uint64_t flow, uint32_t seq, uint8_t flags) const;
    tcp_fields syn_fields(uint64_t flow) const; // a new flow's first packet
    endpoint backend_for(uint64_t flow) const;

    const options& m_opts;
    flow_tracker m_tracker;
    rte_mempool* m_pool = nullptr;
    port_state m_ports[2];
    size_t m_port_count = 2;
    std::unique_ptr<frame_template> m_templates[2][2]; // [side][data?]
    phase_result* m_phase = nullptr;
    uint64_t m_last_rx_tsc = 0;
    uint64_t m_first_tx_tsc = 0;
    double m_ns_per_cycle = 0;
    uint64_t m_flood_random = 0x9e3779b97f4a7c15ULL; // xorshift64 state
    std::unordered_set<uint32_t> m_answered;         // addresses whose ARP we answered
};

} // namespace evenflow::gen
