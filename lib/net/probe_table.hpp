// Health probes in flight, shared by the control thread (which opens and closes
// them) and every worker (which matches replies against them). A worker tells a
// probe's answer from a forgery before the packet costs any slow-path budget: only a
// segment from the probed endpoint, to the probe's own port, acknowledging the
// probe's random initial sequence number is handed over. A flood of forged RSTs or
// SYN-ACKs is then dropped in the worker and can no longer crowd out real answers.
//
// Layout: per probe port, a few slots; each slot's expected acknowledgment number
// sits with the port's other slots in one cache line, so a forged segment (which
// cannot know the number) costs one line read. The acknowledgment also serves as the
// slot's sequence lock: 0 means free or being written, and a reader accepts a match
// only if the number is unchanged after it read the slot's endpoint.
//
// Capacity: 4,000 ports x 8 slots = 32,000 probes in flight (1 MiB). A full table
// defers further probes (counted by the health checker as deferred).
#pragma once

#include "net/addr.hpp"
#include "net/reply.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace evenflow::net {

class probe_table {
public:
    static constexpr size_t slots_per_port = 8;
    static constexpr size_t capacity = size_t(probe_ports) * slots_per_port;

    // Where a probe is registered: its source port (host order) and slot there.
    struct ticket {
        uint16_t port;
        uint8_t slot;
        bool operator==(const ticket&) const = default;
    };

    probe_table();

    // ---- control thread ----

    // Registers a probe to (backend, backend_port) answered by acknowledgment
    // `expected_ack` (its initial sequence number + 1, never 0), on a port with a free
    // slot (ports taken in turn, so consecutive probes leave from different ports).
    // nullopt when every slot is taken.
    std::optional<ticket> open(const ip_addr& backend, uint16_t backend_port,
                               uint32_t expected_ack);
    // The probe ended (answered, timed out, or its target was removed).
    void close(ticket t);
    // A worker matched a reply to this probe but could not hand it over (its budget
    // or the ring was full): the probe's timeout proves nothing.
    bool reply_lost(ticket t) const;
    size_t in_flight() const { return m_in_flight; }

    // ---- workers ----

    // The slot of the open probe that a TCP segment from (src, src_port) to our port
    // `dst_port` (both host order), acknowledging `ack`, answers; -1 when none does.
    int match(const ip_addr& src, uint16_t src_port, uint16_t dst_port, uint32_t ack) const;
    // The reply matched at `slot` was dropped before it reached the control thread.
    void mark_lost(uint16_t dst_port, int slot, uint32_t ack);

private:
    struct alignas(64) port_slots {
        std::atomic<uint32_t> ack[slots_per_port];  // expected acknowledgment; 0: free
        std::atomic<uint32_t> lost[slots_per_port]; // ack of a matched reply we dropped
        std::atomic<uint32_t> address[slots_per_port][4];
        std::atomic<uint32_t> port[slots_per_port]; // the backend's port, host order
    };
    static_assert(std::atomic<uint32_t>::is_always_lock_free);

    std::unique_ptr<port_slots[]> m_ports;
    // Control thread only.
    std::unique_ptr<uint8_t[]> m_used; // slots taken, per port
    uint16_t m_cursor = 0;             // the next port to try, as an offset
    size_t m_in_flight = 0;
};

} // namespace evenflow::net
