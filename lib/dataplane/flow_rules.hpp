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

// The state a flow moves to on a client's segment with these flags: only FIN and RST
// change it. A client cannot make its own flow established (and so pinned): that
// takes the backend's answer (see verified_state).
inline flow::flow_state next_state(flow::flow_state current, uint8_t flags) {
    if (flags & (net::tcp_flag::rst | net::tcp_flag::fin)) {
        return flow::flow_state::closing;
    }
    return current;
}

// The state on a backend's segment: its answer verifies a syn or unverified flow.
inline flow::flow_state verified_state(flow::flow_state current, uint8_t flags) {
    if (flags & (net::tcp_flag::rst | net::tcp_flag::fin)) {
        return flow::flow_state::closing;
    }
    if (current == flow::flow_state::syn || current == flow::flow_state::unverified) {
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
