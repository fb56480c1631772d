// Flow ownership across workers: every packet of a connection, in both directions,
// is handled by the one worker that holds the connection's flow entries.
//
// The owner is a function of the client's address and port only, which a DNAT
// leaves unchanged in both directions: a Toeplitz hash over them (the RSS function
// of NICs) and an indirection table (RETA) of worker indexes. A NIC that can hash
// source fields only on the client-facing port and destination fields only on the
// backend-facing port, with this key and RETA, delivers every packet to its owner
// ("nic-rss"); elsewhere (virtual devices, NICs without those RSS types, one port
// carrying both sides) the receiving worker computes the owner in software and
// passes the packet over a per-pair ring ("handoff"). One worker needs neither.
#pragma once

#include "config/choices.hpp"

#include "net/addr.hpp"

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace evenflow::dataplane {

enum class steering_mode : uint8_t {
    single,  // one worker: every packet is its own
    nic_rss, // the port's RSS sends each packet to its owner's queue
    handoff, // the receiving worker passes packets to their owner
};
constexpr auto choice_names(steering_mode) { // config/choices.hpp
    return std::to_array<std::string_view>({"single", "nic-rss", "handoff"});
}
std::string_view to_string(steering_mode m); // "single", "nic-rss", "handoff"

// Which side of the balancer a port faces, which sets the fields its RSS must hash.
enum class port_role : uint8_t {
    client,  // VIP traffic arrives here: hash the source (the client)
    backend, // backends' replies arrive here: hash the destination (the client)
    both,    // one port for both sides: no RSS type fits both directions
};

class flow_steering {
public:
    // The RSS key, 0x6d5a repeated: with a 16-bit periodic key the Toeplitz hash of
    // the client's address and port does not depend on where a NIC places the fields
    // it leaves out, so software and every NIC agree (see DESIGN notes in README).
    static constexpr size_t key_size = 40;
    static const std::array<uint8_t, key_size> key;
    static constexpr uint16_t reta_size = 512;

    explicit flow_steering(uint16_t workers = 1);

    uint16_t workers() const { return m_workers; }
    // The Toeplitz hash of (address, port); port in network byte order.
    static uint32_t hash(const net::ip_addr& client, uint16_t client_port_be);
    // The worker that owns connections of this client address and port.
    uint16_t owner(const net::ip_addr& client, uint16_t client_port_be) const {
        return owner_of_hash(hash(client, client_port_be));
    }
    uint16_t owner_of_hash(uint32_t h) const { return m_reta[h & (reta_size - 1)]; }
    // The table as a NIC is given it: entry i is the queue of hashes with low bits i.
    const std::array<uint16_t, reta_size>& reta() const { return m_reta; }

private:
    uint16_t m_workers;
    std::array<uint16_t, reta_size> m_reta{};
};

} // namespace evenflow::dataplane
