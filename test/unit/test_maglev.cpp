// Maglev table: validity, balance, weights, order independence, disruption, determinism.
#include "balance/maglev.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

using evenflow::balance::build_maglev_table;
using evenflow::balance::count_slots;
using evenflow::balance::is_prime;
using evenflow::balance::maglev_backend;
using evenflow::balance::next_prime;
using evenflow::balance::no_backend;

namespace {

constexpr uint32_t table_size = 65537;

std::string key_for(uint32_t i) {
    return "10." + std::to_string(20 + i / 65536) + "." + std::to_string((i / 256) % 256) + "." +
           std::to_string(i % 256) + ":8080";
}

// Backends with ids 1..n; weight 1 unless given.
std::vector<maglev_backend> make_backends(uint32_t n, const std::vector<uint32_t>& weights = {}) {
    std::vector<maglev_backend> out;
    for (uint32_t i = 0; i < n; ++i) {
        out.push_back({i + 1, key_for(i), weights.empty() ? 1u : weights[i]});
    }
    return out;
}

uint32_t max_id_of(const std::vector<maglev_backend>& bs) {
    uint32_t m = 0;
    for (const auto& b : bs) {
        m = std::max(m, b.id);
    }
    return m;
}

// FNV-1a over the table's ids, for the golden test.
uint64_t table_digest(const std::vector<uint32_t>& table) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t id : table) {
        for (int i = 0; i < 4; ++i) {
            h ^= (id >> (8 * i)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

void check_shares(const std::vector<maglev_backend>& bs, const std::vector<uint32_t>& table) {
    uint64_t total = 0;
    for (const auto& b : bs) {
        total += b.weight;
    }
    const auto counts = count_slots(table, max_id_of(bs));
    double worst = 0;
    for (const auto& b : bs) {
        const double ideal = double(table.size()) * double(b.weight) / double(total);
        const double err = std::fabs(double(counts[b.id]) - ideal);
        worst = std::max(worst, err);
        INFO("backend " << b.id << " weight " << b.weight << ": " << counts[b.id]
                        << " slots, ideal " << ideal);
        REQUIRE(err <= 1.0 + 0.005 * ideal);
    }
    INFO("worst error " << worst << " slots");
    SUCCEED();
}

struct disruption {
    double others_moved = 0; // fraction of the table: slots of surviving backends that moved
    uint32_t own_slots = 0;  // slots of the removed/added backend
    uint32_t own_kept = 0;   // removal: its slots still pointing at it (must be 0)
};

// Slots whose owner changed between `before` and `after`, excluding those of `who`
// (the removed backend in `before`, or the added one in `after`).
disruption compare(const std::vector<uint32_t>& before, const std::vector<uint32_t>& after,
                   uint32_t who, bool removal) {
    disruption d;
    uint32_t moved = 0;
    for (size_t i = 0; i < before.size(); ++i) {
        const uint32_t own = removal ? before[i] : after[i];
        if (own == who) {
            ++d.own_slots;
            if (removal && after[i] == who) {
                ++d.own_kept;
            }
            continue;
        }
        if (before[i] != after[i]) {
            ++moved;
        }
    }
    d.others_moved = double(moved) / double(before.size());
    return d;
}

} // namespace

TEST_CASE("maglev: every slot holds a valid backend id, never 0", "[maglev]") {
    std::mt19937 rng(7);
    for (uint32_t n : {1u, 2u, 3u, 10u, 100u, 650u, 1000u}) {
        std::vector<uint32_t> weights(n);
        for (auto& w : weights) {
            w = std::uniform_int_distribution<uint32_t>(0, 5)(rng);
        }
        weights[n / 2] = std::max(weights[n / 2], 1u); // at least one weight > 0
        auto bs = make_backends(n, weights);
        auto table = build_maglev_table(bs, table_size);
        REQUIRE(table.size() == table_size);
        std::set<uint32_t> allowed;
        for (const auto& b : bs) {
            if (b.weight > 0) {
                allowed.insert(b.id);
            }
        }
        INFO("n = " << n);
        for (uint32_t id : table) {
            REQUIRE(id != no_backend);
            REQUIRE(allowed.count(id) == 1);
        }
    }
}

TEST_CASE("maglev: equal weights balance to within one slot", "[maglev]") {
    for (uint32_t n : {2u, 3u, 10u, 100u, 650u}) {
        auto bs = make_backends(n);
        auto counts = count_slots(build_maglev_table(bs, table_size), n);
        auto [lo, hi] = std::minmax_element(counts.begin() + 1, counts.end());
        INFO("n = " << n << " min " << *lo << " max " << *hi);
        REQUIRE(*hi - *lo <= 1);
        REQUIRE(counts[0] == 0);
    }
}

TEST_CASE("maglev: shares follow weights", "[maglev]") {
    std::mt19937 rng(12345);
    for (uint32_t n : {2u, 3u, 10u, 100u, 650u}) {
        SECTION("random weights 1..1000, n = " + std::to_string(n)) {
            for (int round = 0; round < 5; ++round) {
                std::vector<uint32_t> weights(n);
                for (auto& w : weights) {
                    w = std::uniform_int_distribution<uint32_t>(1, 1000)(rng);
                }
                auto bs = make_backends(n, weights);
                check_shares(bs, build_maglev_table(bs, table_size));
            }
        }
        SECTION("patterned weights 1,1,2,... n = " + std::to_string(n)) {
            std::vector<uint32_t> weights(n);
            for (uint32_t i = 0; i < n; ++i) {
                weights[i] = i % 3 == 2 ? 2 : 1;
            }
            auto bs = make_backends(n, weights);
            check_shares(bs, build_maglev_table(bs, table_size));
        }
        SECTION("one heavy backend, n = " + std::to_string(n)) {
            std::vector<uint32_t> weights(n, 1);
            weights[0] = 100;
            auto bs = make_backends(n, weights);
            check_shares(bs, build_maglev_table(bs, table_size));
        }
    }
    SECTION("weights 1, 1, 2 exactly") {
        auto bs = make_backends(3, {1, 1, 2});
        auto counts = count_slots(build_maglev_table(bs, table_size), 3);
        // 65537 / 4 = 16384.25: the two light ones get 16384 or 16385, the heavy 32768 or 32769.
        CHECK(counts[1] + counts[2] + counts[3] == table_size);
        CHECK(counts[3] >= 32768);
        CHECK(counts[3] <= 32769);
    }
}

TEST_CASE("maglev: weight 0 takes no slots, and its presence changes nothing", "[maglev]") {
    auto bs = make_backends(10);
    auto base = build_maglev_table(bs, table_size);
    bs[4].weight = 0;
    auto without = build_maglev_table(bs, table_size);
    auto counts = count_slots(without, 10);
    CHECK(counts[5] == 0);
    bs.erase(bs.begin() + 4);
    CHECK(build_maglev_table(bs, table_size) == without);
    CHECK(without != base);
}

TEST_CASE("maglev: all weights zero or no backends yield an empty table", "[maglev]") {
    auto bs = make_backends(5, {0, 0, 0, 0, 0});
    auto table = build_maglev_table(bs, table_size);
    REQUIRE(table.size() == table_size);
    CHECK(std::all_of(table.begin(), table.end(), [](uint32_t id) { return id == no_backend; }));

    auto empty = build_maglev_table({}, table_size);
    REQUIRE(empty.size() == table_size);
    CHECK(std::all_of(empty.begin(), empty.end(), [](uint32_t id) { return id == no_backend; }));

    CHECK(build_maglev_table(make_backends(3), 0).empty());
}

TEST_CASE("maglev: backend id 0 is reserved and ignored", "[maglev]") {
    auto bs = make_backends(3);
    bs.push_back({no_backend, "10.99.0.1:80", 5});
    auto table = build_maglev_table(bs, 251);
    CHECK(std::none_of(table.begin(), table.end(), [](uint32_t id) { return id == no_backend; }));
}

TEST_CASE("maglev: listing order does not change the table", "[maglev]") {
    std::mt19937 rng(99);
    for (uint32_t n : {3u, 10u, 100u}) {
        std::vector<uint32_t> weights(n);
        for (auto& w : weights) {
            w = std::uniform_int_distribution<uint32_t>(1, 10)(rng);
        }
        auto bs = make_backends(n, weights);
        const auto reference = build_maglev_table(bs, table_size);
        for (int i = 0; i < 20; ++i) {
            std::shuffle(bs.begin(), bs.end(), rng);
            INFO("n = " << n << " shuffle " << i);
            REQUIRE(build_maglev_table(bs, table_size) == reference);
        }
    }
}

TEST_CASE("maglev: removing a backend moves its slots and few others", "[maglev]") {
    // Ideal: only the removed backend's ~1/N of the table moves. Maglev trades a little
    // extra movement for balance: the survivors' preference walks now meet different
    // competitors, so a few of their slots change hands. Measured (65537 slots, equal
    // weights, 5 random removals each): beyond the removed backend's own slots,
    // 0.01% of the table moves at N=3, 0.2% at N=10, 0.6% at N=100, 0.8% at N=650
    // (printed below). Bound asserted: at most 2% of the table (2.5x the worst
    // measured), i.e. >= 98% of the other slots stay; every removed slot moves.
    std::mt19937 rng(2024);
    for (uint32_t n : {3u, 10u, 100u, 650u}) {
        auto bs = make_backends(n);
        const auto before = build_maglev_table(bs, table_size);
        double worst = 0;
        double sum = 0;
        const int trials = 5;
        for (int t = 0; t < trials; ++t) {
            const uint32_t victim = std::uniform_int_distribution<uint32_t>(0, n - 1)(rng);
            auto fewer = bs;
            const uint32_t gone = fewer[victim].id;
            fewer.erase(fewer.begin() + victim);
            const auto after = build_maglev_table(fewer, table_size);
            const disruption d = compare(before, after, gone, true);
            INFO("n = " << n << " removed id " << gone);
            REQUIRE(d.own_kept == 0);
            REQUIRE(d.own_slots > 0);
            REQUIRE(d.others_moved <= 0.02);
            worst = std::max(worst, d.others_moved);
            sum += d.others_moved;
        }
        std::printf("maglev removal  n=%4u: own slots ~1/N = %.4f; others moved: mean %.4f, "
                    "worst %.4f of the table\n",
                    n, 1.0 / n, sum / trials, worst);
    }
}

TEST_CASE("maglev: adding a backend takes its share and moves few others", "[maglev]") {
    // Same bound as removal, in the other direction (measured: 0.04%, 0.2%, 0.6%, 0.8%).
    for (uint32_t n : {3u, 10u, 100u, 650u}) {
        auto all = make_backends(n + 1);
        auto bs = all;
        const uint32_t added = bs.back().id;
        bs.pop_back();
        const auto before = build_maglev_table(bs, table_size);
        const auto after = build_maglev_table(all, table_size);
        const disruption d = compare(before, after, added, false);
        std::printf("maglev addition n=%4u: new backend took %.4f (ideal 1/(N+1) = %.4f); "
                    "others moved %.4f of the table\n",
                    n, double(d.own_slots) / table_size, 1.0 / (n + 1), d.others_moved);
        INFO("n = " << n);
        REQUIRE(std::abs(double(d.own_slots) - double(table_size) / (n + 1)) <= 1.0);
        REQUIRE(d.others_moved <= 0.02);
    }
}

TEST_CASE("maglev: any table size works, even non-prime or tiny", "[maglev]") {
    for (uint32_t m : {1u, 2u, 7u, 100u, 1000u, 65536u}) {
        auto bs = make_backends(10);
        auto table = build_maglev_table(bs, m);
        REQUIRE(table.size() == m);
        auto counts = count_slots(table, 10);
        CHECK(counts[0] == 0);
        if (m >= 10) {
            auto [lo, hi] = std::minmax_element(counts.begin() + 1, counts.end());
            INFO("m = " << m);
            CHECK(*hi - *lo <= 1);
        }
    }
}

TEST_CASE("maglev: count_slots", "[maglev]") {
    std::vector<uint32_t> table = {1, 2, 2, 0, 3, 9};
    auto counts = count_slots(table, 3);
    REQUIRE(counts.size() == 4);
    CHECK(counts[0] == 1);
    CHECK(counts[1] == 1);
    CHECK(counts[2] == 2);
    CHECK(counts[3] == 1); // id 9 > max_id: not counted
}

TEST_CASE("maglev: tables are identical across runs and hosts (golden)", "[maglev]") {
    // The hash of a key and the fill order are part of the contract between balancer
    // hosts behind one ECMP group, and between releases. If this changes, every
    // deployed table reshuffles on upgrade: change it only on purpose.
    std::vector<maglev_backend> bs = {
        {1, "10.20.0.11:8080", 1},
        {2, "10.20.0.12:8080", 1},
        {3, "10.20.0.13:8080", 2},
    };
    const auto table = build_maglev_table(bs, table_size);
    const auto counts = count_slots(table, 3);
    CHECK(counts[1] == 16384);
    CHECK(counts[2] == 16384);
    CHECK(counts[3] == 32769);
    CHECK(std::vector<uint32_t>(table.begin(), table.begin() + 8) ==
          std::vector<uint32_t>{1, 1, 3, 3, 3, 2, 2, 2});
    CHECK(table_digest(table) == 0xf1f9eafb85325ef6ull);
    CHECK(table_digest(build_maglev_table(make_backends(650), table_size)) ==
          0x0f670e816fe72eecull);
}

TEST_CASE("maglev: is_prime and next_prime", "[maglev]") {
    for (uint64_t p : {2ull, 3ull, 5ull, 101ull, 211ull, 1009ull, 65537ull, 70001ull, 4294967291ull,
                       18446744073709551557ull}) {
        INFO(p);
        CHECK(is_prime(p));
    }
    for (uint64_t n : {0ull, 1ull, 4ull, 9ull, 561ull /* Carmichael */, 1000ull, 65536ull,
                       4294967297ull /* 641 x 6700417 */, 3215031751ull /* strong pseudoprime */,
                       18446744073709551615ull}) {
        INFO(n);
        CHECK_FALSE(is_prime(n));
    }
    // Agrees with trial division on a range.
    for (uint64_t n = 0; n < 5000; ++n) {
        bool prime = n >= 2;
        for (uint64_t d = 2; d * d <= n && prime; ++d) {
            prime = n % d != 0;
        }
        INFO(n);
        REQUIRE(is_prime(n) == prime);
    }
    CHECK(next_prime(65536) == 65537);
    CHECK(next_prime(65537) == 65537);
    CHECK(next_prime(400) == 401);
}
