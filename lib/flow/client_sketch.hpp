// Who opens the connections: each worker counts, per backend, the clients whose SYNs
// and verified handshakes it sees, by address and by /24 (IPv6 /64), in bounded
// heavy-hitter sketches the control thread collects every second. The skew detector
// asks them whether a skewed share comes from a few clients (the traffic) or from
// many (the config): see control/clients.hpp.
//
// The sketch is Space-Saving (Metwally et al.) in sets of four: a key hashes to a
// set; a key already there is counted; a new one takes the set's smallest count + 1
// and remembers that as its possible error. Any key that makes up more than 1/4 of
// its set's events is held, so with 1,024 sets a client with more than about 1/4,096
// of a second's events on one worker is always there, and count - error never
// overstates it. Fixed memory, one hash and two cache lines per event, no allocation.
// The set hash is CRC32-C with a random seed per worker: cheap, but not a PRF (its
// linearity lets someone who picks many source addresses put them in one set). What
// that buys is bounded: a client with more than a quarter of its set's events is still
// held, and the sketch only ever decides whether a skew is called heavy_hitter rather
// than hot, never the other way round beyond what the counters themselves show.
//
// Hand-over without locks: each worker has two buffers. The control thread asks for a
// seal; the worker, at its next poll, switches to the other buffer and acknowledges
// (release); the control thread (acquire) then reads the sealed buffer, clears it and
// may ask again. A worker that does not poll (wedged) simply delays its buffer.
#pragma once

#include "net/addr.hpp"
#include "net/flow_key.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>

#if defined(__SSE4_1__)
#include <smmintrin.h>
#endif

namespace evenflow::flow {

// What a client did: opened a flow with a SYN (anyone can, from any address), or
// completed a handshake the backend answered (tunnel: sent its first packet after the
// SYN).
enum class client_event : uint8_t { syn, verified };
inline constexpr size_t client_event_count = 2;

// The network a client address belongs to, as counted: IPv4 /24, IPv6 /64.
inline net::ip_addr client_network(const net::ip_addr& client) {
    net::ip_addr network = client;
    if (client.is_v4()) {
        network.bytes[15] = 0;
    } else {
        std::memset(network.bytes.data() + 8, 0, 8);
    }
    return network;
}
// Its text: "10.10.9.0/24", "2001:db8:1:2::/64".
std::string client_network_text(const net::ip_addr& network);
// A sketch key's client as text: an address, or a network with its length.
inline std::string client_text(const net::ip_addr& client, bool network) {
    return network ? client_network_text(client) : client.to_string();
}

// One family of counts (one event kind) of one worker's buffer.
class client_sketch {
public:
    static constexpr size_t ways = 4;
    static constexpr size_t sets = 1024;
    static constexpr size_t capacity = ways * sets;
    // The key's tag: the backend id, with this bit set for a network (not an address).
    static constexpr uint32_t network_bit = 1u << 31;

    // One held key, as readers see it.
    struct slot {
        net::ip_addr client; // an address, or a network (tag has network_bit)
        uint32_t tag = 0;    // backend id [| network_bit]
        uint32_t count = 0;  // events counted, possibly overstated by `error`
        uint32_t error = 0;
        uint32_t backend_id() const { return tag & ~network_bit; }
        bool is_network() const { return (tag & network_bit) != 0; }
        uint32_t lower_bound() const { return count - error; }
    };
    // A set, laid out for the worker's lookup: the keys' hashes side by side (one
    // vector compare finds the candidate), then counts (one vector min finds the
    // smallest), then the keys. Two cache lines.
    struct alignas(64) slot_set {
        uint32_t check[ways]; // the key's hash
        uint32_t count[ways]; // 0: empty
        uint32_t error[ways];
        uint32_t tag[ways];
        net::ip_addr client[ways];
    };
    static_assert(sizeof(slot_set) == 128);

    explicit client_sketch(uint32_t seed);
    client_sketch(const client_sketch&) = delete;
    client_sketch& operator=(const client_sketch&) = delete;

    void add(const net::ip_addr& client, uint32_t tag);
    void clear();
    // Calls f(const slot&) for every held key.
    template <typename F>
    void for_each(F&& f) const {
        for (size_t i = 0; i < sets; ++i) {
            const slot_set& s = m_sets[i];
            for (size_t w = 0; w < ways; ++w) {
                if (s.count[w] != 0) {
                    f(slot{s.client[w], s.tag[w], s.count[w], s.error[w]});
                }
            }
        }
    }
    uint64_t events() const { return m_events; } // add() calls since clear()

private:
    uint32_t key_hash(const net::ip_addr& client, uint32_t tag) const;

