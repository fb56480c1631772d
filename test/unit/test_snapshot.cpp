// Snapshots: service lookup, shares, stable backend ids, state-driven membership.
#include "snapshot/snapshot.hpp"
#include "support/configs.hpp"

#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <vector>

using namespace evenflow;
using evenflow::testing::backend_by_key;
using evenflow::testing::basic_config_text;
using evenflow::testing::ip;
using evenflow::testing::load_or_fail;

TEST_CASE("snapshot: services are found by VIP, port and protocol") {
    config::config cfg = load_or_fail(basic_config_text());
    backend_registry registry;
    build_result built = build_snapshot(cfg, registry, {}, 7);
    REQUIRE(built.value);
    const snapshot& s = *built.value;
    CHECK(s.version == 7);
    const snapshot_service* web = s.find_service(ip("10.10.0.100"), htons(80), 6);
    REQUIRE(web != nullptr);
    CHECK(web->name == "web");
    CHECK(web->table_size() == 65537);
    CHECK(s.find_service(ip("10.10.0.100"), htons(81), 6) == nullptr);
    CHECK(s.find_service(ip("10.10.0.101"), htons(80), 6) == nullptr);
    CHECK(s.find_service(ip("10.10.0.100"), htons(80), 17) == nullptr);
    CHECK(s.is_vip(ip("10.10.0.100")));
    CHECK_FALSE(s.is_vip(ip("10.10.0.2")));
}

TEST_CASE("snapshot: expected shares follow weights, predicted shares follow the table") {
    config::config cfg = load_or_fail(basic_config_text());
    backend_registry registry;
    auto s = build_snapshot(cfg, registry, {}, 1).value;
    REQUIRE(s);
    REQUIRE(s->backends.size() == 3);
    CHECK(backend_by_key(*s, "10.20.0.11:8080").expected_share == Approx(0.25));
    CHECK(backend_by_key(*s, "10.20.0.13:8080").expected_share == Approx(0.5));
    uint32_t total_slots = 0;
    for (const auto& b : s->backends) {
        CHECK(b.state == backend_state::unknown);
        CHECK(b.predicted_share == Approx(b.expected_share).margin(0.005));
        total_slots += b.slots;
    }
    CHECK(total_slots == 65537);
    // Every slot names a backend of this snapshot.
    for (uint32_t id : *s->services[0].table) {
        REQUIRE(s->find_backend(id) != nullptr);
    }
}

TEST_CASE("snapshot: backend ids are stable across builds and listing order") {
    config::config a = load_or_fail(basic_config_text());
    config::config b = load_or_fail(
        basic_config_text("", "  { address = \"10.20.0.13\", port = 8080, weight = 2 },\n"
                              "  { address = \"10.20.0.11\", port = 8080, weight = 1 },\n"
                              "  { address = \"10.20.0.12\", port = 8080, weight = 1 },\n"));
    backend_registry registry;
    auto sa = build_snapshot(a, registry, {}, 1).value;
    auto sb = build_snapshot(b, registry, {}, 2).value;
    for (const char* key : {"10.20.0.11:8080", "10.20.0.12:8080", "10.20.0.13:8080"}) {
        CHECK(backend_by_key(*sa, key).id == backend_by_key(*sb, key).id);
    }
    // Same backend set, any order: the same Maglev table (what ECMP peers rely on).
    CHECK(*sa->services[0].table == *sb->services[0].table);
    CHECK(registry.assigned() == 3);
}

TEST_CASE("snapshot: states decide Maglev membership") {
    config::config cfg = load_or_fail(
        basic_config_text("  { address = \"10.20.0.14\", port = 8080, weight = 0 },\n"));
    backend_registry registry;
    uint32_t down_id = registry.id_for("web", ip("10.20.0.11"), 8080);
    uint32_t disabled_id = registry.id_for("web", ip("10.20.0.12"), 8080);
    auto s =
        build_snapshot(cfg, registry,
                       {{down_id, backend_state::down}, {disabled_id, backend_state::disabled}}, 1)
            .value;
    REQUIRE(s);
    CHECK(backend_by_key(*s, "10.20.0.11:8080").state == backend_state::down);
    CHECK(backend_by_key(*s, "10.20.0.12:8080").state == backend_state::disabled);
    CHECK(backend_by_key(*s, "10.20.0.14:8080").state == backend_state::draining);
    const auto& only = backend_by_key(*s, "10.20.0.13:8080");
    CHECK(only.slots == 65537);
    // Expected share is what the operator configured, not what happens to be up.
    CHECK(only.expected_share == Approx(0.5));
    for (uint32_t id : *s->services[0].table) {
        REQUIRE(id == only.id);
    }
    CHECK(s->services[0].has_backend_up);

    uint32_t last = only.id;
    auto none = build_snapshot(cfg, registry,
                               {{down_id, backend_state::down},
                                {disabled_id, backend_state::down},
                                {last, backend_state::down}},
                               2)
                    .value;
    CHECK_FALSE(none->services[0].has_backend_up);
    CHECK(none->services[0].pick(12345) == balance::no_backend);
}

