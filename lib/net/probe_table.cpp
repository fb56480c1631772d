#include "net/probe_table.hpp"

#include <cstring>

namespace evenflow::net {

namespace {

void address_words(const ip_addr& a, uint32_t (&out)[4]) {
    std::memcpy(out, a.bytes.data(), sizeof out);
}

} // namespace

probe_table::probe_table()
    : m_ports(std::make_unique<port_slots[]>(probe_ports)),
      m_used(std::make_unique<uint8_t[]>(probe_ports)) {
    for (size_t p = 0; p < probe_ports; ++p) {
        for (size_t s = 0; s < slots_per_port; ++s) {
            m_ports[p].ack[s].store(0, std::memory_order_relaxed);
            m_ports[p].lost[s].store(0, std::memory_order_relaxed);
            for (auto& w : m_ports[p].address[s]) {
                w.store(0, std::memory_order_relaxed);
            }
            m_ports[p].port[s].store(0, std::memory_order_relaxed);
        }
    }
}

std::optional<probe_table::ticket> probe_table::open(const ip_addr& backend, uint16_t backend_port,
                                                     uint32_t expected_ack) {
    if (expected_ack == 0 || m_in_flight == capacity) {
        return std::nullopt;
    }
    while (m_used[m_cursor] == slots_per_port) {
        m_cursor = uint16_t((m_cursor + 1) % probe_ports);
    }
    const uint16_t offset = m_cursor;
    m_cursor = uint16_t((m_cursor + 1) % probe_ports);
    port_slots& p = m_ports[offset];
    size_t s = 0;
    while (p.ack[s].load(std::memory_order_relaxed) != 0) {
        ++s;
    }
    // Sequence-lock write: the slot reads 0 (free) while its endpoint changes, and the
    // release fence orders that before the new endpoint for any reader.
    std::atomic_thread_fence(std::memory_order_release);
    uint32_t words[4];
    address_words(backend, words);
    for (size_t i = 0; i < 4; ++i) {
        p.address[s][i].store(words[i], std::memory_order_relaxed);
    }
    p.port[s].store(backend_port, std::memory_order_relaxed);
    p.lost[s].store(0, std::memory_order_relaxed);
    p.ack[s].store(expected_ack, std::memory_order_release);
    ++m_used[offset];
    ++m_in_flight;
    return ticket{uint16_t(first_probe_port + offset), uint8_t(s)};
}

void probe_table::close(ticket t) {
    const size_t offset = t.port - first_probe_port;
    if (!is_probe_port(t.port) || t.slot >= slots_per_port ||
        m_ports[offset].ack[t.slot].load(std::memory_order_relaxed) == 0) {
        return;
    }
    m_ports[offset].ack[t.slot].store(0, std::memory_order_relaxed);
    --m_used[offset];
    --m_in_flight;
}

bool probe_table::reply_lost(ticket t) const {
    const size_t offset = t.port - first_probe_port;
    if (!is_probe_port(t.port) || t.slot >= slots_per_port) {
        return false;
    }
    const port_slots& p = m_ports[offset];
    const uint32_t ack = p.ack[t.slot].load(std::memory_order_relaxed);
    return ack != 0 && p.lost[t.slot].load(std::memory_order_relaxed) == ack;
}

int probe_table::match(const ip_addr& src, uint16_t src_port, uint16_t dst_port,
                       uint32_t ack) const {
    if (ack == 0 || !is_probe_port(dst_port)) {
        return -1;
    }
    const port_slots& p = m_ports[dst_port - first_probe_port];
    for (size_t s = 0; s < slots_per_port; ++s) {
        if (p.ack[s].load(std::memory_order_acquire) != ack) {
            continue;
        }
        uint32_t words[4];
        address_words(src, words);
        bool same = p.port[s].load(std::memory_order_relaxed) == src_port;
        for (size_t i = 0; i < 4; ++i) {
            same &= p.address[s][i].load(std::memory_order_relaxed) == words[i];
        }
        // Sequence-lock read: the endpoint read above belongs to this probe only if
        // the slot still expects the same number afterwards.
        std::atomic_thread_fence(std::memory_order_acquire);
        if (same && p.ack[s].load(std::memory_order_relaxed) == ack) {
            return int(s);
        }
    }
    return -1;
}

void probe_table::mark_lost(uint16_t dst_port, int slot, uint32_t ack) {
    if (!is_probe_port(dst_port) || slot < 0 || size_t(slot) >= slots_per_port) {
        return;
    }
    m_ports[dst_port - first_probe_port].lost[slot].store(ack, std::memory_order_relaxed);
}

} // namespace evenflow::net
