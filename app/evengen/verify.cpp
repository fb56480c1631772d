#include "verify.hpp"

#include <bit>
#include <cmath>

namespace evenflow::gen {

// Values below 2^sub_bits get a bucket each; above, each power of two is split into
// 2^sub_bits equal buckets.
size_t latency_histogram::bucket_of(uint64_t ns) {
    constexpr uint64_t linear = 1u << sub_bits;
    if (ns < linear) {
        return size_t(ns);
    }
    unsigned top = 63 - unsigned(std::countl_zero(ns)); // >= sub_bits
    unsigned shift = top - sub_bits;
    uint64_t sub = (ns >> shift) - linear; // 0 .. linear-1
    return size_t((shift + 1) * linear + sub);
}

uint64_t latency_histogram::upper_edge(size_t bucket) {
    constexpr uint64_t linear = 1u << sub_bits;
    if (bucket < linear) {
        return bucket;
    }
    uint64_t shift = bucket / linear - 1;
    uint64_t sub = bucket % linear;
    return ((linear + sub + 1) << shift) - 1;
}

uint64_t latency_histogram::quantile(double q) const {
    if (m_total == 0) {
        return 0;
    }
    auto rank = uint64_t(std::ceil(q * double(m_total)));
    if (rank == 0) {
        rank = 1;
    }
    uint64_t seen = 0;
    for (size_t b = 0; b < m_counts.size(); ++b) {
        seen += m_counts[b];
        if (seen >= rank) {
            uint64_t edge = upper_edge(b);
            return edge < m_max ? edge : m_max;
        }
    }
    return m_max;
}

} // namespace evenflow::gen
