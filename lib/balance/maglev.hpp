// Maglev consistent hashing (Eisenbud et al., NSDI 2016) as pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace evenflow::balance {

// Backend id 0 means "no backend"; a table slot holding 0 has nobody to send to.
inline constexpr uint32_t no_backend = 0;

struct maglev_backend {
    uint32_t id = no_backend; // non-zero, unique within one table
    std::string key;          // stable identity, e.g. "10.20.0.11:8080"; sets the permutation
    uint32_t weight = 1;      // 0 takes no slots
    bool operator==(const maglev_backend&) const = default;
};

// Fills a table of `table_size` slots (must be prime) with backend ids. The result
// depends only on the set of (key, weight, id) triples, not on their order, so every
// balancer host given the same backend set builds the same table. Slots are handed out
// in proportion to weight. All-zero weights (or no backends) yield a table of no_backend.
std::vector<uint32_t> build_maglev_table(std::span<const maglev_backend> backends,
                                         uint32_t table_size);

// Maglev tables must have a prime number of slots. Deterministic Miller-Rabin, exact
// for every 64-bit n.
bool is_prime(uint64_t n);
// The smallest prime >= n (the size to suggest for a table of at least n slots).
uint64_t next_prime(uint64_t n);

// Slots per backend id (index = id), for share predictions and tests.
std::vector<uint32_t> count_slots(std::span<const uint32_t> table, uint32_t max_id);

} // namespace evenflow::balance
