// Who opens the connections: the workers' heavy-hitter sketches, their hand-over to
// the control thread, and the window the skew detector asks.
#include "control/clients.hpp"
#include "flow/client_sketch.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <vector>

using namespace evenflow;
using flow::client_event;
using flow::client_sketch;
using flow::client_sketches;

namespace {

net::ip_addr addr(const char* text) {
    return *net::ip_addr::parse(text);
}

net::ip_addr v4(uint32_t host_order) {
    return net::ip_addr::from_v4_be(__builtin_bswap32(host_order));
}

std::optional<client_sketch::slot> find(const client_sketch& s, const net::ip_addr& a,
                                        uint32_t tag) {
    std::optional<client_sketch::slot> found;
    s.for_each([&](const client_sketch::slot& slot) {
        if (slot.tag == tag && slot.client == a) {
            found = slot;
        }
    });
    return found;
}

// Seals `sk` as the control thread does and adds its buffer to the window.
void seal_into(client_sketches& sk, control::client_window& w,
               std::chrono::steady_clock::time_point at) {
    sk.request_seal();
    sk.poll(); // the worker's next poll
    REQUIRE(sk.sealed_ready());
    const client_sketches::buffer* sealed = &sk.sealed();
    w.add(at, {&sealed, 1});
    sk.release_sealed();
}

} // namespace

TEST_CASE("client sketch: networks are /24 for IPv4 and /64 for IPv6") {
    CHECK(flow::client_network(addr("198.18.9.9")) == addr("198.18.9.0"));
    CHECK(flow::client_network_text(flow::client_network(addr("198.18.9.9"))) == "198.18.9.0/24");
    CHECK(flow::client_network(addr("2001:db8:1:2:3:4:5:6")) == addr("2001:db8:1:2::"));
    CHECK(flow::client_network_text(addr("2001:db8:1:2::")) == "2001:db8:1:2::/64");
}

