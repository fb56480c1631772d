// Micro-benchmarks of the pure hot-path pieces: Maglev build, flow-table lookup, and
// the per-packet path (parse + lookup + NAT). Figures, not pass/fail.
//
// Runs with the usual Google Benchmark flags, e.g.
//   build/bench/bench_micro --benchmark_filter=flow_lookup --benchmark_repetitions=3
// Large tables are built once per size and reused by every benchmark that needs them.
#include "balance/maglev.hpp"
#include "flow/flow_table.hpp"
#include "net/flow_key.hpp"
#include "net/nat.hpp"
#include "net/parse.hpp"

#include <benchmark/benchmark.h>

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

using namespace evenflow;

namespace {

constexpr size_t burst = 32;
constexpr uint32_t now_ms = 1'000;

// SplitMix64: fast, seedable, good enough for synthetic traffic.
struct splitmix {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
};

// ---------------------------------------------------------------------------------
// (1) Maglev table build.

void maglev_build(benchmark::State& state) {
    const auto n = uint32_t(state.range(0));
    std::vector<balance::maglev_backend> backends;
    for (uint32_t i = 0; i < n; ++i) {
        backends.push_back(
            {i + 1, "10.20." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":8080",
             1});
    }
    for (auto _ : state) {
        auto table = balance::build_maglev_table(backends, 65537);
        benchmark::DoNotOptimize(table.data());
    }
    state.counters["backends"] = n;
}
BENCHMARK(maglev_build)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

void maglev_build_weighted(benchmark::State& state) {
    const auto n = uint32_t(state.range(0));
    splitmix rng{7};
    std::vector<balance::maglev_backend> backends;
    for (uint32_t i = 0; i < n; ++i) {
        backends.push_back(
            {i + 1, "backend-" + std::to_string(i), uint32_t(rng.next() % 1000) + 1});
    }
    for (auto _ : state) {
        auto table = balance::build_maglev_table(backends, 65537);
        benchmark::DoNotOptimize(table.data());
    }
}
BENCHMARK(maglev_build_weighted)->Arg(1000)->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------------
// Synthetic flows: client i -> VIP:443, established, in a table sized 1.25 x flows.

net::flow_key client_key(uint64_t r) {
    net::flow_key k;
    k.src = net::ip_addr::from_v4_be(uint32_t(r));
    k.dst = net::ip_addr::from_v4_be(htonl(0x0a0a0064u)); // 10.10.0.100
    k.src_port = uint16_t(r >> 32);
    k.dst_port = htons(443);
    k.proto = 6;
    return k;
}

struct flow_set {
    std::unique_ptr<flow::flow_table> table;
    std::vector<net::flow_key> keys; // the flows in the table
    // The traffic: keys drawn at random from `keys`, read in order like an RX ring.
    std::vector<net::flow_key> trace;
    // The same traffic as 64-byte Ethernet/IPv4/TCP frames (pass (3)).
    std::vector<std::array<uint8_t, 64>> frames;
};

uint16_t fold(uint32_t sum) {
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return uint16_t(sum);
}

uint32_t sum16(const uint8_t* p, size_t len, uint32_t sum = 0) {
    for (size_t i = 0; i + 1 < len; i += 2) {
        sum += uint32_t(p[i]) << 8 | p[i + 1];
    }
    if (len & 1) {
        sum += uint32_t(p[len - 1]) << 8;
    }
    return sum;
}

// A client's ACK to the VIP, with valid IPv4 and TCP checksums, padded to 64 bytes.
std::array<uint8_t, 64> build_frame(const net::flow_key& k) {
    std::array<uint8_t, 64> f{};
    uint8_t* eth = f.data();
    const uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
    const uint8_t src_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
    std::memcpy(eth, dst_mac, 6);
    std::memcpy(eth + 6, src_mac, 6);
    eth[12] = 0x08;
    eth[13] = 0x00;
    uint8_t* ip = eth + 14;
    ip[0] = 0x45;
    ip[3] = 40;   // total length: 20 + 20
    ip[6] = 0x40; // DF
    ip[8] = 64;   // TTL
    ip[9] = 6;    // TCP
    std::memcpy(ip + 12, &k.src.bytes[12], 4);
    std::memcpy(ip + 16, &k.dst.bytes[12], 4);
    const uint16_t ipsum = uint16_t(~fold(sum16(ip, 20)));
    ip[10] = uint8_t(ipsum >> 8);
    ip[11] = uint8_t(ipsum);
    uint8_t* tcp = ip + 20;
    std::memcpy(tcp, &k.src_port, 2);
    std::memcpy(tcp + 2, &k.dst_port, 2);
    tcp[7] = 1;       // seq
    tcp[11] = 1;      // ack
    tcp[12] = 5 << 4; // data offset
    tcp[13] = 0x10;   // ACK
    tcp[14] = 0xff;   // window
    uint32_t pseudo = sum16(ip + 12, 8) + 6 + 20;
    const uint16_t tsum = uint16_t(~fold(sum16(tcp, 20, pseudo)));
    tcp[16] = uint8_t(tsum >> 8);
    tcp[17] = uint8_t(tsum);
    return f;
}

// Built on first use, kept for the process: the 16M table takes seconds to fill.
flow_set& flows_of(size_t n, bool with_frames) {
    static std::map<size_t, flow_set> sets;
    flow_set& s = sets[n];
    if (!s.table) {
        s.table = flow::flow_table::create(n + n / 4, {});
        if (!s.table) {
            std::fprintf(stderr, "bench: cannot allocate a flow table for %zu flows\n", n);
            std::abort();
        }
        splitmix rng{n};
        s.keys.reserve(n);
        while (s.keys.size() < n) {
            const net::flow_key k = client_key(rng.next());
            const uint32_t h = net::flow_hash(k);
            if (s.table->lookup(k, h, now_ms) != nullptr) {
                continue; // drew the same (address, port) twice
            }
            flow::flow_value v;
            v.nat_addr =
                net::ip_addr::from_v4_be(htonl(0x0a140000u + uint32_t(s.keys.size() % 100)));
            v.nat_port = htons(8080);
            v.backend_id = uint32_t(s.keys.size() % 100) + 1;
            v.state = flow::flow_state::established;
            if (s.table->insert(k, h, v, now_ms) == nullptr) {
                std::fprintf(stderr, "bench: insert failed at %zu flows\n", s.keys.size());
                std::abort();
            }
            s.keys.push_back(k);
        }
        // Long enough that the 1M/16M traces touch flows all over the table; short
        // enough to fit in memory next to it.
        const size_t trace_len =
            std::min<size_t>(size_t(1) << 22, std::max<size_t>(n * 8, 1 << 16));
        s.trace.reserve(trace_len);
        for (size_t i = 0; i < trace_len; ++i) {
            s.trace.push_back(s.keys[rng.next() % n]);
        }
    }
    if (with_frames && s.frames.empty()) {
        s.frames.reserve(s.trace.size());
        for (const auto& k : s.trace) {
            s.frames.push_back(build_frame(k));
        }
    }
    return s;
}

// ---------------------------------------------------------------------------------
// (2) Flow lookup of established flows, as a worker does it: per burst of 32, pass 1
// hashes every key and prefetches its bucket, pass 2 looks them up. With
// entry_prefetch:1 a middle pass calls prefetch_entry() so the entry line is in
// flight before lookup() needs it (the bucket and the entry are two separate misses).

void flow_lookup(benchmark::State& state) {
    flow_set& s = flows_of(size_t(state.range(0)), false);
    const bool three_pass = state.range(1) != 0;
    flow::flow_table& t = *s.table;
    const size_t trace_len = s.trace.size() & ~(burst - 1);
    size_t pos = 0;
    uint64_t hits = 0;
    uint64_t sink = 0;
    for (auto _ : state) {
        const net::flow_key* keys = &s.trace[pos];
        uint32_t hash[burst];
        for (size_t i = 0; i < burst; ++i) {
            hash[i] = net::flow_hash(keys[i]);
            t.prefetch(hash[i]);
        }
        if (three_pass) {
            for (size_t i = 0; i < burst; ++i) {
                t.prefetch_entry(hash[i]);
            }
        }
        for (size_t i = 0; i < burst; ++i) {
            if (flow::flow_entry* e = t.lookup(keys[i], hash[i], now_ms)) {
                sink += e->value.backend_id;
                ++hits;
            }
        }
        pos += burst;
        if (pos >= trace_len) {
            pos = 0;
        }
    }
    benchmark::DoNotOptimize(sink);
    state.SetItemsProcessed(int64_t(state.iterations()) * burst);
    state.counters["hit_ratio"] = double(hits) / double(state.iterations() * burst);
}
BENCHMARK(flow_lookup)
    ->ArgNames({"flows", "entry_prefetch"})
    ->ArgsProduct({{1'000, 1'000'000, 16'000'000}, {0, 1}});

// ---------------------------------------------------------------------------------
// (3) The per-packet path on 64-byte frames: pass 1 parses and hashes every frame of
// the burst and prefetches its bucket, pass 2 looks the flow up and rewrites the
// destination to the backend (incremental checksums). Frames are copied into a
// burst buffer first, as an RX ring hands over fresh packets.

void packet_path(benchmark::State& state) {
    flow_set& s = flows_of(size_t(state.range(0)), true);
    const bool three_pass = state.range(1) != 0;
    flow::flow_table& t = *s.table;
    const size_t trace_len = s.frames.size() & ~(burst - 1);
    alignas(64) std::array<uint8_t, 64> rx[burst];
    net::packet_meta meta[burst];
    uint32_t hash[burst];
    bool parsed[burst];
    size_t pos = 0;
    uint64_t forwarded = 0;
    for (auto _ : state) {
        std::memcpy(rx, &s.frames[pos], sizeof rx);
        for (size_t i = 0; i < burst; ++i) {
            meta[i] = net::packet_meta{};
            parsed[i] = net::parse_frame(rx[i], meta[i]) == net::drop_reason::none;
            if (!parsed[i]) {
                continue;
            }
            hash[i] = net::flow_hash(meta[i].key);
            t.prefetch(hash[i]);
        }
        if (three_pass) {
            for (size_t i = 0; i < burst; ++i) {
                if (parsed[i]) {
                    t.prefetch_entry(hash[i]);
                }
            }
        }
        for (size_t i = 0; i < burst; ++i) {
            flow::flow_entry* e = parsed[i] ? t.lookup(meta[i].key, hash[i], now_ms) : nullptr;
            if (e == nullptr) {
                continue;
            }
            net::nat_rewrite(rx[i], meta[i], net::nat_side::destination, e->value.nat_addr,
                             e->value.nat_port);
            ++forwarded;
        }
        benchmark::DoNotOptimize(rx);
        pos += burst;
        if (pos >= trace_len) {
            pos = 0;
        }
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * burst);
    state.counters["forwarded_ratio"] = double(forwarded) / double(state.iterations() * burst);
}
BENCHMARK(packet_path)
    ->ArgNames({"flows", "entry_prefetch"})
    ->ArgsProduct({{1'000, 1'000'000, 16'000'000}, {0, 1}});

} // namespace

BENCHMARK_MAIN();
