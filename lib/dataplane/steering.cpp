#include "dataplane/steering.hpp"

#include <rte_thash.h>

#include <arpa/inet.h>

namespace evenflow::dataplane {

const std::array<uint8_t, flow_steering::key_size> flow_steering::key = [] {
    std::array<uint8_t, key_size> k{};
    for (size_t i = 0; i < k.size(); i += 2) {
        k[i] = 0x6d;
        k[i + 1] = 0x5a;
    }
    return k;
}();

std::string_view to_string(steering_mode m) {
    return name_of(m);
}

flow_steering::flow_steering(uint16_t workers) : m_workers(workers == 0 ? 1 : workers) {
    for (size_t i = 0; i < m_reta.size(); ++i) {
        m_reta[i] = uint16_t(i % m_workers);
    }
}

uint32_t flow_steering::hash(const net::ip_addr& client, uint16_t client_port_be) {
    // The input a NIC hashes for "source (or destination) address and port only": the
    // address, then the port, as consecutive big-endian words (rte_softrss takes them
    // in host order).
    uint32_t words[5];
    uint32_t n = 0;
    const uint8_t* b = client.bytes.data();
    if (client.is_v4()) {
        words[n++] = ntohl(client.v4_be());
    } else {
        for (int i = 0; i < 4; ++i, b += 4) {
            words[n++] = uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
        }
    }
    words[n++] = uint32_t(ntohs(client_port_be)) << 16;
    return rte_softrss(words, n, key.data());
}

} // namespace evenflow::dataplane
