// Flow table: 8-way cache-line buckets with two candidate buckets per key.
//
// Layout (one mapping): the bucket array, then the entry array. A bucket is one cache
// line holding 8 signatures and 8 deadlines, so a lookup reads one line to find its
// candidate way(s) and then the one 64-byte entry line to confirm the full key.
//
// Why two candidate buckets: with one bucket per key, an 8-way table overflows long
// before it is full (random keys at 50% load already overflow ~0.8% of them, at 80%
// ~7%), so the configured capacity would be a lie. Each key therefore has a primary
// bucket (low bits of its signature) and an alternate one (a remix of the signature).
// Inserts go to the primary when it has room, else to the alternate, else they move
// one entry of either bucket to *its* other bucket to make room (one level of cuckoo
// displacement). Measured on random keys: no loss up to 80% load, ~0.01% at 90%.
// Most entries live in their primary bucket, so a hit usually reads two lines
// (bucket, entry); the alternate is read only when the primary has no match.
#include "flow/flow_table.hpp"

#include <bit>
#include <cerrno>
#include <cstring>
#include <new>

#include <sys/mman.h>

#if defined(__SSE4_1__)
#include <smmintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace evenflow::flow {

namespace {

constexpr unsigned ways = 8;
constexpr size_t huge_page = size_t(2) << 20;
constexpr size_t small_page = 4096;
// Deadlines are compared modulo 2^32, so a timeout must stay below 2^31 ms (~24 days).
constexpr uint32_t max_timeout_ms = 0x7fffffffu;

// The tag stored in a bucket: the whole hash, with 0 reserved for "empty". Both
// candidate buckets derive from the signature alone, so an entry can be moved to its
// other bucket without its key being rehashed.
inline uint32_t signature_of(uint32_t hash) {
    return hash != 0 ? hash : 1;
}

inline uint32_t remix(uint32_t x) {
    // MurmurHash3 fmix32: the alternate bucket must not share the primary's low bits.
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return x;
}

inline bool keys_equal(const net::flow_key& a, const net::flow_key& b) {
    // 40 bytes compared without branches or a library call.
    const auto* pa = reinterpret_cast<const uint8_t*>(&a);
    const auto* pb = reinterpret_cast<const uint8_t*>(&b);
    uint64_t ta;
    uint64_t tb;
    std::memcpy(&ta, pa + 32, 8);
    std::memcpy(&tb, pb + 32, 8);
#if defined(__SSE4_1__)
    const __m128i x0 = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pa)),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb)));
    const __m128i x1 = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pa + 16)),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + 16)));
    const __m128i x = _mm_or_si128(x0, x1);
    return (_mm_testz_si128(x, x) != 0) & (ta == tb);
#else
    uint64_t wa[4];
    uint64_t wb[4];
    std::memcpy(wa, pa, sizeof wa);
    std::memcpy(wb, pb, sizeof wb);
    return ((wa[0] ^ wb[0]) | (wa[1] ^ wb[1]) | (wa[2] ^ wb[2]) | (wa[3] ^ wb[3]) | (ta ^ tb)) == 0;
#endif
}
static_assert(sizeof(net::flow_key) == 5 * sizeof(uint64_t));

} // namespace

struct alignas(64) flow_table::bucket {
    uint32_t sig[ways];      // 0 = empty way
    uint32_t deadline[ways]; // coarse ms clock; past it the entry is dead
};

namespace {

// Bit w set when way w holds `sig`.
inline unsigned match_mask(const uint32_t* sigs, uint32_t sig) {
#if defined(__SSE2__)
    const __m128i s = _mm_set1_epi32(int(sig));
    const __m128i lo = _mm_load_si128(reinterpret_cast<const __m128i*>(sigs));
    const __m128i hi = _mm_load_si128(reinterpret_cast<const __m128i*>(sigs + 4));
    const unsigned m_lo = unsigned(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(lo, s))));
    const unsigned m_hi = unsigned(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(hi, s))));
    return m_lo | (m_hi << 4);
#else
    unsigned m = 0;
    for (unsigned w = 0; w < ways; ++w) {
        m |= unsigned(sigs[w] == sig) << w;
    }
    return m;
#endif
}

} // namespace

