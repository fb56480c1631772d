// A poll-mode worker: owns one RX/TX queue on every port, its flow table and its
// counters; forwards client<->backend traffic with DNAT, answers what it can
// answer on its own, and hands the rest to the control thread.
#pragma once

#include "config/choices.hpp"

#include "dataplane/counters.hpp"
#include "dataplane/interfaces.hpp"
#include "dataplane/neighbor.hpp"
#include "dataplane/rcu.hpp"
#include "dataplane/steering.hpp"
#include "flow/client_sketch.hpp"
#include "flow/flow_table.hpp"
#include "net/parse.hpp"
#include "net/probe_table.hpp"
#include "snapshot/snapshot.hpp"

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace evenflow::dataplane {

inline constexpr uint16_t burst_size = 32;

// Why a packet is handed to the control thread; each reason has its own ring and
// its own budget per worker, so a flood of one kind (an ARP storm, packets to
// unresolved next hops) cannot starve another (health-probe replies). mbuf->port
// holds the interface index it arrived on (or must leave by).
enum class control_reason : uint8_t {
    arp,        // ARP replies and requests not for us: learning (requests for us are
                // answered by the worker itself)
    unresolved, // a forwarded packet whose next hop has no MAC yet: hold, resolve
    probe,      // a SYN-ACK or RST to a probe port of ours: a health-probe reply
    host,       // to an interface's address with a kernel side, not answered by the worker:
                // for the kernel (kernel_interfaces.hpp)
    peer,       // the same from a routing peer ([bgp] peers: BGP, BFD), in a lane of its own
                // so that a flood at the host's address cannot starve the session
    vrrp,       // a VRRP advert on an interface with a vrrp gateway: the election
    count_
};
constexpr auto choice_names(control_reason) { // config/choices.hpp
    return std::to_array<std::string_view>({"arp", "unresolved", "probe", "host", "peer", "vrrp"});
}
std::string_view to_string(control_reason r);

// Packets per second a worker may hand to the control thread, by reason, with a
// burst of a tenth of that. Above it they are dropped and counted (drop reason
// control_budget): the control thread's work stays bounded whatever arrives.
inline constexpr double control_budget_per_s[] = {2'000, 10'000, 50'000, 2'000, 10'000, 1'000};
static_assert(std::size(control_budget_per_s) == size_t(control_reason::count_));

// State every worker and the control thread share. Immutable after start-up except
// for the published objects and the stop flag.
struct dataplane_shared {
    std::vector<interface_info> interfaces; // ro after start
    flow_steering steering;                 // ro after start: who owns a connection
    // ro after start: the hand-off rings, [from * workers + to] (SP/SC); empty with one
    // worker or when every port steers by the client.
    std::vector<rte_ring*> handoff;
    published<snapshot> snap;            // dataplane: ro, ctlplane: rw
    published<neighbor_table> neighbors; // dataplane: ro, ctlplane: rw
    qsbr_domain* qsbr = nullptr;         // readers: the workers, by index
    // MP/SC: workers -> control thread, one ring per control_reason.
    std::array<rte_ring*, size_t(control_reason::count_)> to_control{};
    // The health probes in flight (ctlplane: opens and closes, dataplane: matches
    // replies, marks lost ones). nullptr: none are, every probe-port segment is forged.
    net::probe_table* probes = nullptr;
    // ro after start: [bgp] peers; their packets to a kernel side go in the `peer` lane.
    std::vector<net::ip_addr> routing_peers;
    // By interface index: whether this host holds its vrrp gateway (ctlplane: rw, the
    // election; dataplane: ro). `answer`: ARP for the address is answered with the
    // virtual MAC; `accept`: frames to that MAC are taken (kept a little after a
    // hand-over, for what was already on its way).
    struct gateway_flags {
        std::atomic<bool> answer{false};
        std::atomic<bool> accept{false};
    };
    static constexpr size_t max_gateway_interfaces = 32;
    std::array<gateway_flags, max_gateway_interfaces> gateway_holding{};
    std::atomic<bool> stop{false}; // ctlplane: rw, dataplane: ro
    // Test hook: worker N-1 spins without polling while this is N (0: none).
    std::atomic<uint32_t> wedge_worker{0}; // ctlplane: rw, dataplane: ro
    static_assert(std::atomic<bool>::is_always_lock_free);
};

// One worker's settings. Made from [dataplane] by from(), the one conversion from
// the config's units, so the defaults are the config's own.
struct worker_config {
    uint32_t index = 0; // reader id in the QSBR domain, queue id on every port
    size_t flow_capacity = 0;
    flow::flow_timeouts_ms timeouts{};
    uint32_t sweep_slots_per_poll = 2048; // flow-table slots examined per idle poll

    static worker_config from(const config::dataplane_config& dataplane, uint32_t index);
};

class worker {
public:
    // Allocates everything the loop needs: flow table, inject ring. nullptr and
    // *error set on failure.
    static std::unique_ptr<worker> create(const worker_config& cfg, dataplane_shared& shared,
                                          std::string* error);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    // The poll loop: runs until shared.stop. Registers with QSBR on entry, goes
    // offline on exit. Returns 0 (signature fits rte_eal_remote_launch).
    int run();
    static int launch(void* self) { return static_cast<worker*>(self)->run(); }

    // One iteration: inject ring, then one RX burst per interface, then TX flush.
    // Used by run() and by in-process tests that drive the worker step by step
    // (the caller must be online in the QSBR domain as reader `index`).
    void poll_once(uint64_t now_ms);

    // Control thread -> worker: packets to transmit on mbuf->port (interface index).
    // SP/SC: the control thread is the only producer.
    rte_ring* inject_ring() const { return m_inject; }

    const worker_stats& stats() const { return m_stats; }
    uint32_t index() const { return m_cfg.index; }
    const flow::flow_table& flows() const { return *m_flows; }
    // Who opens connections here (the control thread seals and reads them).
    flow::client_sketches& clients() { return *m_clients; }

    static uint64_t now_ms();

private:
    worker(const worker_config& cfg, dataplane_shared& shared);

    // process_burst's interface argument for packets from the hand-off rings.
    static constexpr uint16_t handed_off = UINT16_MAX;

    struct rx_item {
        rte_mbuf* mbuf;
        uint16_t iface;              // the interface it arrived on
        const snapshot_service* svc; // the service of its VIP:port, for TCP to a VIP
        net::packet_meta meta;
        net::drop_reason parsed;
        uint32_t hash;
        uint32_t reverse_hash; // a SYN to a service: its backend-side key's; else 0
        uint32_t pick;         // with reverse_hash: the Maglev pick it was made for
    };

    void process_burst(uint16_t rx_iface, rte_mbuf** pkts, uint16_t count, uint32_t now);
    // Passes a packet to the worker that owns its connection; false when it is ours.
    bool hand_off(rx_item& item);
    void prefetch_new_flow(rx_item& item, const snapshot& snap) const;
    void handle(uint16_t iface, rx_item& item, const snapshot& snap, const neighbor_table* neigh,
                uint32_t now);
    // The forward path: a TCP segment to a service's VIP:port (client -> backend).
    void handle_client_to_vip(uint16_t iface, rx_item& item, const snapshot_service& svc,
                              const snapshot& snap, const neighbor_table* neigh, uint32_t now);
    // The return path: any other TCP segment (backend -> client replies, and TCP to
    // our own addresses, which goes to the control thread).
    void handle_backend_to_client(uint16_t iface, rx_item& item, const snapshot& snap,
                                  const neighbor_table* neigh, uint32_t now);
    void forward(rte_mbuf* m, net::packet_meta& meta, const neighbor_table* neigh);
    // The next hop's MAC (or the slow path while it resolves), the port's tag, out.
    void send_via(const egress& out, rte_mbuf* m, const neighbor_table* neigh);
    void to_backend(rte_mbuf* m, net::packet_meta& meta, uint32_t backend_id,
                    const net::ip_addr& addr, uint16_t port_be, const neighbor_table* neigh);
    // A flow entry made: a SYN (counted as `syns`) or a mid-flow packet (stateless).
    void count_new_flow(bool opening, uint32_t backend_id, const net::ip_addr& client);
    // A connection whose handshake was verified: `new_flows`, what skew judges.
    void count_verified(uint32_t backend_id, const net::ip_addr& client);
    // Tunnel mode: the client's packet inside IPIP to the backend (or, too big for
    // the backend side's MTU, an ICMP "fragmentation needed" back on `iface`).
    void tunnel_to_backend(uint16_t iface, rte_mbuf* m, net::packet_meta& meta, uint32_t backend_id,
                           const net::ip_addr& backend, const neighbor_table* neigh);
    // Moves the entry of the flow's other direction to `state` (unless it is closing).
    void follow_state(const net::flow_key& other_side, flow::flow_state state, uint32_t now);
    // Removes a flow's client-side entry and its backend-side partner.
    void forget_flow(flow::flow_entry* forward_entry, const net::flow_key& client_key,
                     uint32_t now);
    void send_reset(uint16_t iface, rte_mbuf* m, const net::packet_meta& meta);
    // L2 and L3 checks every packet passes first: for our MAC (or broadcast,
    // multicast), the interface's VLAN tag or none, an IPv4 header checksum that holds.
    bool admitted(uint16_t iface, rx_item& item);
    bool to_held_gateway(uint16_t iface, rte_mbuf* m);
    void handle_unparsed(uint16_t iface, rx_item& item);
    void handle_arp(uint16_t iface, rx_item& item, const snapshot& snap);
    void handle_icmp(uint16_t iface, rx_item& item, const snapshot& snap,
                     const neighbor_table* neigh, uint32_t now);
    // TCP to one of our interface addresses: replies to the probes in flight go to
    // the control thread, anything else is dropped.
    void handle_local_tcp(uint16_t iface, rte_mbuf* m, const net::packet_meta& meta);
    // False when it was dropped (budget or ring full), counted.
    bool to_control(uint16_t iface, rte_mbuf* m, control_reason reason);
    // A packet to one of our addresses that the worker does not answer itself: to the
    // kernel side of the interface (lanes `peer` and `host`) when it arrived for that
    // interface's address and the interface has one; dropped as `otherwise` if not.
    void to_host(uint16_t iface, rte_mbuf* m, const net::packet_meta& meta,
                 net::drop_reason otherwise);
    bool for_kernel(uint16_t iface, const net::packet_meta& meta) const;
    // Adds or removes the 802.1Q tag the egress interface wants; false when the
    // buffer has no room for it.
    bool set_vlan(uint16_t iface, rte_mbuf* m);
    void transmit(uint16_t iface, rte_mbuf* m);
    void drop(rte_mbuf* m, net::drop_reason reason);
    void flush();
    void sweep(uint32_t now);

    worker_config m_cfg;
    dataplane_shared& m_shared;
    std::unique_ptr<flow::flow_table> m_flows;
    rte_ring* m_inject = nullptr;
    std::vector<rte_ring*> m_handoff_in;  // from each other worker (SP/SC)
    std::vector<rte_ring*> m_handoff_out; // to each worker, by index (ours unused)
    std::vector<uint8_t> m_check_owner;   // per interface: packets may be another's
    worker_stats m_stats;
    std::unique_ptr<flow::client_sketches> m_clients;

    struct tx_queue {
        uint16_t port_id = 0;
        uint16_t count = 0;
        rte_mbuf* pkts[burst_size * 2];
    };
    std::vector<tx_queue> m_tx; // per interface

    // Next-hop MACs found during the current burst. A burst's packets share a few
    // next hops (the gateway, a handful of backends), and the neighbor table is only
    // valid until the burst ends, so the memo is cleared at every burst.
    struct next_hop_memo {
        net::ip_addr ip;
        const rte_ether_addr* mac = nullptr;
        uint16_t iface = UINT16_MAX; // UINT16_MAX: empty
    };
    std::array<next_hop_memo, 8> m_next_hops;
    const rte_ether_addr* next_hop_mac(const neighbor_table* neigh, uint16_t iface,
                                       const net::ip_addr& ip);
    size_t m_sweep_cursor = 0;
    std::vector<uint64_t> m_sweep_active; // per backend id, for the sweep in progress
    uint64_t m_sweep_entries = 0;         // client-side entries, verified or not, likewise

    // Token buckets of the control budgets, in packets, refilled from the TSC.
    struct budget {
        double tokens = 0;
        uint64_t last_tsc = 0;
    };
    std::array<budget, size_t(control_reason::count_)> m_budgets{};
    bool within_budget(control_reason reason);
};

} // namespace evenflow::dataplane
