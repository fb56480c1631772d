// Writes the seed corpus of fuzz_packet into a directory: frames built by the test
// packet builder (test/support/packet_builder.hpp), each behind the 19 bytes of NAT
// parameters fuzz_packet.cpp reads first. One file per frame, named after it.
//
//   fuzz_packet_seeds DIR
#include "support/packet_builder.hpp"

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

using namespace evenflow::testing;

namespace {

const mac client_mac = {0x02, 0, 0, 0, 0, 0x01};
const mac balancer_mac = {0x02, 0, 0, 0, 0, 0x02};

// flags, the address NAT writes (10.20.0.11 or 2001:db8:20::11), port 8080.
bytes params(uint8_t flags, bool v6) {
    bytes p(19, 0);
    p[0] = flags;
    if (v6) {
        auto a = parse_v6("2001:db8:20::11");
        std::copy(a.begin(), a.end(), p.begin() + 1);
    } else {
        p[11] = p[12] = 0xff;
        auto a = parse_v4("10.20.0.11");
        std::copy(a.begin(), a.end(), p.begin() + 13);
    }
    put16(p, 17, 8080);
    return p;
}

packet_builder v4() {
    return std::move(
        packet_builder().eth(client_mac, balancer_mac).ipv4("10.0.0.1", "10.10.0.100"));
}
packet_builder v6() {
    return std::move(
        packet_builder().eth(client_mac, balancer_mac).ipv6("2001:db8::1", "2001:db8:10::100"));
}

const bytes mss_sack_ts = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    std::vector<std::pair<std::string, bytes>> seeds;
    auto add = [&](std::string name, uint8_t flags, bool is_v6, bytes frame) {
        bytes input = params(flags, is_v6);
        input.insert(input.end(), frame.begin(), frame.end());
        seeds.emplace_back(std::move(name), std::move(input));
    };

    // TCP over IPv4: the forwarding path's daily bread, then its odd corners.
    add("v4-syn", 0, false, v4().tcp(40000, 80, tcp_flags::syn).build());
    add("v4-ack-payload", 1, false,
        v4().tcp(40000, 80, tcp_flags::ack | tcp_flags::psh, 1000, 2000)
            .payload("GET / HTTP/1.1\r\n\r\n")
            .build());
    add("v4-fin", 2, false, v4().tcp(40000, 80, tcp_flags::fin | tcp_flags::ack).build());
    add("v4-rst", 0, false, v4().tcp(40000, 80, tcp_flags::rst).build());
    add("v4-syn-options", 3, false,
        v4().tcp(40000, 80, tcp_flags::syn).tcp_options(mss_sack_ts).build());
    add("v4-ip-options", 0, false,
        v4().ipv4_options({0x94, 0x04, 0, 0}).tcp(40000, 80, tcp_flags::ack).payload("x").build());
    add("v4-vlan", 1, false,
        packet_builder()
            .eth(client_mac, balancer_mac)
            .vlan(100)
            .ipv4("10.0.0.1", "10.10.0.100")
            .tcp(40000, 80, tcp_flags::syn)
            .build());
    add("v4-padded", 0, false, v4().tcp(40000, 80, tcp_flags::ack).pad_to(60).build());
    add("v4-odd-payload", 1, false, v4().tcp(40000, 80, tcp_flags::ack).payload("abc").build());
    add("v4-bad-ip-checksum", 0, false,
        v4().tcp(40000, 80, tcp_flags::syn).ipv4_checksum(0x1234).build());
    add("v4-bad-tcp-checksum", 0, false,
        v4().tcp(40000, 80, tcp_flags::syn).l4_checksum(0xffff).build());
    add("v4-fragment", 0, false, v4().fragment(0, true).tcp(40000, 80).build());
    add("v4-udp", 0, false, v4().raw_l4(ipprotos::udp, bytes(8, 0)).build());

    // TCP over IPv6, with and without extension headers.
    add("v6-syn", 0, true, v6().tcp(40000, 443, tcp_flags::syn).build());
    add("v6-ack-payload", 1, true,
        v6().tcp(40000, 443, tcp_flags::ack, 7, 9).payload_size(100).build());
    add("v6-ext-chain", 2, true,
        v6().ipv6_ext(ipprotos::hop_by_hop)
            .ipv6_ext(ipprotos::dest_opts, 16)
            .ipv6_ext(ipprotos::routing)
            .ipv6_ext(ipprotos::ah, 24)
            .tcp(40000, 443, tcp_flags::syn)
            .build());
    add("v6-fragment", 0, true, v6().fragment(0, false).tcp(40000, 443).build());
    add("v6-bad-tcp-checksum", 3, true,
        v6().tcp(40000, 443, tcp_flags::syn).l4_checksum(0).build());

    // ICMP: echo requests are answered, the rest passes by.
    add("v4-echo", 0, false, v4().icmp(8, 0, 7, 1).payload("ping").build());
    add("v4-frag-needed", 0, false, v4().icmp(3, 4).payload(bytes(28, 0x45)).build());
    add("v6-echo", 0, true, v6().icmp(128, 0, 7, 1).payload("ping").build());
    add("v6-echo-ext", 0, true, v6().ipv6_ext(ipprotos::dest_opts).icmp(128).build());

    // ARP and layer 2.
    add("arp-request", 0, false,
        packet_builder()
            .eth(client_mac, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
            .arp(1, client_mac, "10.10.0.1", mac{}, "10.10.0.2")
            .build());
    add("arp-reply", 1, false,
        packet_builder()
            .eth(client_mac, balancer_mac)
            .arp(2, client_mac, "10.10.0.1", balancer_mac, "10.10.0.2")
            .pad_to(60)
            .build());
    add("qinq", 0, false,
        packet_builder()
            .eth(client_mac, balancer_mac)
            .vlan(10, 0, ethertypes::qinq)
            .vlan(20)
            .ipv4("10.0.0.1", "10.10.0.100")
            .tcp(1, 2)
            .build());
    add("lldp", 0, false,
        packet_builder().eth(client_mac, balancer_mac).raw_l3(0x88cc, bytes(20, 1)).build());

    // Cut short: a TCP SYN truncated inside each header.
    const bytes syn = v4().tcp(40000, 80, tcp_flags::syn).tcp_options(mss_sack_ts).build();
    for (size_t cut : {10u, 16u, 30u, 40u, 60u}) {
        add("v4-syn-cut" + std::to_string(cut), 0, false,
            bytes(syn.begin(), syn.begin() + long(cut)));
    }

    for (const auto& [name, input] : seeds) {
        std::ofstream out(dir + "/" + name, std::ios::binary);
        out.write(reinterpret_cast<const char*>(input.data()), std::streamsize(input.size()));
        if (!out) {
            std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
            return 1;
        }
    }
    std::printf("%zu packet seeds in %s\n", seeds.size(), dir.c_str());
    return 0;
}