std::unique_ptr<flow_table> flow_table::create(size_t capacity, flow_timeouts_ms timeouts) {
    // Bucket indexes come from a 32-bit signature: at most 2^32 buckets.
    constexpr size_t max_buckets = size_t(1) << 32;
    if (capacity > max_buckets * ways) {
        return nullptr;
    }
    size_t buckets = (capacity + ways - 1) / ways;
    buckets = std::bit_ceil(buckets < 1 ? size_t(1) : buckets);
    const size_t bytes =
        buckets * sizeof(bucket) + buckets * ways * sizeof(flow_entry) + buckets; // + pinned ways

    std::unique_ptr<flow_table> t(new (std::nothrow) flow_table());
    if (!t) {
        return nullptr;
    }
    // Over-map by one huge page so the data can start 2 MiB-aligned: transparent huge
    // pages only back aligned 2 MiB ranges, and at millions of flows every lookup is a
    // TLB miss without them.
    const bool large = bytes >= huge_page;
    const size_t map_len = large ? bytes + huge_page : bytes;
    void* map = mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        return nullptr;
    }
    t->m_map = map;
    t->m_bytes = map_len;
    auto base = reinterpret_cast<uintptr_t>(map);
    if (large) {
        base = (base + huge_page - 1) & ~uintptr_t(huge_page - 1);
    }
    auto* data = reinterpret_cast<uint8_t*>(base);
    const size_t data_len = (bytes + small_page - 1) & ~(small_page - 1);
    // Advise before the first touch: pages populated first (MAP_POPULATE) would be
    // 4 KiB pages. Failure is fine (THP disabled): the table works, only slower.
    (void)madvise(data, data_len, MADV_HUGEPAGE);
    // Fault everything in now, not on the first packets. MADV_POPULATE_WRITE reports
    // ENOMEM where MAP_POPULATE would silently leave pages unpopulated.
    bool populated = false;
#if defined(MADV_POPULATE_WRITE)
    if (madvise(data, data_len, MADV_POPULATE_WRITE) == 0) {
        populated = true;
    } else if (errno != EINVAL) {
        return nullptr; // the destructor unmaps
    }
#endif
    if (!populated) {
        // Kernels before 5.14: touch one byte per page (anonymous memory is zero, and
        // a zero signature means "empty", so writing zero changes nothing).
        for (size_t off = 0; off < data_len; off += small_page) {
            reinterpret_cast<volatile uint8_t*>(data)[off] = 0;
        }
    }

    t->m_buckets = reinterpret_cast<bucket*>(data);
    t->m_entries = reinterpret_cast<flow_entry*>(data + buckets * sizeof(bucket));
    t->m_pinned_ways = data + buckets * sizeof(bucket) + buckets * ways * sizeof(flow_entry);
    t->m_bucket_mask = buckets - 1;
    t->m_timeouts.syn = std::min(timeouts.syn, max_timeout_ms);
    t->m_timeouts.established = std::min(timeouts.established, max_timeout_ms);
    t->m_timeouts.closing = std::min(timeouts.closing, max_timeout_ms);
    return t;
}

flow_table::~flow_table() {
    static_assert(sizeof(bucket) == 64);
    if (m_map != nullptr) {
        munmap(m_map, m_bytes);
    }
}

bool flow_table::deadline_passed(uint32_t deadline, uint32_t now) const {
    // Live while now < deadline, modulo 2^32: correct across the clock's wrap as long
    // as deadlines are less than 2^31 ms ahead.
    return int32_t(now - deadline) >= 0;
}

uint32_t flow_table::deadline_for(flow_state state, uint32_t now) const {
    switch (state) {
    case flow_state::syn:
    case flow_state::unverified:
        return now + m_timeouts.syn;
    case flow_state::established:
        return now + m_timeouts.established;
    case flow_state::closing:
        break;
    }
    return now + m_timeouts.closing;
}

uint32_t flow_table::slot_deadline(size_t slot) const {
    return m_buckets[slot / ways].deadline[slot % ways];
}

bool flow_table::slot_used(size_t slot) const {
    return m_buckets[slot / ways].sig[slot % ways] != 0;
}

void flow_table::free_slot(size_t slot) {
    uint32_t& sig = m_buckets[slot / ways].sig[slot % ways];
    if (sig != 0) {
        sig = 0;
        --m_live;
    }
}

void flow_table::prefetch(uint32_t hash) const {
    // Only the primary bucket: most entries live there, and prefetching both would
    // double the memory traffic of every hit.
    __builtin_prefetch(&m_buckets[signature_of(hash) & m_bucket_mask], 0, 3);
}

