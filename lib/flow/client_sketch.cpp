#include "flow/client_sketch.hpp"

#include "net/flow_key.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace evenflow::flow {

std::string client_network_text(const net::ip_addr& network) {
    return fmt::format("{}/{}", network.to_string(), network.is_v4() ? 24 : 64);
}

client_sketch::client_sketch(uint32_t seed) : m_sets(new slot_set[sets]()), m_seed(seed) {}

void client_sketch::clear() {
    std::fill(m_sets.get(), m_sets.get() + sets, slot_set{});
    m_events = 0;
}

client_sketches::client_sketches(uint32_t seed) {
    for (auto& b : m_buffers) {
        b.reset(new buffer{{client_sketch(seed), client_sketch(seed ^ 0x5bd1e995u)}});
    }
}

void client_sketches::request_seal() {
    if (m_taken == m_requested_ctl && m_acked.load(std::memory_order_acquire) == m_requested_ctl) {
        ++m_requested_ctl;
        m_requested.store(m_requested_ctl, std::memory_order_release);
    }
}

void client_sketches::release_sealed() {
    for (client_sketch& s : *m_buffers[(m_requested_ctl - 1) & 1]) {
        s.clear();
    }
    m_taken = m_requested_ctl;
}

} // namespace evenflow::flow