    std::unique_ptr<slot_set[]> m_sets; // each set two cache lines
    uint32_t m_seed;
    uint64_t m_events = 0;
};

// One worker's sketches: two buffers of one sketch per event kind.
class client_sketches {
public:
    using buffer = std::array<client_sketch, client_event_count>;

    explicit client_sketches(uint32_t seed);

    // ---- the worker ----

    // Counts one event: the client's address and its network, for this backend.
    void count(client_event e, const net::ip_addr& client, uint32_t backend_id) {
        client_sketch& s = (*m_buffers[m_active])[size_t(e)];
        s.add(client, backend_id);
        s.add(client_network(client), backend_id | client_sketch::network_bit);
    }
    // Once per poll: switches buffers when the control thread asked for a seal.
    void poll() {
        const uint32_t requested = m_requested.load(std::memory_order_relaxed);
        if (requested != m_seen) {
            m_seen = requested;
            m_active = requested & 1;
            m_acked.store(requested, std::memory_order_release);
        }
    }

    // ---- the control thread ----

    // Asks the worker to seal its buffer, unless a sealed one still waits.
    void request_seal();
    // Whether the worker has sealed a buffer not yet taken.
    bool sealed_ready() const {
        return m_taken != m_requested_ctl &&
               m_acked.load(std::memory_order_acquire) == m_requested_ctl;
    }
    const buffer& sealed() const { return *m_buffers[(m_requested_ctl - 1) & 1]; }
    // Whether a seal was asked for and its buffer not yet taken (acknowledged or not).
    bool pending() const { return m_taken != m_requested_ctl; }
    // Clears the sealed buffer for its next turn.
    void release_sealed();

private:
    std::array<std::unique_ptr<buffer>, 2> m_buffers;
    // Worker only.
    uint32_t m_active = 0;
    uint32_t m_seen = 0;
    // Control thread only.
    uint32_t m_requested_ctl = 0;
    uint32_t m_taken = 0;
    // Control -> worker and back, each on its own line.
    alignas(64) std::atomic<uint32_t> m_requested{0};
    alignas(64) std::atomic<uint32_t> m_acked{0};
    static_assert(std::atomic<uint32_t>::is_always_lock_free);
};

// On the worker's path for every new connection: inline.
inline uint32_t client_sketch::key_hash(const net::ip_addr& client, uint32_t tag) const {
#if defined(__SSE4_2__)
    // Three CRC instructions: the general crc32c() would take the tag a byte at a time.
    uint64_t high, low;
    std::memcpy(&high, client.bytes.data(), 8);
    std::memcpy(&low, client.bytes.data() + 8, 8);
    uint64_t h = _mm_crc32_u64(m_seed, high);
    h = _mm_crc32_u64(h, low);
    return _mm_crc32_u32(uint32_t(h), tag);
#else
    struct {
        net::ip_addr client;
        uint32_t tag;
    } key{client, tag};
    return net::crc32c(&key, sizeof key, m_seed);
#endif
}

inline void client_sketch::add(const net::ip_addr& client, uint32_t tag) {
    const uint32_t hash = key_hash(client, tag);
    slot_set& s = m_sets[hash & (sets - 1)];
    ++m_events;
#if defined(__SSE4_1__)
    // The ways whose hash matches (almost always none or the one), then the key.
    const __m128i checks = _mm_load_si128(reinterpret_cast<const __m128i*>(s.check));
    unsigned candidates = unsigned(
        _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(checks, _mm_set1_epi32(int(hash))))));
    while (candidates != 0) {
        const unsigned w = unsigned(__builtin_ctz(candidates));
        if (s.tag[w] == tag && s.client[w] == client && s.count[w] != 0) {
            ++s.count[w];
            return;
        }
        candidates &= candidates - 1;
    }
    // Space-Saving: the newcomer takes the smallest count (empty: 0), which it may
    // overstate by that much.
    const __m128i counts = _mm_load_si128(reinterpret_cast<const __m128i*>(s.count));
    __m128i least = _mm_min_epu32(counts, _mm_shuffle_epi32(counts, 0x4e));
    least = _mm_min_epu32(least, _mm_shuffle_epi32(least, 0xb1));
    const unsigned smallest = unsigned(
        __builtin_ctz(unsigned(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(counts, least))))));
#else
    unsigned smallest = 0;
    for (unsigned w = 0; w < ways; ++w) {
        if (s.check[w] == hash && s.tag[w] == tag && s.client[w] == client && s.count[w] != 0) {
            ++s.count[w];
            return;
        }
        if (s.count[w] < s.count[smallest]) {
            smallest = w;
        }
    }
#endif
    s.check[smallest] = hash;
    s.tag[smallest] = tag;
    s.client[smallest] = client;
    s.error[smallest] = s.count[smallest];
    ++s.count[smallest];
}

} // namespace evenflow::flow
