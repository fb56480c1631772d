// evengen's pure parts: the frames it sends (against the independent test builder),
// how it reads frames back, flow addressing, latency percentiles, per-flow checks,
// pacing and the queues it configures.
#include "pacing.hpp"
#include "queues.hpp"
#include "verify.hpp"
#include "workload.hpp"

#include "support/packet_builder.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

using namespace evenflow::gen;
namespace tb = evenflow::testing;

namespace {

std::array<uint8_t, 4> v4(uint32_t host) {
    return {uint8_t(host >> 24), uint8_t(host >> 16), uint8_t(host >> 8), uint8_t(host)};
}

// The payload evengen sends: 6 bytes of timestamp, then its pattern.
tb::bytes expected_payload(size_t frame_len, uint64_t stamp) {
    tb::bytes p(frame_len - headers_length);
    for (size_t i = 0; i < 6; ++i) {
        p[i] = uint8_t(stamp >> (8 * (5 - i)));
    }
    for (size_t i = 6; i < p.size(); ++i) {
        p[i] = uint8_t(0xa5 ^ (i + headers_length));
    }
    return p;
}

} // namespace

TEST_CASE("evengen: frames equal the independently built frame, checksums included") {
    std::mt19937_64 rng(7);
    const mac_addr src{0x02, 0xee, 0, 0, 0, 1};
    const mac_addr dst{0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
    for (size_t size : {size_t(64), size_t(65), size_t(128), size_t(511), size_t(1518)}) {
        frame_template t(size, src, dst);
        REQUIRE(t.frame_length() == size - 4);
        for (int i = 0; i < 2000; ++i) {
            tcp_fields f;
            f.src = {uint32_t(rng()), uint16_t(rng())};
            f.dst = {uint32_t(rng()), uint16_t(rng())};
            f.seq = uint32_t(rng());
            f.ack = uint32_t(rng());
            f.flags = uint8_t(rng() & 0x3f);
            f.timestamp = rng() & 0xffffffffffffULL;
            std::vector<uint8_t> got(t.frame_length());
            t.write(got.data(), f);

            tb::bytes want = tb::packet_builder()
                                 .eth(src, dst)
                                 .ipv4(v4(f.src.addr), v4(f.dst.addr))
                                 .ip_id(0)
                                 .dont_fragment()
                                 .ttl(64)
                                 .tcp(f.src.port, f.dst.port, f.flags, f.seq, f.ack)
                                 .window(65535)
                                 .payload(expected_payload(t.frame_length(), f.timestamp))
                                 .build();
            REQUIRE(got == want);

            received_tcp back;
            bool ok = false;
            REQUIRE(read_frame(got, back, ok) == frame_kind::tcp);
            CHECK(ok);
            CHECK(back.src == f.src);
            CHECK(back.dst == f.dst);
            CHECK(back.seq == f.seq);
            CHECK(back.flags == f.flags);
            CHECK(back.ttl == 64);
            CHECK(back.timestamp == f.timestamp);
        }
    }
}

TEST_CASE("evengen: damage is seen: any flipped byte in IP or TCP fails a checksum") {
    frame_template t(64, {2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2});
    tcp_fields f{{0xac100001, 1024}, {0x0a0a0064, 80}, 5, 1, tcp_flags::ack, 123456};
    std::vector<uint8_t> frame(t.frame_length());
    t.write(frame.data(), f);
    // From the IP header on, except the bytes read_frame rejects before checksums
    // (version/IHL, total length, protocol, TCP data offset).
    for (size_t off = 14; off < frame.size(); ++off) {
        if (off == 14 || off == 16 || off == 17 || off == 23 || off == 46) {
            continue;
        }
        std::vector<uint8_t> bad = frame;
        bad[off] ^= 0x01;
        received_tcp back;
        bool ok = true;
        REQUIRE(read_frame(bad, back, ok) == frame_kind::tcp);
        CHECK_FALSE(ok);
    }
}

TEST_CASE("evengen: frames it did not send are malformed, never read past the end") {
    frame_template t(64, {2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2});
    std::vector<uint8_t> frame(t.frame_length());
    t.write(frame.data(), tcp_fields{});
    received_tcp back;
    bool ok = false;
    for (size_t len = 0; len < headers_length; ++len) {
        std::vector<uint8_t> cut(frame.begin(), frame.begin() + ptrdiff_t(len));
        CHECK(read_frame(cut, back, ok) == frame_kind::malformed);
    }
    auto patched = [&](size_t off, uint8_t v) {
        std::vector<uint8_t> b = frame;
        b[off] = v;
        return read_frame(b, back, ok);
    };
    CHECK(patched(12, 0x86) == frame_kind::malformed); // IPv6 ethertype
    CHECK(patched(14, 0x46) == frame_kind::malformed); // IP options
    CHECK(patched(23, 17) == frame_kind::malformed);   // UDP
    CHECK(patched(46, 0x60) == frame_kind::malformed); // TCP options
    CHECK(patched(17, 0xff) == frame_kind::malformed); // total length past the frame
    CHECK(patched(12, 0x08) == frame_kind::tcp);
}

TEST_CASE("evengen: ARP written and read back; the test builder agrees") {
    arp_message m{1, {2, 0xee, 0, 0, 0, 2}, 0x0a14000b, {}, 0x0a140001};
    std::vector<uint8_t> frame(arp_frame_length);
    write_arp(frame.data(), {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, m);
    tb::bytes want = tb::packet_builder()
                         .eth(m.sender_mac, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
                         .arp(1, m.sender_mac, "10.20.0.11", {}, "10.20.0.1")
                         .pad_to(arp_frame_length)
                         .build();
    CHECK(frame == want);
    std::optional<arp_message> back = read_arp(frame);
    REQUIRE(back);
    CHECK(back->op == 1);
    CHECK(back->sender_ip == m.sender_ip);
    CHECK(back->target_ip == m.target_ip);
    CHECK(back->sender_mac == m.sender_mac);
    received_tcp tcp;
    bool ok = false;
    CHECK(read_frame(frame, tcp, ok) == frame_kind::arp);
    CHECK_FALSE(read_arp(std::span<const uint8_t>(frame).first(41)));
}

TEST_CASE("evengen: a flow's index comes back from its client address and port") {
    addressing a;
    std::mt19937_64 rng(3);
    for (int i = 0; i < 100000; ++i) {
        uint64_t flow = rng() % (uint64_t(16) << 20);
        std::optional<uint64_t> back = a.flow_of(a.client(flow));
        REQUIRE(back);
        REQUIRE(*back == flow);
    }
    CHECK(a.client(0) == endpoint{0xac100000, 1024});
    CHECK(a.client(65536) == endpoint{0xac100000, 1025});
    CHECK_FALSE(a.flow_of({0xac0fffff, 1024})); // below the client range
    CHECK_FALSE(a.flow_of({0xac110000, 1024})); // past the /16
    CHECK_FALSE(a.flow_of({0xac100000, 80}));   // a port below the client ports
    a.backends = {{0x0a14000b, 8080}, {0x0a14000c, 8080}};
    CHECK(a.backend_index({0x0a14000c, 8080}) == 1);
    CHECK(a.backend_index({0x0a14000c, 8081}) == -1);
}

TEST_CASE("evengen: endpoints parse strictly") {
    CHECK(parse_endpoint("10.20.0.11:8080") == endpoint{0x0a14000b, 8080});
    CHECK_FALSE(parse_endpoint("10.20.0.11"));
    CHECK_FALSE(parse_endpoint("10.20.0.11:0"));
    CHECK_FALSE(parse_endpoint("10.20.0.11:65536"));
    CHECK_FALSE(parse_endpoint("10.20.0.11:80x"));
    CHECK_FALSE(parse_endpoint("10.20.0:80"));
    CHECK(format_endpoint({0x0a14000b, 8080}) == "10.20.0.11:8080");
}

TEST_CASE("evengen: latency percentiles are within one bucket (1/16) of the exact ones") {
    std::mt19937_64 rng(11);
    std::lognormal_distribution<double> dist(9.0, 1.5); // ~8 us median, long tail
    latency_histogram h;
    std::vector<uint64_t> samples;
    for (int i = 0; i < 200000; ++i) {
        auto ns = uint64_t(dist(rng));
        samples.push_back(ns);
        h.record(ns);
    }
    std::sort(samples.begin(), samples.end());
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
        uint64_t exact = samples[size_t(std::ceil(q * double(samples.size()))) - 1];
        uint64_t got = h.quantile(q);
        CHECK(got >= exact);
        CHECK(double(got) <= double(exact) * (1.0 + 1.0 / 16) + 1);
    }
    CHECK(h.quantile(1.0) == samples.back());
    CHECK(h.max() == samples.back());
    CHECK(h.count() == samples.size());
    // Every value lies within its bucket's edges.
    for (uint64_t v : {0ull, 1ull, 15ull, 16ull, 17ull, 1000ull, 123456789ull, ~0ull}) {
        size_t b = latency_histogram::bucket_of(v);
        CHECK(latency_histogram::upper_edge(b) >= v);
        if (b > 0) {
            CHECK(latency_histogram::upper_edge(b - 1) < v);
        }
    }
    CHECK(latency_histogram{}.quantile(0.5) == 0);
}

TEST_CASE("evengen: per-flow checks: stickiness and order") {
    flow_tracker t(10);
    CHECK(t.land(3, 2).first);
    flow_tracker::sighting again = t.land(3, 2);
    CHECK_FALSE(again.first);
    CHECK_FALSE(again.moved);
    CHECK(t.land(3, 1).moved);
    CHECK(t.backend_of(3) == 2);

    CHECK(t.in_order(5, direction::forward, 0));
    CHECK(t.in_order(5, direction::forward, 1));
    CHECK(t.in_order(5, direction::forward, 7)); // a gap is loss, not reordering
    CHECK_FALSE(t.in_order(5, direction::forward, 6));
    CHECK_FALSE(t.in_order(5, direction::forward, 7)); // a duplicate
    CHECK(t.in_order(5, direction::reverse, 0));       // directions are separate
    // Sequence numbers wrap on long runs.
    CHECK(t.in_order(6, direction::forward, 0xfffffffe));
    CHECK(t.in_order(6, direction::forward, 0xffffffff));
    CHECK(t.in_order(6, direction::forward, 3));
}

TEST_CASE("pacing: the window bounds what is in flight, flat out") {
    pacer pace(0, 1'000'000, 0, 100, 1, 32);
    CHECK(pace.budget(0, 0) == 32); // a burst at most
    CHECK(pace.budget(0, 80) == 20);
    CHECK(pace.budget(0, 100) == 0);
    CHECK(pace.window_full(100));
    CHECK_FALSE(pace.window_full(99));
    // A lifecycle puts several packets in flight per send.
    pacer lifecycles(0, 1'000'000, 0, 100, 10, 32);
    CHECK(lifecycles.budget(0, 0) == 10);
    CHECK(lifecycles.budget(0, 95) == 0);
    CHECK(lifecycles.deficit() == 0);
}

TEST_CASE("pacing: a fixed rate follows the schedule and writes off what it fell behind") {
    const uint64_t hz = 1'000'000;             // one cycle = 1 us
    pacer pace(1000, hz, 0, 1'000'000, 1, 32); // 1000 packets/s
    CHECK(pace.budget(0, 0) == 0);
    CHECK(pace.budget(10'000, 0) == 10); // 10 ms: 10 due
    for (int i = 0; i < 10; ++i) {
        pace.sent();
    }
    CHECK(pace.budget(10'000, 0) == 0); // on schedule
    CHECK(pace.budget(20'500, 0) == 10);
    for (int i = 0; i < 10; ++i) {
        pace.sent();
    }
    // The core was away for 1 s: 1000 are due, but only two bursts of debt are kept.
    uint64_t b = pace.budget(1'020'500, 0);
    CHECK(b == 32);
    CHECK(pace.deficit() == 1020 - 20 - 64);
    for (uint64_t i = 0; i < b; ++i) {
        pace.sent();
    }
    CHECK(pace.budget(1'020'500, 0) == 32);
    // Sent and written off add up to what was due.
    for (int i = 0; i < 32; ++i) {
        pace.sent();
    }
    CHECK(pace.budget(1'020'500, 0) == 0);
}

TEST_CASE("queues: as many pairs as the device has workers, or a clear refusal") {
    std::string error;
    std::optional<queue_plan> one = plan_queues(1, 8, 8, &error);
    REQUIRE(one);
    CHECK(one->rx == 1);
    CHECK(one->tx == 1);
    // Two workers: both queue pairs, so that the device's second ring exists and the
    // second worker's packets are received.
    std::optional<queue_plan> two = plan_queues(2, 8, 8, &error);
    REQUIRE(two);
    CHECK(two->rx == 2);
    CHECK(two->tx == 2);
    // The pcap writer cannot receive: one TX queue, nothing to poll.
    std::optional<queue_plan> pcap = plan_queues(1, 0, 1, &error);
    REQUIRE(pcap);
    CHECK(pcap->rx == 0);
    CHECK(pcap->tx == 1);

    CHECK_FALSE(plan_queues(2, 0, 1, &error));
    CHECK(error == "the port cannot receive, so it has no queues to poll");
    CHECK_FALSE(plan_queues(4, 2, 8, &error));
    CHECK(error == "4 queue pairs wanted, the port has 2 RX and 8 TX queues");
    CHECK_FALSE(plan_queues(4, 8, 2, &error));
    CHECK(error == "4 queue pairs wanted, the port has 8 RX and 2 TX queues");
    CHECK_FALSE(plan_queues(0, 8, 8, &error));
    CHECK(error == "between 1 and 16 queues");
    CHECK_FALSE(plan_queues(17, 64, 64, &error));
}
