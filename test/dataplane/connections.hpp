// Client connections through a ring_rig's balancer, as real TCP would make them: the
// SYN, the backend's SYN-ACK, the client's ACK (so that they count as verified), for
// the service of basic_config_text (10.10.0.100:80, backends 10.20.0.x:8080).
#pragma once

#include "rig.hpp"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <string>
#include <vector>

namespace evenflow::testing {

inline constexpr const char* vip = "10.10.0.100";

struct legit {
    std::string client;
    uint16_t port;
    uint32_t backend = 0; // address the SYN went to (host order)
};

inline bytes to_vip(ring_rig& rig, const std::string& client, uint16_t port, uint8_t flags,
                    const std::string& payload = "") {
    return packet_builder()
        .eth(router_mac, rig.lb_mac(client_side))
        .ipv4(client, vip)
        .tcp(port, 80, flags, 1000, 1)
        .payload(payload)
        .build();
}

inline bytes from_backend(ring_rig& rig, uint32_t backend, const std::string& client, uint16_t port,
                          uint8_t flags) {
    int last = int(backend & 0xff);
    return packet_builder()
        .eth(backend_mac(last), rig.lb_mac(backend_side))
        .ipv4(fmt::format("10.20.0.{}", last), client)
        .tcp(8080, port, flags, 5000, 1001)
        .build();
}

inline std::string ipv4_text(uint32_t a) {
    return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

// A client's flow key toward the VIP's port 80.
inline net::flow_key vip_key(const std::string& client, uint16_t port) {
    net::flow_key key;
    key.src = *net::ip_addr::parse(client);
    key.dst = *net::ip_addr::parse(vip);
    key.src_port = htons(port);
    key.dst_port = htons(80);
    key.proto = 6;
    return key;
}

// The backend Maglev picks for this client's port, read from the published snapshot.
inline const snapshot_backend& chosen_backend(ring_rig& rig, const std::string& client,
                                              uint16_t port) {
    const snapshot* snap = rig.shared.snap.load();
    const snapshot_service* svc = snap->find_service(*net::ip_addr::parse(vip), htons(80), 6);
    REQUIRE(svc != nullptr);
    const snapshot_backend* b =
        snap->find_backend(svc->pick(svc->flow_hash(vip_key(client, port))));
    REQUIRE(b != nullptr);
    return *b;
}

// Opens `n` connections with complete handshakes (SYN, the backend's SYN-ACK, ACK).
inline std::vector<legit> open_connections(ring_rig& rig, const std::string& client, uint16_t first,
                                           int n) {
    std::vector<legit> out;
    for (int i = 0; i < n; ++i) {
        legit c{client, uint16_t(first + i)};
        auto syn = rig.exchange(client_side, to_vip(rig, client, c.port, tcp_flags::syn));
        REQUIRE(syn.backend.size() == 1);
        c.backend = get32(syn.backend[0], 30);
        auto synack = rig.exchange(backend_side, from_backend(rig, c.backend, client, c.port,
                                                              tcp_flags::syn | tcp_flags::ack));
        REQUIRE(synack.client.size() == 1);
        REQUIRE(
            rig.exchange(client_side, to_vip(rig, client, c.port, tcp_flags::ack)).backend.size() ==
            1);
        out.push_back(c);
    }
    return out;
}

} // namespace evenflow::testing