TEST_CASE("snapshot: replies without an entry get the VIP their forward packets had") {
    std::string text = basic_config_text() + R"(
[[services]]
name = "web-alt"
vip = "10.10.0.101"
port = 80
protocol = "tcp"
pool = "web"
table_size = 65537
)";
    config::config cfg = load_or_fail(text);
    backend_registry registry;
    auto s = build_snapshot(cfg, registry, {}, 1).value;
    // 10.20.0.11:8080 serves two VIPs: the service whose Maglev pick for the client is
    // this backend is the one. Checked against the forward pick for 2,000 clients.
    size_t resolved = 0, ambiguous = 0;
    for (uint16_t port = 20000; port < 22000; ++port) {
        for (const snapshot_service& svc : s->services) {
            net::flow_key fwd;
            fwd.src = ip("198.51.100.7");
            fwd.src_port = htons(port);
            fwd.dst = svc.vip;
            fwd.dst_port = svc.port_be;
            fwd.proto = 6;
            const snapshot_backend* b = s->find_backend(svc.pick(svc.flow_hash(fwd)));
            REQUIRE(b != nullptr);
            const snapshot_service* back =
                s->service_of_reply(b->address, b->port_be, fwd.src, fwd.src_port);
            if (back == nullptr) {
                ++ambiguous; // both services would send this client to this backend
                continue;
            }
            CHECK(back == &svc);
            ++resolved;
        }
    }
    CHECK(resolved > 2300);
    // Both picks agree with probability sum(share^2) = 0.375 for weights 1, 1, 2.
    CHECK(ambiguous < 1700);
    CHECK(s->service_of_reply(ip("10.20.0.11"), htons(9090), ip("198.51.100.7"), htons(1)) ==
          nullptr);

    config::config single = load_or_fail(basic_config_text());
    auto s1 = build_snapshot(single, registry, {}, 2).value;
    for (uint16_t port = 20000; port < 20100; ++port) {
        const snapshot_service* owner =
            s1->service_of_reply(ip("10.20.0.11"), htons(8080), ip("198.51.100.7"), htons(port));
        REQUIRE(owner != nullptr); // one service: whatever the pick
        CHECK(owner->name == "web");
    }
}

namespace {
// Client 192.0.2.10's flow key toward the web VIP.
net::flow_key client_key(uint16_t sport) {
    net::flow_key k;
    k.src = ip("192.0.2.10");
    k.dst = ip("10.10.0.100");
    k.src_port = htons(sport);
    k.dst_port = htons(80);
    k.proto = 6;
    return k;
}
} // namespace

TEST_CASE("snapshot: src_ip hashing ignores ports") {
    std::string text = basic_config_text() + "hash = \"src_ip\"\n";
    config::config cfg = load_or_fail(text);
    backend_registry registry;
    auto s = build_snapshot(cfg, registry, {}, 1).value;
    const snapshot_service& svc = s->services[0];
    net::flow_key a = client_key(40000);
    net::flow_key b = a;
    b.src_port = htons(50000);
    CHECK(svc.flow_hash(a) == svc.flow_hash(b));
    CHECK(net::flow_hash(a) != net::flow_hash(b));
}

TEST_CASE("snapshot: src_ip_port hashing follows the client's address and port, by weight") {
    std::string text = basic_config_text() + "hash = \"src_ip_port\"\n";
    config::config cfg = load_or_fail(text);
    backend_registry registry;
    auto s = build_snapshot(cfg, registry, {}, 1).value;
    const snapshot_service& svc = s->services[0];
    net::flow_key a = client_key(40000);
    net::flow_key other_vip = a;
    other_vip.dst = ip("10.10.0.101");
    other_vip.dst_port = htons(443);
    CHECK(svc.flow_hash(a) == svc.flow_hash(other_vip)); // the client alone decides
    // One client's ports spread over the pool by weight (1, 1, 2): chi-square, 2 d.o.f.
    std::map<uint32_t, double> count;
    const int n = 40000;
    for (int p = 0; p < n; ++p) {
        net::flow_key k = a;
        k.src_port = htons(uint16_t(1024 + p));
        ++count[svc.pick(svc.flow_hash(k))];
    }
    double chi2 = 0;
    for (const auto& b : s->backends) {
        double expected = n * (b.weight / 4.0);
        chi2 += (count[b.id] - expected) * (count[b.id] - expected) / expected;
    }
    CHECK(count.size() == 3);
    CHECK(chi2 < 13.8); // p = 0.001
}

