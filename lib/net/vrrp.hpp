// VRRPv3 for IPv4 (RFC 5798): the adverts on the wire and the election that decides
// which host holds a moving gateway address. Pure: the slow path feeds it adverts and
// time, and sends what it asks for. Written here rather than run as keepalived because
// the workers own the port: the holder must answer ARP and take frames for the virtual
// MAC in the data path, and the decision must follow this host's own liveness.
#pragma once

#include "net/addr.hpp"
#include "net/parse.hpp"
#include "net/reply.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

namespace evenflow::net {

inline constexpr uint8_t ipproto_vrrp = 112;
inline constexpr size_t vrrp_frame_length = 60; // Ethernet + IPv4 + VRRP, one address, padded

// 00:00:5e:00:01:<id> (RFC 5798 §7.3).
mac_addr vrrp_virtual_mac(uint8_t id);
inline bool is_vrrp_virtual_mac(const uint8_t* mac) {
    return mac[0] == 0x00 && mac[1] == 0x00 && mac[2] == 0x5e && mac[3] == 0x00 && mac[4] == 0x01;
}

struct vrrp_advert {
    ip_addr sender;           // the IPv4 source: the sending host's interface address
    uint8_t id = 0;           // virtual router id
    uint8_t priority = 0;     // 0: the sender is leaving
    uint16_t interval_cs = 0; // its advert interval, centiseconds
    ip_addr address;          // the first (here: only) address it holds
};

// An advert from `sender` (Ethernet source: the virtual MAC; to 224.0.0.18, TTL 255),
// checksums computed. Returns vrrp_frame_length, or 0 when `out` is too small.
size_t build_vrrp_advert(std::span<uint8_t> out, const vrrp_advert& advert);

// Reads a parsed IPv4 frame (l4_proto 112) as an advert. False for anything RFC 5798
// says to discard: TTL not 255, version not 3, type not advertisement, no address,
// truncated, or a checksum that does not verify.
bool read_vrrp_advert(std::span<const uint8_t> frame, const packet_meta& meta, vrrp_advert& out);

// One virtual router's election (RFC 5798 §6.4, with preemption): the priority the
// host runs with may drop to "out of service", in which case it hands the address
// over at once (an advert of priority 0, as a router shutting down does) and takes it
// back only if no other host has taken it when its own timer runs out.
class vrrp_election {
public:
    using clock = std::chrono::steady_clock;
    enum class role : uint8_t { backup, master };

    struct actions {
        bool send_advert = false; // with advert_priority, now
        uint8_t advert_priority = 0;
        bool became_master = false; // take the address: gratuitous ARP, accept its MAC
        bool became_backup = false; // let it go
    };

    vrrp_election(uint8_t priority, std::chrono::milliseconds interval, ip_addr own_address);

    actions start(clock::time_point now);
    actions receive(const vrrp_advert& advert, clock::time_point now);
    actions tick(clock::time_point now);
    // In service: the configured priority. Out (drained, stopping, not live): priority
    // 1, and a master hands over with a priority-0 advert.
    actions set_in_service(bool in_service, clock::time_point now);
    // The host is going: a holder sends a priority-0 advert; the election stops.
    actions leave(clock::time_point now);

    role current() const { return m_role; }
    bool in_service() const { return m_in_service; }
    uint8_t priority() const { return m_in_service ? m_priority : 1; }
    // The latest advert heard from another host (sender 0.0.0.0 when none).
    const vrrp_advert& last_peer() const { return m_last_peer; }
    clock::time_point last_peer_at() const { return m_last_peer_at; }
    uint64_t transitions() const { return m_transitions; }

private:
    actions become_master(clock::time_point now);
    actions become_backup(std::chrono::microseconds peer_interval, clock::time_point now);
    std::chrono::microseconds master_down_interval(std::chrono::microseconds peer_interval) const;

    uint8_t m_priority;
    std::chrono::microseconds m_interval;
    ip_addr m_own;
    bool m_in_service = true;
    role m_role = role::backup;
    bool m_started = false;
    clock::time_point m_next_advert{};    // master
    clock::time_point m_master_down_at{}; // backup
    std::chrono::microseconds m_peer_interval;
    vrrp_advert m_last_peer;
    clock::time_point m_last_peer_at{};
    uint64_t m_transitions = 0;
};

} // namespace evenflow::net