void flow_table::prefetch_entry(uint32_t hash) const {
    const uint32_t sig = signature_of(hash);
    const size_t index = sig & m_bucket_mask;
    const unsigned mask = match_mask(m_buckets[index].sig, sig);
    if (mask != 0) {
        __builtin_prefetch(&m_entries[index * ways + unsigned(std::countr_zero(mask))], 0, 3);
    }
}

namespace {

// The other candidate bucket of a signature, given one of the two. Never equal to
// `index` unless the table has a single bucket.
inline size_t other_bucket(uint32_t sig, size_t index, size_t mask) {
    const size_t primary = sig & mask;
    size_t alternate = remix(sig) & mask;
    if (alternate == primary) {
        alternate ^= 1;
        alternate &= mask;
    }
    return index == primary ? alternate : primary;
}

} // namespace

void flow_table::prefetch_for_insert(uint32_t hash) const {
    const uint32_t sig = signature_of(hash);
    const size_t primary = sig & m_bucket_mask;
    __builtin_prefetch(&m_buckets[primary], 1, 3);
    __builtin_prefetch(&m_buckets[other_bucket(sig, primary, m_bucket_mask)], 1, 3);
}

void flow_table::prefetch_insert_slot(uint32_t hash) const {
    const uint32_t sig = signature_of(hash);
    size_t index = sig & m_bucket_mask;
    for (int pass = 0; pass < 2; ++pass) {
        const unsigned free_ways = match_mask(m_buckets[index].sig, 0);
        if (free_ways != 0) {
            __builtin_prefetch(&m_entries[index * ways + unsigned(std::countr_zero(free_ways))], 1,
                               3);
            return;
        }
        index = other_bucket(sig, index, m_bucket_mask);
    }
}

flow_entry* flow_table::lookup(const net::flow_key& key, uint32_t hash, uint32_t now_ms) {
    ++m_stats.lookups;
    const uint32_t sig = signature_of(hash);
    size_t index = sig & m_bucket_mask;
    for (int pass = 0; pass < 2; ++pass) {
        bucket& b = m_buckets[index];
        unsigned mask = match_mask(b.sig, sig);
        while (mask != 0) {
            const unsigned w = unsigned(std::countr_zero(mask));
            mask &= mask - 1;
            flow_entry& e = m_entries[index * ways + w];
            if (!keys_equal(e.key, key)) {
                continue;
            }
            // A key lives in at most one way of its two buckets: stop here either way.
            if (deadline_passed(b.deadline[w], now_ms)) [[unlikely]] {
                b.sig[w] = 0;
                --m_live;
                ++m_stats.expired;
                return nullptr;
            }
            ++m_stats.hits;
            return &e;
        }
        if (m_bucket_mask == 0) {
            break;
        }
        index = other_bucket(sig, index, m_bucket_mask);
    }
    return nullptr;
}

