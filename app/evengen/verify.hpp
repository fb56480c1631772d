// What evengen checks on every packet it receives, and what it reports: per-flow
// stickiness and order, loss, per-backend distribution, latency percentiles.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace evenflow::gen {

enum class direction : uint8_t { forward = 0, reverse = 1 }; // client->backend, backend->client

// Per flow: the backend it landed on and the last sequence seen each way. Sequence
// numbers are per-flow packet counters (evengen is not a TCP stack): every packet of
// a flow carries a larger one than the last, so "nothing reordered" is last < seq.
class flow_tracker {
public:
    explicit flow_tracker(uint64_t flows) : m_flows(flows) {}

    // Records that `flow` reached `backend` (index + 1; 0 = never seen).
    // Returns whether this is the first sighting, or moved if it was another backend.
    struct sighting {
        bool first = false;
        bool moved = false;
    };
    sighting land(uint64_t flow, uint8_t backend) {
        entry& e = m_flows[flow];
        if (e.backend == 0) {
            e.backend = backend;
            return {true, false};
        }
        return {false, e.backend != backend};
    }
    uint8_t backend_of(uint64_t flow) const { return m_flows[flow].backend; }

    // Whether `seq` is later than anything seen for the flow in that direction.
    bool in_order(uint64_t flow, direction d, uint32_t seq) {
        uint32_t& last = m_flows[flow].next[size_t(d)];
        // Serial-number comparison (RFC 1982): tolerant of wrap on long runs.
        bool ok = last == 0 || int32_t(seq + 1 - last) > 0;
        if (ok) {
            last = seq + 1;
        }
        return ok;
    }
    void forget_order() {
        for (entry& e : m_flows) {
            e.next = {0, 0};
        }
    }
    const void* address_of(uint64_t flow) const { return &m_flows[flow]; }
    uint64_t size() const { return m_flows.size(); }

private:
    struct entry {
        std::array<uint32_t, 2> next{}; // last seq + 1 per direction; 0 = none yet
        uint8_t backend = 0;
    };
    std::vector<entry> m_flows;
};

// Latency in nanoseconds: log-linear buckets (16 per power of two), a few percent
// of resolution from 1 ns to beyond an hour, fixed size, no allocation per sample.
class latency_histogram {
public:
    void record(uint64_t ns) {
        ++m_counts[bucket_of(ns)];
        ++m_total;
        if (ns > m_max) {
            m_max = ns;
        }
    }
    uint64_t count() const { return m_total; }
    uint64_t max() const { return m_max; }
    // Upper edge of the bucket holding the q-quantile (0 < q <= 1); 0 when empty.
    uint64_t quantile(double q) const;
    void clear() { *this = latency_histogram{}; }

    static constexpr unsigned sub_bits = 4;
    static size_t bucket_of(uint64_t ns);
    static uint64_t upper_edge(size_t bucket);

private:
    std::array<uint64_t, 64 << sub_bits> m_counts{};
    uint64_t m_total = 0;
    uint64_t m_max = 0;
};

// Everything counted while a phase runs.
struct counters {
    std::array<uint64_t, 2> tx{};      // packets sent, by direction
    std::array<uint64_t, 2> rx{};      // packets received back, by direction
    uint64_t tx_busy = 0;              // built but refused by a full TX ring (not sent)
    uint64_t rate_deficit = 0;         // --rate: sends skipped to stay on schedule
    uint64_t bad_checksum = 0;         // IPv4 or TCP checksum wrong
    uint64_t malformed = 0;            // not the Ethernet/IPv4/TCP frame we sent
    uint64_t unknown_flow = 0;         // addresses or ports that are none of our flows
    uint64_t wrong_endpoint = 0;       // e.g. forward packet to something not a backend
    uint64_t moved = 0;                // a flow's packet reached a different backend
    uint64_t reordered = 0;            // a flow's packet older than one already seen
    uint64_t ttl_not_decremented = 0;  // a router hop must decrement TTL
    uint64_t duplicate_syn = 0;        // a new flow's SYN arrived twice
    uint64_t lifecycles_completed = 0; // SYN ... FIN/ACK ... last ACK, end to end
    uint64_t lifecycles_started = 0;   // SYNs of connections sent
    uint64_t flood_sent = 0;           // --flood: SYNs sent
    uint64_t flood_answers = 0;        // --flood-answer: the backends' SYN-ACKs sent
    uint64_t flood_received = 0;       // --flood: flood SYNs at a backend, SYN-ACKs back
    uint64_t flood_deficit = 0;        // --flood: SYNs not sent on schedule (evengen busy)
    std::vector<uint64_t> new_flows_per_backend;

    uint64_t errors() const {
        return bad_checksum + malformed + unknown_flow + wrong_endpoint + moved + reordered +
               ttl_not_decremented + duplicate_syn;
    }
    uint64_t sent() const { return tx[0] + tx[1]; }
    uint64_t received() const { return rx[0] + rx[1]; }
};

} // namespace evenflow::gen
