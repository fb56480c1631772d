// The worker's rules for a flow's life, shared by its loop (worker.cpp) and its
// packet paths (worker_paths.cpp): how TCP flags move a flow's state, when a
// draining backend's time is up, and the key under which replies are found.
#pragma once

#include "flow/flow_table.hpp"
#include "net/flow_key.hpp"
#include "net/parse.hpp"
#include "snapshot/snapshot.hpp"

#include <rte_mbuf.h>

#include <span>

namespace evenflow::dataplane {

inline std::span<uint8_t> frame_of(rte_mbuf* m) {
    return {rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m)};
}

// The state a flow moves to on a client's segment with these flags (see
// flow::flow_state): FIN and RST close it; the ACK that completes a handshake the
// backend answered establishes it. A client alone cannot pin a flow.
inline flow::flow_state next_state(flow::flow_state current, uint8_t flags) {
    if (flags & (net::tcp_flag::rst | net::tcp_flag::fin)) {
        return flow::flow_state::closing;
    }
    if (current == flow::flow_state::syn_acked && (flags & net::tcp_flag::ack) &&
        !(flags & net::tcp_flag::syn)) {
        return flow::flow_state::established;
    }
    return current;
}

// Tunnel mode sees only the client's side (the backend answers the client
// directly): past the SYN a flow is one_way, kept as long as an established one but
// never pinned, since nothing here can tell a real client from a forged one.
inline flow::flow_state next_state_one_way(flow::flow_state current, uint8_t flags) {
    if (flags & (net::tcp_flag::rst | net::tcp_flag::fin)) {
        return flow::flow_state::closing;
    }
    if (current == flow::flow_state::syn && !(flags & net::tcp_flag::syn)) {
        return flow::flow_state::one_way;
    }
    return current;
}

// The state on a backend's segment: its SYN-ACK answers a syn (the client's ACK
// completes it); anything but a RST or FIN answering a mid-flow entry verifies it.
inline flow::flow_state verified_state(flow::flow_state current, uint8_t flags) {
    if (flags & (net::tcp_flag::rst | net::tcp_flag::fin)) {
        return flow::flow_state::closing;
    }
    if (current == flow::flow_state::syn && (flags & (net::tcp_flag::syn | net::tcp_flag::ack)) ==
                                                (net::tcp_flag::syn | net::tcp_flag::ack)) {
        return flow::flow_state::syn_acked;
    }
    if (current == flow::flow_state::unverified) {
        return flow::flow_state::established;
    }
    return current;
}

// Whether a draining backend's drain_timeout has passed (clock compared modulo 2^32).
inline bool drain_expired(const snapshot_backend& b, uint32_t now) {
    return b.state == backend_state::draining && b.drain_deadline_ms != 0 &&
           int32_t(now - uint32_t(b.drain_deadline_ms)) >= 0;
}

// The key under which a backend's replies to this client are found.
inline net::flow_key backend_side_key(const net::ip_addr& backend, uint16_t backend_port_be,
                                      const net::flow_key& client_key) {
    net::flow_key k;
    k.src = backend;
    k.src_port = backend_port_be;
    k.dst = client_key.src;
    k.dst_port = client_key.src_port;
    k.proto = client_key.proto;
    return k;
}

} // namespace evenflow::dataplane
