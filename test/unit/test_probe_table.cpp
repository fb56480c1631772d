// The registry of health probes in flight that workers match replies against.
#include "net/probe_table.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

using namespace evenflow;
using net::probe_table;

namespace {

net::ip_addr addr(const char* text) {
    return *net::ip_addr::parse(text);
}

} // namespace

TEST_CASE("probe table: a reply matches only its probe's endpoint, port and number") {
    probe_table t;
    auto b1 = addr("10.20.0.11");
    auto ticket = t.open(b1, 8080, 0x12345679);
    REQUIRE(ticket);
    CHECK(net::is_probe_port(ticket->port));
    CHECK(t.in_flight() == 1);
    const int slot = t.match(b1, 8080, ticket->port, 0x12345679);
    CHECK(slot == ticket->slot);
    // Anything else is no answer: another number, endpoint, backend port, probe port.
    CHECK(t.match(b1, 8080, ticket->port, 0x12345678) == -1);
    CHECK(t.match(addr("10.20.0.12"), 8080, ticket->port, 0x12345679) == -1);
    CHECK(t.match(b1, 8081, ticket->port, 0x12345679) == -1);
    CHECK(t.match(b1, 8080, uint16_t(ticket->port + 1), 0x12345679) == -1);
    CHECK(t.match(b1, 8080, 80, 0x12345679) == -1);
    CHECK(t.match(b1, 8080, ticket->port, 0) == -1); // a free slot's 0 is never a match
    // Closed: no longer answered.
    t.close(*ticket);
    CHECK(t.in_flight() == 0);
    CHECK(t.match(b1, 8080, ticket->port, 0x12345679) == -1);
    t.close(*ticket); // twice is harmless
    CHECK(t.in_flight() == 0);
    // 0 is never expected (it marks a free slot).
    CHECK_FALSE(t.open(b1, 8080, 0));
}

TEST_CASE("probe table: consecutive probes take different ports; full at 32,000") {
    probe_table t;
    std::set<uint16_t> ports;
    std::vector<probe_table::ticket> tickets;
    for (uint32_t i = 0; i < probe_table::capacity; ++i) {
        auto ticket = t.open(addr("10.20.0.11"), uint16_t(1 + i % 60000), i + 1);
        REQUIRE(ticket);
        if (i < net::probe_ports) {
            ports.insert(ticket->port);
        }
        tickets.push_back(*ticket);
    }
    CHECK(ports.size() == net::probe_ports);
    CHECK(t.in_flight() == probe_table::capacity);
    CHECK_FALSE(t.open(addr("10.20.0.11"), 1, 99));
    // Every probe still matches its own reply.
    for (uint32_t i = 0; i < probe_table::capacity; i += 997) {
        CHECK(t.match(addr("10.20.0.11"), uint16_t(1 + i % 60000), tickets[i].port, i + 1) ==
              tickets[i].slot);
    }
    // One closed: room for one more, in that slot.
    t.close(tickets[1234]);
    auto again = t.open(addr("10.20.0.99"), 80, 7);
    REQUIRE(again);
    CHECK(*again == tickets[1234]);
}

TEST_CASE("probe table: a lost reply marks its own probe only, until the slot is reused") {
    probe_table t;
    auto a = t.open(addr("10.20.0.11"), 8080, 1001);
    auto b = t.open(addr("10.20.0.12"), 8080, 2002);
    REQUIRE(a);
    REQUIRE(b);
    int slot = t.match(addr("10.20.0.11"), 8080, a->port, 1001);
    t.mark_lost(a->port, slot, 1001);
    CHECK(t.reply_lost(*a));
    CHECK_FALSE(t.reply_lost(*b));
    // The slot reused by another probe carries no mark of the old one.
    t.close(*a);
    probe_table::ticket c{};
    for (uint32_t i = 0; i < net::probe_ports; ++i) {
        c = *t.open(addr("10.20.0.13"), 8080, 3000 + i);
        if (c == *a) {
            break;
        }
    }
    REQUIRE(c == *a);
    CHECK_FALSE(t.reply_lost(c));
}

TEST_CASE("probe table: a reader never matches an endpoint with another probe's number") {
    // The control thread rewrites one slot between two probes while a worker matches
    // replies: a reply must match only an endpoint and number that were open together.
    probe_table t;
    const auto b1 = addr("10.20.0.11"), b2 = addr("10.20.0.12");
    // Fill the table, then free one port's slots: every open lands on that port's
    // first slot.
    std::vector<probe_table::ticket> all;
    while (auto o = t.open(addr("10.20.0.99"), 1, 5)) {
        all.push_back(*o);
    }
    const uint16_t port = all.front().port;
    for (const auto& k : all) {
        if (k.port == port) {
            t.close(k);
        }
    }
    std::atomic<bool> done{false};
    std::atomic<uint64_t> wrong{0}, right{0};
    std::thread reader([&] {
        while (!done.load(std::memory_order_relaxed)) {
            // b1 only ever expects 111, b2 only 222.
            wrong += t.match(b1, 8080, port, 222) >= 0;
            wrong += t.match(b2, 8080, port, 111) >= 0;
            right += t.match(b1, 8080, port, 111) >= 0;
        }
    });
    for (int i = 0; i < 100'000; ++i) {
        const bool one = i % 2 == 0;
        auto o = t.open(one ? b1 : b2, 8080, one ? 111 : 222);
        REQUIRE(o);
        REQUIRE(o->port == port);
        t.close(*o);
    }
    done = true;
    reader.join();
    CHECK(wrong.load() == 0);
    INFO("matches of the open probe seen: " << right.load());
}
