// The heaviest clients of each backend over the skew window: the workers' sealed
// sketches (flow/client_sketch.hpp), merged by the control thread every second.
//
// Counts are kept as Space-Saving gives them: a count and its possible overstatement,
// summed over workers and seconds, so count - error is a lower bound of what the
// client really did. The skew detector removes only lower bounds when it asks "is the
// skew still there without these clients?": a client can never be credited with
// more than it surely sent.
//
// Memory is bounded whatever the traffic: each second keeps the 2,048 heaviest keys
// per event kind (after merging the workers), and the window holds at most 60
// buckets (a bucket spans window/60, at least one second). So at most 60 x 4,096 keys
// in the buckets and as many in their sum, at ~80 bytes a hash-map node: ~40 MiB in
// the worst case (an hour's window under a flood of distinct sources), ~7 MiB at the
// default 10 s window. The window's edge is as coarse as a bucket.
#pragma once

#include "flow/client_sketch.hpp"
#include "net/addr.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <span>
#include <unordered_map>
#include <vector>

namespace evenflow::control {

struct client_counts {
    uint64_t count = 0;
    uint64_t error = 0;
    uint64_t lower_bound() const { return count - error; }
    client_counts& operator+=(const client_counts& o) {
        count += o.count;
        error += o.error;
        return *this;
    }
    client_counts& operator-=(const client_counts& o) {
        count -= o.count;
        error -= o.error;
        return *this;
    }
};
using client_event_counts = std::array<client_counts, flow::client_event_count>;
inline client_event_counts& operator+=(client_event_counts& into, const client_event_counts& c) {
    for (size_t e = 0; e < into.size(); ++e) {
        into[e] += c[e];
    }
    return into;
}

// A client (address or network) of one backend: the sketch's key.
struct client_key {
    net::ip_addr client;
    uint32_t tag = 0; // backend id [| client_sketch::network_bit]
    bool operator==(const client_key&) const = default;
    uint32_t backend_id() const { return tag & ~flow::client_sketch::network_bit; }
    bool is_network() const { return (tag & flow::client_sketch::network_bit) != 0; }
    // "10.10.9.9" or "10.10.9.0/24".
    std::string text() const { return flow::client_text(client, is_network()); }
};
struct client_key_hash {
    size_t operator()(const client_key& k) const;
};

class client_window {
public:
    using clock = std::chrono::steady_clock;
    static constexpr size_t kept_per_second = 2048; // per event kind
    static constexpr size_t max_buckets = 60;

    explicit client_window(clock::duration window = std::chrono::seconds(10)) : m_window(window) {}
    void set_window(clock::duration window) { m_window = window; }
    // Forgets everything (after a rollback, as the skew detector forgets its windows).
    void reset();

    // One second's sealed buffers, one per worker that sealed one.
    void add(clock::time_point now, std::span<const flow::client_sketches::buffer* const> sealed);

    // The window's counts of one key (zero when it is not held).
    client_event_counts counts(const client_key& key) const;

    struct ranked {
        client_key key;
        client_event_counts counts;
    };
    // The clients of a backend (addresses or networks) whose lower bound for `event`
    // is at least `at_least`, heaviest first, at most `limit`.
    std::vector<ranked> of_backend(uint32_t backend_id, bool networks, flow::client_event event,
                                   uint64_t at_least, size_t limit) const;

    // A client over several backends (a service): its counts in total and per backend.
    struct client_row {
        net::ip_addr client;
        bool network = false;
        client_event_counts total{};
        std::vector<std::pair<uint32_t, client_event_counts>> backends; // heaviest first
        std::string text() const { return flow::client_text(client, network); }
    };
    // The heaviest clients of these backends by verified connections, then SYNs.
    std::vector<client_row> top(std::span<const uint32_t> backend_ids, bool networks,
                                size_t limit) const;

    size_t keys_held() const { return m_window_counts.size(); }

private:
    using count_map = std::unordered_map<client_key, client_event_counts, client_key_hash>;
    struct bucket {
        clock::time_point first, last; // the seconds it holds
        count_map counts;
    };
    // Keeps the heaviest keys of `b` per event kind; what it drops leaves the window.
    void trim(bucket& b, bool in_window);
    void add_to_window(const client_key& key, const client_event_counts& c);
    void remove_from_window(const client_key& key, const client_event_counts& c);

    clock::duration m_window;
    std::deque<bucket> m_buckets;
    count_map m_window_counts; // the sum of the buckets
};

} // namespace evenflow::control
