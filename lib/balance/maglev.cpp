// Maglev table construction (Eisenbud et al., NSDI 2016, section 3.4) with weighted turns.
#include "balance/maglev.hpp"

#include <algorithm>
#include <numeric>
#include <string_view>

namespace evenflow::balance {

namespace {

// The permutation of a backend is part of the cross-host contract: every balancer
// given the same backend set must build the same table, across hosts, compilers and
// releases. So the key is hashed with a fixed, hand-written function (FNV-1a over the
// bytes, then the MurmurHash3 64-bit finaliser), never std::hash. Changing a seed or
// a constant reshuffles every table; the golden test in test_maglev.cpp pins them.
constexpr uint64_t offset_seed = 0x6d61676c65763031ull; // "maglev01"
constexpr uint64_t skip_seed = 0x736b697020763031ull;   // "skip v01"

uint64_t key_hash(std::string_view key, uint64_t seed) {
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (char c : key) {
        h ^= uint8_t(c);
        h *= 0x100000001b3ull;
    }
    h ^= uint64_t(key.size()) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb93fe53f4bb9ull;
    h ^= h >> 33;
    return h;
}

// One backend's lazily walked permutation: slot(j) = (offset + j * skip) mod M.
// `pos` is the next candidate slot, advanced by addition and one conditional
// subtraction (skip < M), so the fill loop never divides.
struct walker {
    uint32_t pos;
    uint32_t skip;
};

} // namespace

std::vector<uint32_t> build_maglev_table(std::span<const maglev_backend> backends,
                                         uint32_t table_size) {
    const uint32_t m = table_size;
    std::vector<uint32_t> table(m, no_backend);
    if (m == 0) {
        return table;
    }

    // Canonical order: by key, then id, so the listing order of the config does not
    // matter. Weight-0 backends and the reserved id 0 take no slots and do not take
    // part at all (their absence changes nobody else's permutation).
    std::vector<const maglev_backend*> members;
    members.reserve(backends.size());
    for (const maglev_backend& b : backends) {
        if (b.weight > 0 && b.id != no_backend) {
            members.push_back(&b);
        }
    }
    std::sort(members.begin(), members.end(), [](const maglev_backend* a, const maglev_backend* b) {
        if (int c = a->key.compare(b->key); c != 0) {
            return c < 0;
        }
        if (a->id != b->id) {
            return a->id < b->id;
        }
        return a->weight < b->weight;
    });
    const size_t n = members.size();
    if (n == 0) {
        return table;
    }

    // Quotas: each backend's exact share of the M slots, floor(M * w / W), with the
    // few leftover slots going to the largest remainders (Hamilton apportionment; ties
    // to the canonical order). This caps every backend within one slot of its weight
    // share; the weighted turns below only decide *which* slots each one gets.
    uint64_t total_weight = 0;
    uint32_t max_weight = 0;
    for (const maglev_backend* b : members) {
        total_weight += b->weight;
        max_weight = std::max(max_weight, b->weight);
    }
    std::vector<uint32_t> quota(n);
    std::vector<uint64_t> remainder(n);
    uint64_t assigned = 0;
    for (size_t i = 0; i < n; ++i) {
        // m < 2^32 and weight < 2^32: the product fits in 64 bits.
        const uint64_t scaled = uint64_t(m) * members[i]->weight;
        quota[i] = uint32_t(scaled / total_weight);
        remainder[i] = scaled % total_weight;
        assigned += quota[i];
    }
    if (assigned < m) {
        std::vector<uint32_t> order(n);
        std::iota(order.begin(), order.end(), 0u);
        std::stable_sort(order.begin(), order.end(),
                         [&](uint32_t a, uint32_t b) { return remainder[a] > remainder[b]; });
        for (uint64_t k = 0; k < m - assigned; ++k) {
            ++quota[order[k]];
        }
    }

    // Permutations. With a prime M every skip in [1, M-1] is coprime with M, as the
    // paper requires; for any other size nudge the skip until it is, so each walk
    // still visits every slot and the fill below always terminates.
    std::vector<walker> walk(n);
    for (size_t i = 0; i < n; ++i) {
        const uint32_t offset = uint32_t(key_hash(members[i]->key, offset_seed) % m);
        uint32_t skip = m > 1 ? uint32_t(key_hash(members[i]->key, skip_seed) % (m - 1)) + 1 : 1;
        while (m > 2 && std::gcd(skip, m) != 1) {
            skip = skip % (m - 1) + 1;
        }
        walk[i] = {offset, skip};
    }

    // Weighted turns (Katran's MaglevHashV2): every round each backend adds its
    // weight to an accumulator and takes one slot each time the accumulator reaches
    // the largest weight, so heavy and light backends advance through their
    // preference lists at the same relative pace. A backend stops once it has its
    // quota; the largest weight is then recomputed among those still filling, so the
    // last rounds do not spin through idle turns.
    std::vector<uint32_t> active(n);
    std::iota(active.begin(), active.end(), 0u);
    std::erase_if(active, [&](uint32_t i) { return quota[i] == 0; });
    std::vector<uint64_t> accum(n, 0);
    std::vector<uint32_t> taken(n, 0);
    uint32_t* const slots = table.data();
    uint32_t filled = 0;
    while (filled < m) {
        bool someone_done = false;
        for (uint32_t i : active) {
            accum[i] += members[i]->weight;
            if (accum[i] < max_weight) {
                continue;
            }
            accum[i] -= max_weight;
            walker& w = walk[i];
            uint32_t pos = w.pos;
            while (slots[pos] != no_backend) {
                pos += w.skip;
                if (pos >= m) {
                    pos -= m;
                }
            }
            slots[pos] = members[i]->id;
            pos += w.skip;
            w.pos = pos >= m ? pos - m : pos;
            if (++taken[i] == quota[i]) {
                someone_done = true;
            }
            if (++filled == m) {
                break;
            }
        }
        if (someone_done && filled < m) {
            std::erase_if(active, [&](uint32_t i) { return taken[i] == quota[i]; });
            max_weight = 0;
            for (uint32_t i : active) {
                max_weight = std::max(max_weight, members[i]->weight);
            }
        }
    }
    return table;
}

std::vector<uint32_t> count_slots(std::span<const uint32_t> table, uint32_t max_id) {
    std::vector<uint32_t> counts(size_t(max_id) + 1, 0);
    for (uint32_t id : table) {
        if (id <= max_id) {
            ++counts[id];
        }
    }
    return counts;
}

namespace {

__extension__ typedef unsigned __int128 u128;

uint64_t mul_mod(uint64_t a, uint64_t b, uint64_t m) {
    return uint64_t(u128(a) * b % m);
}

uint64_t pow_mod(uint64_t base, uint64_t exp, uint64_t m) {
    uint64_t result = 1;
    base %= m;
    while (exp != 0) {
        if (exp & 1) {
            result = mul_mod(result, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    return result;
}

} // namespace

bool is_prime(uint64_t n) {
    if (n < 2) {
        return false;
    }
    static constexpr uint64_t bases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
    for (uint64_t p : bases) {
        if (n % p == 0) {
            return n == p;
        }
    }
    // Miller-Rabin with these bases is deterministic for every 64-bit n.
    uint64_t d = n - 1;
    unsigned r = 0;
    while ((d & 1) == 0) {
        d >>= 1;
        ++r;
    }
    for (uint64_t a : bases) {
        uint64_t x = pow_mod(a, d, n);
        if (x == 1 || x == n - 1) {
            continue;
        }
        bool composite = true;
        for (unsigned i = 1; i < r; ++i) {
            x = mul_mod(x, x, n);
            if (x == n - 1) {
                composite = false;
                break;
            }
        }
        if (composite) {
            return false;
        }
    }
    return true;
}

uint64_t next_prime(uint64_t n) {
    while (!is_prime(n)) {
        ++n;
    }
    return n;
}

} // namespace evenflow::balance