flow_entry* flow_table::insert(const net::flow_key& key, uint32_t hash, const flow_value& value,
                               uint32_t now_ms, insert_outcome* outcome,
                               const net::flow_key* keep) {
    const uint32_t sig = signature_of(hash);
    const size_t cand[2] = {sig & m_bucket_mask,
                            other_bucket(sig, sig & m_bucket_mask, m_bucket_mask)};
    const int ncand = m_bucket_mask == 0 ? 1 : 2;
    insert_outcome result = insert_outcome::inserted;

    // Choose the slot, in order of preference. `-1` = none yet.
    ptrdiff_t slot = -1;
    ptrdiff_t free_slot_found = -1;
    ptrdiff_t expired_slot = -1;
    for (int c = 0; c < ncand && slot < 0; ++c) {
        bucket& b = m_buckets[cand[c]];
        // 1. The key is already here (the caller should have looked, but a duplicate
        //    would shadow it): overwrite in place.
        for (unsigned mask = match_mask(b.sig, sig); mask != 0; mask &= mask - 1) {
            const unsigned w = unsigned(std::countr_zero(mask));
            if (keys_equal(m_entries[cand[c] * ways + w].key, key)) {
                slot = ptrdiff_t(cand[c] * ways + w);
                break;
            }
        }
        for (unsigned w = 0; w < ways && slot < 0; ++w) {
            if (b.sig[w] == 0) {
                if (free_slot_found < 0) {
                    free_slot_found = ptrdiff_t(cand[c] * ways + w);
                }
            } else if (expired_slot < 0 && deadline_passed(b.deadline[w], now_ms)) {
                expired_slot = ptrdiff_t(cand[c] * ways + w);
            }
        }
    }
    if (slot >= 0) {
        // Overwrite of the same key: occupancy unchanged.
    } else if (free_slot_found >= 0) {
        // 2. A free way, primary bucket first.
        slot = free_slot_found;
        ++m_live;
    } else if (expired_slot >= 0) {
        // 3. A dead flow's way: reuse it (it counts as expired, not as an eviction).
        slot = expired_slot;
        ++m_stats.expired;
    } else {
        // 4. Make room by moving one live entry of either bucket to its other bucket.
        //    Only free ways are taken there (expired ones would have been reused in
        //    step 3 had they been in our buckets; elsewhere they are left to lazy expiry).
        //    Each try is a cache miss on another bucket, so only a few are made: in a
        //    nearly full table they rarely succeed, and step 5 is cheap.
        unsigned tries = 0;
        for (int c = 0; c < ncand && slot < 0; ++c) {
            bucket& b = m_buckets[cand[c]];
            for (unsigned w = 0; w < ways && slot < 0 && tries < max_move_tries; ++w, ++tries) {
                const size_t dest = other_bucket(b.sig[w], cand[c], m_bucket_mask);
                if (dest == cand[0] || dest == cand[1]) {
                    continue; // its pair is ours: both full
                }
                bucket& d = m_buckets[dest];
                for (unsigned dw = 0; dw < ways; ++dw) {
                    if (d.sig[dw] == 0) {
                        m_entries[dest * ways + dw] = m_entries[cand[c] * ways + w];
                        d.deadline[dw] = b.deadline[w];
                        d.sig[dw] = b.sig[w];
                        set_pinned(dest * ways + dw, is_pinned(cand[c] * ways + w));
                        slot = ptrdiff_t(cand[c] * ways + w);
                        ++m_live; // the moved entry is counted once; this is the new one
                        break;
                    }
                }
            }
        }
    }
    if (slot < 0) {
        // 5. Replace the live syn/unverified/closing flow nearest its deadline: a
        //    half-open, unverified or closing flow is the cheapest to lose; established
        //    ones are never evicted.
        int32_t best_left = 0;
        for (int c = 0; c < ncand; ++c) {
            const bucket& b = m_buckets[cand[c]];
            for (unsigned w = 0; w < ways; ++w) {
                const size_t i = cand[c] * ways + w;
                if (is_pinned(i)) {
                    continue; // established: never evicted
                }
                if (keep != nullptr && b.sig[w] != 0 && m_entries[i].key == *keep) {
                    continue;
                }
                const int32_t left = int32_t(b.deadline[w] - now_ms);
                if (slot < 0 || left < best_left) {
                    slot = ptrdiff_t(i);
                    best_left = left;
                }
            }
        }
        if (slot < 0) {
            ++m_stats.insert_failures;
            if (outcome != nullptr) {
                *outcome = insert_outcome::full;
            }
            return nullptr;
        }
        ++m_stats.evictions;
        result = insert_outcome::evicted_other;
    }

    ++m_stats.inserts;
    flow_entry& e = m_entries[slot];
    e.key = key;
    e.value = value;
    bucket& b = m_buckets[size_t(slot) / ways];
    b.sig[size_t(slot) % ways] = sig;
    b.deadline[size_t(slot) % ways] = deadline_for(value.state, now_ms);
    set_pinned(size_t(slot), value.state == flow_state::established);
    if (outcome != nullptr) {
        *outcome = result;
    }
    return &e;
}

void flow_table::refresh(flow_entry* entry, flow_state state, uint32_t now_ms) {
    const size_t slot = size_t(entry - m_entries);
    entry->value.state = state;
    m_buckets[slot / ways].deadline[slot % ways] = deadline_for(state, now_ms);
    set_pinned(slot, state == flow_state::established);
}

void flow_table::remove(flow_entry* entry) {
    const size_t slot = size_t(entry - m_entries);
    uint32_t& sig = m_buckets[slot / ways].sig[slot % ways];
    if (sig != 0) {
        sig = 0;
        --m_live;
        ++m_stats.removals;
    }
}

size_t flow_table::capacity() const {
    return (m_bucket_mask + 1) * ways;
}

size_t flow_table::size() const {
    return m_live;
}

const flow_table_stats& flow_table::stats() const {
    return m_stats;
}

} // namespace evenflow::flow