TEST_CASE("client sketch: heavy clients are held under a flood of distinct ones, never "
          "overstated by their lower bound") {
    // 8 heavy clients with 2% of the events each, among 300,000 events from 200,000
    // distinct addresses: every heavy one holds its place (more than 1/4,096 of the
    // events), and count - error <= truth <= count.
    client_sketch s(7);
    std::mt19937_64 rng(3);
    std::map<uint32_t, uint32_t> truth;
    const uint32_t backend = 3;
    const int events = 300'000;
    for (int i = 0; i < events; ++i) {
        uint32_t client = (i % 50 < 8) ? 0x0a0a0900u + uint32_t(i % 50) // 10.10.9.0-7
                                       : 0xc6120000u + uint32_t(rng() % 200'000);
        ++truth[client];
        s.add(v4(client), backend);
    }
    CHECK(s.events() == uint64_t(events));
    for (uint32_t h = 0; h < 8; ++h) {
        const uint32_t client = 0x0a0a0900u + h;
        const auto slot = find(s, v4(client), backend);
        REQUIRE(slot.has_value());
        CHECK(slot->count >= truth[client]);
        CHECK(slot->lower_bound() <= truth[client]);
        // Error at most the set's share: far below the client's 6,000.
        CHECK(slot->lower_bound() >= truth[client] - 2 * events / client_sketch::capacity);
    }
    // Every held key's lower bound is a true lower bound.
    size_t held = 0;
    s.for_each([&](const client_sketch::slot& slot) {
        ++held;
        CHECK(slot.lower_bound() <= truth[__builtin_bswap32(slot.client.v4_be())]);
    });
    CHECK(held == client_sketch::capacity);
    s.clear();
    CHECK(s.events() == 0);
    CHECK(find(s, v4(0x0a0a0900u), backend) == std::nullopt);
}

TEST_CASE("client sketches: each event counts the address and its network, per backend") {
    client_sketches sk(1);
    for (int i = 0; i < 10; ++i) {
        sk.count(client_event::syn, addr("198.18.9.9"), 4);
    }
    sk.count(client_event::syn, addr("198.18.9.10"), 4);
    sk.count(client_event::verified, addr("198.18.9.9"), 5);
    sk.request_seal();
    CHECK_FALSE(sk.sealed_ready()); // not before the worker's poll
    sk.poll();
    REQUIRE(sk.sealed_ready());
    const auto& syns = sk.sealed()[size_t(client_event::syn)];
    const auto& verified = sk.sealed()[size_t(client_event::verified)];
    CHECK(find(syns, addr("198.18.9.9"), 4)->count == 10);
    CHECK(find(syns, addr("198.18.9.10"), 4)->count == 1);
    CHECK(find(syns, addr("198.18.9.0"), 4 | client_sketch::network_bit)->count == 11);
    CHECK(find(syns, addr("198.18.9.9"), 5) == std::nullopt);
    CHECK(find(verified, addr("198.18.9.9"), 5)->count == 1);
    CHECK(find(verified, addr("198.18.9.0"), 5 | client_sketch::network_bit)->count == 1);
    // What the worker counts now goes to the other buffer.
    sk.count(client_event::syn, addr("198.18.9.9"), 4);
    CHECK(find(syns, addr("198.18.9.9"), 4)->count == 10);
    // No second seal until this one is taken.
    sk.request_seal();
    sk.poll();
    CHECK(find(syns, addr("198.18.9.9"), 4)->count == 10);
    sk.release_sealed();
    CHECK_FALSE(sk.sealed_ready());
    CHECK(syns.events() == 0);
    sk.request_seal();
    sk.poll();
    REQUIRE(sk.sealed_ready());
    CHECK(find(sk.sealed()[size_t(client_event::syn)], addr("198.18.9.9"), 4)->count == 1);
}

TEST_CASE("client sketches: a seal acknowledged late is taken at the next tick, and a new "
          "one asked at once") {
    client_sketches sk(3);
    sk.count(client_event::verified, addr("10.10.9.9"), 2);
    sk.request_seal(); // tick 1: the worker does not poll in time
    CHECK(sk.pending());
    CHECK_FALSE(sk.sealed_ready());
    sk.poll(); // ...it polls late, after tick 1 gave up
    sk.count(client_event::verified, addr("10.10.9.9"), 2); // in the other buffer now
    // Tick 2 takes the late buffer first, then asks for a fresh seal.
    REQUIRE(sk.sealed_ready());
    CHECK(find(sk.sealed()[size_t(client_event::verified)], addr("10.10.9.9"), 2)->count == 1);
    sk.release_sealed();
    CHECK_FALSE(sk.pending());
    sk.request_seal();
    CHECK(sk.pending());
    sk.poll();
    REQUIRE(sk.sealed_ready());
    CHECK(find(sk.sealed()[size_t(client_event::verified)], addr("10.10.9.9"), 2)->count == 1);
    sk.release_sealed();
    CHECK_FALSE(sk.pending());
}

TEST_CASE("client sketches: a worker thread counting while the control thread seals loses "
          "and doubles nothing") {
    client_sketches sk(9);
    std::atomic<bool> done{false};
    const uint64_t events = 2'000'000;
    std::thread worker([&] {
        for (uint64_t i = 0; i < events; ++i) {
            sk.count(client_event::syn, v4(0x0a000000u + uint32_t(i % 64)), 1 + uint32_t(i % 3));
            if (i % 64 == 0) {
                sk.poll();
            }
        }
        done = true;
        while (done.load()) {
            sk.poll(); // keeps acknowledging until the control thread has taken the last
        }
    });
    uint64_t seen = 0;
    auto take = [&] {
        sk.request_seal();
        while (!sk.sealed_ready()) {
            std::this_thread::yield();
        }
        // Every event is counted twice: the address and its network.
        seen += sk.sealed()[size_t(client_event::syn)].events() / 2;
        sk.release_sealed();
    };
    while (!done.load()) {
        take();
    }
    take(); // the buffer in use when the worker finished
    done = false;
    worker.join();
    CHECK(seen == events);
}

TEST_CASE("client window: counts summed over seconds, forgotten once a window old") {
    control::client_window w(std::chrono::seconds(10));
    client_sketches sk(2);
    auto t = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    for (int second = 0; second < 5; ++second) {
        for (int i = 0; i < 100; ++i) {
            sk.count(client_event::verified, addr("10.10.9.9"), 3);
        }
        sk.count(client_event::verified, addr("10.10.9.200"), 1);
        t += std::chrono::seconds(1);
        seal_into(sk, w, t);
    }
    using control::client_key;
    CHECK(w.counts(client_key{addr("10.10.9.9"), 3})[size_t(client_event::verified)].count == 500);
    CHECK(w.counts(client_key{addr("10.10.9.0"),
                              3 | client_sketch::network_bit})[size_t(client_event::verified)]
              .count == 500);
    auto heavy = w.of_backend(3, false, client_event::verified, 100, 5);
    REQUIRE(heavy.size() == 1);
    CHECK(heavy[0].key.text() == "10.10.9.9");
    auto nets = w.of_backend(3, true, client_event::verified, 1, 5);
    REQUIRE(nets.size() == 1);
    CHECK(nets[0].key.text() == "10.10.9.0/24");
    const uint32_t backends[] = {1, 3};
    auto top = w.top(backends, false, 10);
    REQUIRE(top.size() == 2);
    CHECK(top[0].text() == "10.10.9.9");
    CHECK(top[0].total[size_t(client_event::verified)].count == 500);
    CHECK(top[1].text() == "10.10.9.200");
    REQUIRE(top[1].backends.size() == 1);
    CHECK(top[1].backends[0].first == 1);
    // Quiet seconds: the counts leave with the window.
    for (int second = 0; second < 10; ++second) {
        t += std::chrono::seconds(1);
        seal_into(sk, w, t);
    }
    CHECK(w.keys_held() == 0);
    CHECK(w.of_backend(3, false, client_event::verified, 1, 5).empty());
}

TEST_CASE("client window: memory stays bounded under a flood of distinct sources, and heavy "
          "clients stay") {
    // An hour's window of one-second ticks, each a full sketch of distinct spoofed
    // sources plus one heavy client: at most 60 buckets of 2,048 keys per event kind.
    control::client_window w(std::chrono::hours(1));
    client_sketches sk(4);
    auto t = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    uint32_t next = 0xc6120000u;
    for (int second = 0; second < 200; ++second) {
        for (int i = 0; i < 20'000; ++i) {
            sk.count(client_event::syn, v4(next++), 2);
            if (i % 10 == 0) {
                sk.count(client_event::syn, addr("10.10.9.9"), 2);
            }
        }
        t += std::chrono::seconds(1);
        seal_into(sk, w, t);
    }
    CHECK(w.keys_held() <=
          control::client_window::max_buckets * 2 * control::client_window::kept_per_second);
    auto heavy = w.of_backend(2, false, client_event::syn, 1, 1);
    REQUIRE(heavy.size() == 1);
    CHECK(heavy[0].key.text() == "10.10.9.9");
    // 2,000 a second for 200 s, all within the window, counted without loss.
    CHECK(heavy[0].counts[size_t(client_event::syn)].lower_bound() <= 400'000);
    CHECK(heavy[0].counts[size_t(client_event::syn)].count >= 400'000);
}
