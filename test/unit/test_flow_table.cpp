// Flow table: lookup/insert/remove, full-key compare, lazy expiry per state, the
// insert policy when a key's buckets are full, stats, capacity and scale.
#include "flow/flow_table.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

using namespace evenflow;
using flow::flow_entry;
using flow::flow_state;
using flow::flow_table;
using flow::flow_timeouts_ms;
using flow::flow_value;
using flow::insert_outcome;

namespace {

constexpr flow_timeouts_ms timeouts{.syn = 5'000, .established = 300'000, .closing = 10'000};

// A distinct client -> VIP key per `i` (and `salt`, for a second family of keys).
net::flow_key make_key(uint32_t i, uint32_t salt = 0) {
    net::flow_key k;
    k.src = net::ip_addr::from_v4_be(htonl(0x0a000000u + i));
    k.dst = net::ip_addr::from_v4_be(htonl(0x0a0a0064u + salt));
    k.src_port = htons(uint16_t(1024 + (i * 7919u) % 60000u));
    k.dst_port = htons(80);
    k.proto = 6;
    return k;
}

flow_value make_value(uint32_t backend, flow_state state = flow_state::established) {
    flow_value v;
    v.nat_addr = net::ip_addr::from_v4_be(htonl(0x0a140000u + backend));
    v.nat_port = htons(8080);
    v.backend_id = backend;
    v.state = state;
    return v;
}

std::unique_ptr<flow_table> make_table(size_t capacity) {
    auto t = flow_table::create(capacity, timeouts);
    REQUIRE(t != nullptr);
    return t;
}

} // namespace

TEST_CASE("flow_table: capacity rounds up to a power of two of 8-way buckets", "[flow]") {
    CHECK(make_table(0)->capacity() == 8);
    CHECK(make_table(1)->capacity() == 8);
    CHECK(make_table(8)->capacity() == 8);
    CHECK(make_table(9)->capacity() == 16);
    CHECK(make_table(100)->capacity() == 128);
    CHECK(make_table(1000)->capacity() == 1024);
    CHECK(make_table(1 << 20)->capacity() == 1 << 20);
    CHECK(make_table((1 << 20) + 1)->capacity() == 1 << 21);
    // More buckets than a 32-bit hash can index: refused, nothing allocated.
    CHECK(flow_table::create(size_t(1) << 40, timeouts) == nullptr);
}

TEST_CASE("flow_table: insert, lookup, remove and stats", "[flow]") {
    auto t = make_table(1024);
    const auto k = make_key(1);
    const uint32_t h = net::flow_hash(k);
    const uint32_t now = 1000;

    CHECK(t->lookup(k, h, now) == nullptr);
    insert_outcome out{};
    flow_entry* e = t->insert(k, h, make_value(7), now, &out);
    REQUIRE(e != nullptr);
    CHECK(out == insert_outcome::inserted);
    CHECK(e->key == k);
    CHECK(e->value.backend_id == 7);
    CHECK(t->size() == 1);

    t->prefetch(h);
    flow_entry* found = t->lookup(k, h, now + 1);
    REQUIRE(found == e);
    CHECK(found->value.nat_port == htons(8080));

    // Another key is not found.
    const auto other = make_key(2);
    CHECK(t->lookup(other, net::flow_hash(other), now) == nullptr);

    t->remove(e);
    CHECK(t->size() == 0);
    CHECK(t->lookup(k, h, now + 2) == nullptr);
    t->remove(e); // removing twice is harmless and counted once

    const auto& s = t->stats();
    CHECK(s.lookups == 4);
    CHECK(s.hits == 1);
    CHECK(s.inserts == 1);
    CHECK(s.removals == 1);
    CHECK(s.expired == 0);
    CHECK(s.evictions == 0);
    CHECK(s.insert_failures == 0);
}

TEST_CASE("flow_table: inserting a present key overwrites it", "[flow]") {
    auto t = make_table(64);
    const auto k = make_key(3);
    const uint32_t h = net::flow_hash(k);
    flow_entry* a = t->insert(k, h, make_value(1), 0);
    flow_entry* b = t->insert(k, h, make_value(2), 0);
    CHECK(a == b);
    CHECK(t->size() == 1);
    REQUIRE(t->lookup(k, h, 1) != nullptr);
    CHECK(t->lookup(k, h, 1)->value.backend_id == 2);
}

TEST_CASE("flow_table: keys sharing hash and signature are told apart by the full key", "[flow]") {
    auto t = make_table(1024);
    const uint32_t h = 0xdeadbeef; // fabricated: every key below lands on the same signature
    const auto k1 = make_key(10);
    const auto k2 = make_key(11);
    const auto k3 = make_key(12);
    // Keys that differ only in the padding-free tail (protocol) are distinct too.
    auto k4 = k1;
    k4.proto = 17;

    flow_entry* e1 = t->insert(k1, h, make_value(1), 0);
    flow_entry* e2 = t->insert(k2, h, make_value(2), 0);
    REQUIRE(e1 != nullptr);
    REQUIRE(e2 != nullptr);
    REQUIRE(e1 != e2);
    REQUIRE(t->lookup(k1, h, 1) == e1);
    REQUIRE(t->lookup(k2, h, 1) == e2);
    CHECK(t->lookup(k1, h, 1)->value.backend_id == 1);
    CHECK(t->lookup(k2, h, 1)->value.backend_id == 2);
    CHECK(t->lookup(k3, h, 1) == nullptr);
    CHECK(t->lookup(k4, h, 1) == nullptr);
    // The same key under a different hash is (by contract) a different bucket: a miss.
    CHECK(t->lookup(k1, h ^ 0x5555u, 1) == nullptr);
}

TEST_CASE("flow_table: a hash of 0 works (signature 0 is reserved for empty)", "[flow]") {
    auto t = make_table(64);
    const auto k = make_key(5);
    REQUIRE(t->insert(k, 0, make_value(3), 0) != nullptr);
    REQUIRE(t->lookup(k, 0, 1) != nullptr);
    CHECK(t->lookup(k, 0, 1)->value.backend_id == 3);
    int visited = 0;
    t->for_each(1, [&](const flow_entry&) { ++visited; });
    CHECK(visited == 1);
}

TEST_CASE("flow_table: each state expires after its own timeout, lazily", "[flow]") {
    struct case_t {
        flow_state state;
        uint32_t timeout;
    };
    for (auto c : {case_t{flow_state::syn, timeouts.syn},
                   case_t{flow_state::established, timeouts.established},
                   case_t{flow_state::closing, timeouts.closing}}) {
        INFO("state " << int(c.state));
        auto t = make_table(64);
        const auto k = make_key(20);
        const uint32_t h = net::flow_hash(k);
        const uint32_t t0 = 12'345;
        REQUIRE(t->insert(k, h, make_value(1, c.state), t0) != nullptr);
        CHECK(t->lookup(k, h, t0 + c.timeout - 1) != nullptr);
        CHECK(t->stats().expired == 0);
        // Expired entries still count in size() until touched.
        CHECK(t->size() == 1);
        CHECK(t->lookup(k, h, t0 + c.timeout) == nullptr);
        CHECK(t->stats().expired == 1);
        CHECK(t->size() == 0);
        // Freed on touch: a later lookup is a plain miss, not a second expiry.
        CHECK(t->lookup(k, h, t0 + c.timeout + 1) == nullptr);
        CHECK(t->stats().expired == 1);
    }
}

TEST_CASE("flow_table: refresh sets the state and moves the deadline", "[flow]") {
    // The data plane drives the state: SYN creates a syn flow; the client's ACK makes it
    // established; FIN or RST makes it closing. The table stores what it is told and
    // applies that state's timeout from the refresh time.
    auto t = make_table(64);
    const auto k = make_key(30);
    const uint32_t h = net::flow_hash(k);
    uint32_t now = 0;
    flow_entry* e = t->insert(k, h, make_value(1, flow_state::syn), now);
    REQUIRE(e != nullptr);

    now += 4'000; // before the syn timeout: ACK arrives
    e = t->lookup(k, h, now);
    REQUIRE(e != nullptr);
    CHECK(e->value.state == flow_state::syn);
    t->refresh(e, flow_state::established, now);
    CHECK(e->value.state == flow_state::established);

    // Well past the syn deadline, inside the established one.
    now += 200'000;
    e = t->lookup(k, h, now);
    REQUIRE(e != nullptr);
    t->refresh(e, flow_state::established, now); // traffic keeps it alive
    now += 299'999;
    e = t->lookup(k, h, now);
    REQUIRE(e != nullptr);

    // FIN: closing, with the short timeout from now on.
    t->refresh(e, flow_state::closing, now);
    CHECK(e->value.state == flow_state::closing);
    CHECK(t->lookup(k, h, now + timeouts.closing - 1) != nullptr);
    CHECK(t->lookup(k, h, now + timeouts.closing) == nullptr);
}

TEST_CASE("flow_table: deadlines compare correctly across the u32 clock wrap", "[flow]") {
    auto t = make_table(64);
    const auto k = make_key(40);
    const uint32_t h = net::flow_hash(k);
    const uint32_t t0 = 0xFFFFFFFFu - 1'000; // deadline lands past the wrap
    REQUIRE(t->insert(k, h, make_value(1, flow_state::syn), t0) != nullptr);
    CHECK(t->lookup(k, h, 0xFFFFFFFFu) != nullptr);
    CHECK(t->lookup(k, h, 0) != nullptr);
    CHECK(t->lookup(k, h, t0 + timeouts.syn - 1) != nullptr); // wrapped: 3998
    CHECK(t->lookup(k, h, t0 + timeouts.syn) == nullptr);

    // Refresh across the wrap.
    REQUIRE(t->insert(k, h, make_value(1, flow_state::established), 0xFFFFFF00u) != nullptr);
    flow_entry* e = t->lookup(k, h, 0x10u);
    REQUIRE(e != nullptr);
    t->refresh(e, flow_state::closing, 0x10u);
    CHECK(t->lookup(k, h, 0x10u + timeouts.closing - 1) != nullptr);
    CHECK(t->lookup(k, h, 0x10u + timeouts.closing) == nullptr);
}

TEST_CASE("flow_table: a single-bucket table evicts syn, refuses established", "[flow]") {
    // Capacity 8: one bucket, so "the key's bucket is full" is exactly 8 entries.
    const uint32_t h = 0x1234567u;
    SECTION("8 syn entries: the 9th evicts the one nearest its deadline") {
        auto t = make_table(8);
        REQUIRE(t->capacity() == 8);
        for (uint32_t i = 0; i < 8; ++i) {
            // Inserted at different times; key 3 is the oldest, so nearest its deadline.
            const uint32_t when = i == 3 ? 0 : 100 + i;
            REQUIRE(t->insert(make_key(i), h, make_value(i, flow_state::syn), when) != nullptr);
        }
        insert_outcome out{};
        flow_entry* e = t->insert(make_key(100), h, make_value(100, flow_state::syn), 200, &out);
        REQUIRE(e != nullptr);
        CHECK(out == insert_outcome::evicted_other);
        CHECK(t->stats().evictions == 1);
        CHECK(t->size() == 8);
        CHECK(t->lookup(make_key(3), h, 201) == nullptr);
        CHECK(t->lookup(make_key(100), h, 201) == e);
        for (uint32_t i : {0u, 1u, 2u, 4u, 5u, 6u, 7u}) {
            CHECK(t->lookup(make_key(i), h, 201) != nullptr);
        }
    }
    SECTION("8 established entries: the 9th is refused") {
        auto t = make_table(8);
        for (uint32_t i = 0; i < 8; ++i) {
            REQUIRE(t->insert(make_key(i), h, make_value(i), 0) != nullptr);
        }
        insert_outcome out{};
        CHECK(t->insert(make_key(100), h, make_value(100), 1, &out) == nullptr);
        CHECK(out == insert_outcome::full);
        CHECK(t->stats().insert_failures == 1);
        CHECK(t->stats().inserts == 8);
        CHECK(t->size() == 8);
    }
}

TEST_CASE("flow_table: eviction follows state changes: syn -> established is protected, "
          "established -> closing is not",
          "[flow]") {
    // The eviction choice reads a per-bucket copy of "established" kept by insert and
    // refresh; this checks the copy follows the entries through both.
    const uint32_t h = 0x1234567u;
    auto t = make_table(8);
    for (uint32_t i = 0; i < 8; ++i) {
        REQUIRE(t->insert(make_key(i), h, make_value(i, flow_state::syn), 0) != nullptr);
    }
    for (uint32_t i = 0; i < 8; ++i) {
        t->refresh(t->lookup(make_key(i), h, 1), flow_state::established, 1);
    }
    CHECK(t->insert(make_key(100), h, make_value(100, flow_state::syn), 2) == nullptr);
    CHECK(t->stats().insert_failures == 1);
    // One of them starts closing: it is the one that may go.
    t->refresh(t->lookup(make_key(5), h, 3), flow_state::closing, 3);
    insert_outcome out{};
    REQUIRE(t->insert(make_key(101), h, make_value(101, flow_state::syn), 4, &out) != nullptr);
    CHECK(out == insert_outcome::evicted_other);
    CHECK(t->lookup(make_key(5), h, 5) == nullptr);
    for (uint32_t i : {0u, 1u, 2u, 3u, 4u, 6u, 7u}) {
        CHECK(t->lookup(make_key(i), h, 5) != nullptr);
    }
}

TEST_CASE("flow_table: full buckets: reuse expired, evict syn/closing, refuse established",
          "[flow]") {
    // A key has two candidate buckets; 16 keys with one fabricated hash fill both.
    constexpr uint32_t both = 16;
    const uint32_t h = 0xabcdef01u;

    SECTION("16 syn entries: the 17th evicts the one nearest its deadline") {
        auto t = make_table(1024);
        for (uint32_t i = 0; i < both; ++i) {
            const uint32_t when = i == 11 ? 50 : 100 + i;
            insert_outcome out{};
            REQUIRE(t->insert(make_key(i), h, make_value(i, flow_state::syn), when, &out) !=
                    nullptr);
            REQUIRE(out == insert_outcome::inserted);
        }
        insert_outcome out{};
        REQUIRE(t->insert(make_key(99), h, make_value(99, flow_state::syn), 200, &out) != nullptr);
        CHECK(out == insert_outcome::evicted_other);
        CHECK(t->stats().evictions == 1);
        CHECK(t->lookup(make_key(11), h, 201) == nullptr);
        CHECK(t->lookup(make_key(99), h, 201) != nullptr);
        CHECK(t->size() == both);
    }
    SECTION("a closing entry is evicted before any established one") {
        auto t = make_table(1024);
        for (uint32_t i = 0; i < both; ++i) {
            const flow_state s = i == 5 ? flow_state::closing : flow_state::established;
            REQUIRE(t->insert(make_key(i), h, make_value(i, s), 0) != nullptr);
        }
        insert_outcome out{};
        REQUIRE(t->insert(make_key(99), h, make_value(99), 1, &out) != nullptr);
        CHECK(out == insert_outcome::evicted_other);
        CHECK(t->lookup(make_key(5), h, 2) == nullptr);
        for (uint32_t i = 0; i < both; ++i) {
            if (i != 5) {
                CHECK(t->lookup(make_key(i), h, 2) != nullptr);
            }
        }
    }
    SECTION("16 established entries: the 17th is refused, counted, nullptr") {
        auto t = make_table(1024);
        for (uint32_t i = 0; i < both; ++i) {
            REQUIRE(t->insert(make_key(i), h, make_value(i), 0) != nullptr);
        }
        insert_outcome out{};
        CHECK(t->insert(make_key(99), h, make_value(99), 1, &out) == nullptr);
        CHECK(out == insert_outcome::full);
        CHECK(t->stats().insert_failures == 1);
        CHECK(t->stats().evictions == 0);
        CHECK(t->size() == both);
        CHECK(t->lookup(make_key(99), h, 2) == nullptr);
    }
    SECTION("an expired slot is reused before anything is evicted") {
        auto t = make_table(1024);
        for (uint32_t i = 0; i < both; ++i) {
            // Key 7 is a syn flow from long ago; the others are fresh syn flows.
            const uint32_t when = i == 7 ? 0 : 9'000;
            REQUIRE(t->insert(make_key(i), h, make_value(i, flow_state::syn), when) != nullptr);
        }
        // At 10000 key 7 (deadline 5000) is dead, the others (deadline 14000) live.
        insert_outcome out{};
        REQUIRE(t->insert(make_key(99), h, make_value(99, flow_state::syn), 10'000, &out) !=
                nullptr);
        CHECK(out == insert_outcome::inserted);
        CHECK(t->stats().evictions == 0);
        CHECK(t->stats().expired == 1);
        CHECK(t->size() == both);
        for (uint32_t i = 0; i < both; ++i) {
            if (i != 7) {
                CHECK(t->lookup(make_key(i), h, 10'001) != nullptr);
            }
        }
        CHECK(t->lookup(make_key(7), h, 10'001) == nullptr);
    }
}

TEST_CASE("flow_table: keys sharing a primary bucket spill to their alternates", "[flow]") {
    // 40 keys whose hashes share the low bits (one primary bucket) but not the high
    // bits: 8 fit in the primary, the rest go to their own alternate buckets.
    auto t = make_table(4096);
    std::mt19937 rng(5);
    std::vector<uint32_t> hashes;
    for (uint32_t i = 0; i < 40; ++i) {
        const uint32_t h = (rng() << 12) | 0x123u;
        hashes.push_back(h);
        insert_outcome out{};
        REQUIRE(t->insert(make_key(i), h, make_value(i), 0, &out) != nullptr);
        REQUIRE(out == insert_outcome::inserted);
    }
    for (uint32_t i = 0; i < 40; ++i) {
        flow_entry* e = t->lookup(make_key(i), hashes[i], 1);
        REQUIRE(e != nullptr);
        CHECK(e->value.backend_id == i);
    }
    CHECK(t->size() == 40);
}

TEST_CASE("flow_table: a small table fills to high load before the first refusal", "[flow]") {
    // Random established flows into 1024 slots until one is refused. Exercises moving
    // entries to their other bucket; every flow inserted must still be found intact.
    for (uint32_t seed : {1u, 2u, 3u}) {
        auto t = make_table(1024);
        std::vector<net::flow_key> keys;
        uint32_t i = 0;
        for (;; ++i) {
            const auto k = make_key(i, seed);
            insert_outcome out{};
            if (t->insert(k, net::flow_hash(k, seed), make_value(i), 0, &out) == nullptr) {
                CHECK(out == insert_outcome::full);
                break;
            }
            keys.push_back(k);
        }
        const double load = double(keys.size()) / double(t->capacity());
        INFO("seed " << seed << ": first refusal at load " << load);
        CHECK(load >= 0.80);
        CHECK(t->size() == keys.size());
        for (uint32_t j = 0; j < keys.size(); ++j) {
            flow_entry* e = t->lookup(keys[j], net::flow_hash(keys[j], seed), 1);
            REQUIRE(e != nullptr);
            REQUIRE(e->value.backend_id == j);
        }
    }
}

TEST_CASE("flow_table: for_each and sweep see live entries; sweep frees expired ones", "[flow]") {
    auto t = make_table(256);
    for (uint32_t i = 0; i < 100; ++i) {
        const auto k = make_key(i);
        const flow_state s = i % 2 == 0 ? flow_state::syn : flow_state::established;
        REQUIRE(t->insert(k, net::flow_hash(k), make_value(i, s), 0) != nullptr);
    }
    std::set<uint32_t> seen;
    t->for_each(1, [&](const flow_entry& e) { seen.insert(e.value.backend_id); });
    CHECK(seen.size() == 100);

    // After the syn timeout, half are dead: for_each skips them without freeing.
    seen.clear();
    t->for_each(timeouts.syn, [&](const flow_entry& e) { seen.insert(e.value.backend_id); });
    CHECK(seen.size() == 50);
    CHECK(t->size() == 100);

    // Sweep in slices of 100 slots: 256 slots -> cursors 100, 200, then 0 (done).
    seen.clear();
    size_t cursor = 0;
    std::vector<size_t> cursors;
    do {
        cursor = t->sweep(cursor, 100, timeouts.syn,
                          [&](const flow_entry& e) { seen.insert(e.value.backend_id); });
        cursors.push_back(cursor);
    } while (cursor != 0);
    CHECK(cursors == std::vector<size_t>{100, 200, 0});
    CHECK(seen.size() == 50);
    CHECK(std::all_of(seen.begin(), seen.end(), [](uint32_t id) { return id % 2 == 1; }));
    CHECK(t->size() == 50);
    CHECK(t->stats().expired == 50);
}

TEST_CASE("flow_table: 1M random flows in a 2M table are all found", "[flow][scale]") {
    constexpr uint32_t flows = 1'000'000;
    auto t = make_table(2'000'000);
    REQUIRE(t->capacity() == 1 << 21);
    std::mt19937_64 rng(42);
    std::vector<net::flow_key> keys(flows);
    for (auto& k : keys) {
        const uint64_t r = rng();
        k.src = net::ip_addr::from_v4_be(uint32_t(r));
        k.dst = net::ip_addr::from_v4_be(htonl(0x0a0a0064u));
        k.src_port = uint16_t(r >> 32);
        k.dst_port = htons(443);
        k.proto = 6;
    }
    // Random 48-bit (address, port) pairs may repeat: count distinct keys.
    size_t inserted = 0;
    for (uint32_t i = 0; i < flows; ++i) {
        const uint32_t h = net::flow_hash(keys[i]);
        if (t->lookup(keys[i], h, 0) != nullptr) {
            continue; // a duplicate key drawn twice
        }
        insert_outcome out{};
        REQUIRE(t->insert(keys[i], h, make_value(i), 0, &out) != nullptr);
        REQUIRE(out == insert_outcome::inserted);
        ++inserted;
    }
    CHECK(t->size() == inserted);
    CHECK(inserted > flows - 100);
    CHECK(t->stats().evictions == 0);
    CHECK(t->stats().insert_failures == 0);
    size_t found = 0;
    for (uint32_t i = 0; i < flows; ++i) {
        found += t->lookup(keys[i], net::flow_hash(keys[i]), 1) != nullptr;
    }
    CHECK(found == flows);
}