namespace {

// Chi-square of `count` (backend id -> connections) against the pool's weights.
double chi2_by_weight(const snapshot& s, std::map<uint32_t, double>& count, double n) {
    double total_weight = 0, chi2 = 0;
    for (const auto& b : s.backends) {
        total_weight += b.weight;
    }
    for (const auto& b : s.backends) {
        double expected = n * b.weight / total_weight;
        chi2 += (count[b.id] - expected) * (count[b.id] - expected) / expected;
    }
    return chi2;
}

} // namespace

TEST_CASE("snapshot: tuples aimed at one backend without the seed spread by weight with it") {
    // An attacker who can compute the pick (the public all-zero seed here; before the
    // seed, an unkeyed CRC32-C) crafts 4,000 connections that all land on 10.20.0.11.
    // Under the fleet's secret seed the same tuples land by weight (1, 1, 2).
    for (const char* mode : {"5tuple", "src_ip", "src_ip_port"}) {
        INFO("hash = " << mode);
        std::string text = basic_config_text() + fmt::format("hash = \"{}\"\n", mode);
        auto cfg = std::make_shared<const config::config>(load_or_fail(text));
        backend_registry registry;
        auto public_pick = build_snapshot(cfg, registry, {}, 1, {}).value;
        build_options keyed;
        keyed.fallback_seed = *net::hash_seed::parse("5be1c0ffee00d15ea5e0123456789abc");
        auto secret_pick = build_snapshot(cfg, registry, {}, 1, keyed).value;
        const snapshot_service& aimed = public_pick->services[0];
        REQUIRE(!aimed.backend_indexes.empty());
        REQUIRE(public_pick->backends[aimed.backend_indexes[0]].key() == "10.20.0.11:8080");
        const uint32_t target = public_pick->backends[aimed.backend_indexes[0]].id;
        std::vector<net::flow_key> crafted;
        uint32_t x = 1;
        while (crafted.size() < 4000) {
            x = x * 1664525u + 1013904223u; // sources from 198.18.0.0/15, any port
            net::flow_key k;
            k.src = net::ip_addr::from_v4_be(htonl(0xc6120000u | (x >> 15)));
            k.dst = ip("10.10.0.100");
            k.src_port = htons(uint16_t(1024 + x % 60000));
            k.dst_port = htons(80);
            k.proto = 6;
            if (aimed.pick(aimed.flow_hash(k)) == target) {
                crafted.push_back(k);
            }
        }
        std::map<uint32_t, double> count;
        const snapshot_service& svc = secret_pick->services[0];
        for (const auto& k : crafted) {
            ++count[svc.pick(svc.flow_hash(k))];
        }
        CHECK(count.size() == 3);
        CHECK(chi2_by_weight(*secret_pick, count, double(crafted.size())) < 13.8); // p = 0.001
        // And another seed picks otherwise again: seeds are keys, not offsets.
        build_options other;
        other.fallback_seed = *net::hash_seed::parse("00000000000000000000000000000001");
        auto other_pick = build_snapshot(cfg, registry, {}, 1, other).value;
        size_t same = 0;
        for (const auto& k : crafted) {
            same += other_pick->services[0].pick(other_pick->services[0].flow_hash(k)) ==
                    svc.pick(svc.flow_hash(k));
        }
        // Two independent picks by weight agree with probability .25^2 + .25^2 + .5^2.
        CHECK(same < size_t(0.375 * 4000 + 200));
        CHECK(same > size_t(0.375 * 4000 - 200));
    }
}

TEST_CASE("snapshot: the config's hash_seed wins over the daemon's generated one") {
    std::string text = basic_config_text();
    text.replace(text.find("flow_capacity = 65536"), 21,
                 "flow_capacity = 65536\nhash_seed = \"5be1c0ffee00d15ea5e0123456789abc\"");
    auto with_seed = std::make_shared<const config::config>(load_or_fail(text));
    auto without = std::make_shared<const config::config>(load_or_fail(basic_config_text()));
    build_options generated;
    generated.fallback_seed = *net::hash_seed::parse("00000000000000000000000000000007");
    backend_registry registry;
    auto a = build_snapshot(with_seed, registry, {}, 1, generated).value;
    auto b =
        build_snapshot(without, registry, {}, 1,
                       {nullptr, true, *net::hash_seed::parse("5be1c0ffee00d15ea5e0123456789abc")})
            .value;
    for (uint16_t p = 1024; p < 1124; ++p) {
        net::flow_key k = client_key(p);
        CHECK(a->services[0].flow_hash(k) == b->services[0].flow_hash(k));
    }
}
