// The exception path end to end in one process: a real kernel interface (DPDK's TAP
// PMD) in a network namespace of the test's own, the kernel's real TCP stack behind
// it, a real worker on net_ring ports in front. A router's SYN to the host's address
// reaches a listening kernel socket through the worker and the slow path; the kernel
// resolves the router by ARP over the data port and its SYN-ACK leaves by the port,
// exact bytes and checksums checked. Needs root (a network namespace, a TAP device).
#include "dataplane/kernel_interfaces.hpp"
#include "dataplane/slow_path.hpp"
#include "rig.hpp"

#include <rte_ethdev.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

using namespace evenflow;
using namespace evenflow::testing;

namespace {

// What the kernel sent through the port while `step` runs the slow path and the
// worker, up to 2 s: the first frame on the client side that `wanted` accepts.
template <typename Wanted>
bytes await_client_frame(ring_rig& rig, dataplane::slow_path& slow, Wanted wanted) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < until) {
        rig.as_control([&] { return slow.drain(); });
        rig.poll();
        for (bytes& f : rig.received(client_side)) {
            if (wanted(f)) {
                return f;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return {};
}

} // namespace

TEST_CASE("exception path: a router's SYN reaches a kernel socket; the SYN-ACK leaves by the "
          "port") {
    // The kernel interface lives in a namespace of this thread's own: nothing of the
    // host's is touched, and it goes with the test process.
    const int unshared = unshare(CLONE_NEWNET);
    INFO("unshare(CLONE_NEWNET): " << std::strerror(errno) << " (run as root)");
    REQUIRE(unshared == 0);

    std::string text = basic_config_text();
    const std::string anchor = "gateway = \"10.10.0.1\"\n";
    text.replace(text.find(anchor), anchor.size(), anchor + "kernel_interface = \"ef-k0\"\n");
    ring_rig rig(text);
    rig.shared.routing_peers = {*net::ip_addr::parse("10.10.0.1")};
    // net_ring ports have no MAC (all zeros, which no kernel interface can have): the
    // client side gets one, as a NIC has.
    const rte_ether_addr port_mac{{0x02, 0x00, 0x00, 0x0a, 0x0a, 0x02}};
    rig.shared.interfaces[client_side].mac = port_mac;
    rig.become_reader();
    dataplane::kernel_interfaces kernel;
    std::string error;
    const bool started = kernel.start(rig.shared.interfaces, test_pool(), &error);
    INFO(error);
    REQUIRE(started);
    REQUIRE(kernel.entries().size() == 1);
    rte_ether_addr kernel_mac{};
    rte_eth_macaddr_get(kernel.entries()[0].port_id, &kernel_mac);
    CHECK(rte_is_same_ether_addr(&kernel_mac, &port_mac));
    dataplane::slow_path slow(rig.shared, test_pool(), rig.worker->inject_ring(), &kernel);

    // BGP's side in the kernel: a socket listening on the host's address.
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    REQUIRE(listener >= 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(179);
    inet_pton(AF_INET, "10.10.0.2", &at.sin_addr);
    const int bound = bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof at);
    INFO("bind 10.10.0.2:179: " << std::strerror(errno));
    REQUIRE(bound == 0);
    REQUIRE(listen(listener, 4) == 0);

    // The router's SYN, through the worker (the peer's lane) to the kernel.
    rig.send(client_side, packet_builder()
                              .eth(router_mac, rig.lb_mac(client_side))
                              .ipv4("10.10.0.1", "10.10.0.2")
                              .ttl(255)
                              .tcp(40000, 179, tcp_flags::syn, 7000)
                              .build());
    rig.poll();
    CHECK(rig.worker->stats().totals.to_host_peer.get() == 1);

    // The kernel asks for the router's MAC, from the port's MAC, out of the port...
    bytes request = await_client_frame(rig, slow, [](const bytes& f) {
        return f.size() >= 42 && get16(f, 12) == 0x0806 && get16(f, 20) == 1;
    });
    INFO("to the kernel " << kernel.entries()[0].stats.to_kernel << ", from it "
                          << kernel.entries()[0].stats.from_kernel << ", dropped "
                          << kernel.entries()[0].stats.to_kernel_dropped);
    REQUIRE(!request.empty());
    const mac lb = rig.lb_mac(client_side);
    CHECK(std::equal(lb.begin(), lb.end(), request.begin() + 6));
    CHECK(bytes(request.begin() + 28, request.begin() + 32) == bytes{10, 10, 0, 2}); // sender
    CHECK(bytes(request.begin() + 38, request.begin() + 42) == bytes{10, 10, 0, 1}); // target
    // ...and learns it from the router's answer, which the slow path passes on.
    bytes reply(42, 0);
    std::copy(lb.begin(), lb.end(), reply.begin());
    std::copy(router_mac.begin(), router_mac.end(), reply.begin() + 6);
    put16(reply, 12, 0x0806);
    put16(reply, 14, 1);
    put16(reply, 16, 0x0800);
    reply[18] = 6;
    reply[19] = 4;
    put16(reply, 20, 2); // reply
    std::copy(router_mac.begin(), router_mac.end(), reply.begin() + 22);
    std::copy_n(bytes{10, 10, 0, 1}.begin(), 4, reply.begin() + 28);
    std::copy(lb.begin(), lb.end(), reply.begin() + 32);
    std::copy_n(bytes{10, 10, 0, 2}.begin(), 4, reply.begin() + 38);
    reply.resize(60, 0);
    rig.send(client_side, reply);
    rig.poll();

    // The kernel's SYN-ACK leaves by the port, to the router, its checksums whole.
    bytes syn_ack = await_client_frame(rig, slow, [](const bytes& f) {
        return f.size() >= 54 && get16(f, 12) == 0x0800 && f[23] == 6;
    });
    REQUIRE(!syn_ack.empty());
    CHECK(std::equal(router_mac.begin(), router_mac.end(), syn_ack.begin()));
    CHECK(std::equal(lb.begin(), lb.end(), syn_ack.begin() + 6));
    CHECK(bytes(syn_ack.begin() + 26, syn_ack.begin() + 30) == bytes{10, 10, 0, 2});
    CHECK(bytes(syn_ack.begin() + 30, syn_ack.begin() + 34) == bytes{10, 10, 0, 1});
    const size_t tcp = 14 + size_t(syn_ack[14] & 0x0f) * 4;
    CHECK(get16(syn_ack, tcp) == 179);
    CHECK(get16(syn_ack, tcp + 2) == 40000);
    CHECK(syn_ack[tcp + 13] == (tcp_flags::syn | tcp_flags::ack));
    CHECK(get32(syn_ack, tcp + 8) == 7001);
    CHECK(ipv4_tcp_checksums_ok(syn_ack));

    // The router's ACK completes the handshake: the kernel's socket accepts it.
    const uint32_t server_seq = get32(syn_ack, tcp + 4);
    rig.send(client_side, packet_builder()
                              .eth(router_mac, rig.lb_mac(client_side))
                              .ipv4("10.10.0.1", "10.10.0.2")
                              .ttl(255)
                              .tcp(40000, 179, tcp_flags::ack, 7001, server_seq + 1)
                              .build());
    rig.poll();
    int accepted = -1;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (accepted < 0 && std::chrono::steady_clock::now() < until) {
        rig.as_control([&] { return slow.drain(); });
        accepted = accept(listener, nullptr, nullptr);
        if (accepted < 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }
    CHECK(accepted >= 0);
    const auto& counted = kernel.entries()[0].stats;
    CHECK(counted.to_kernel >= 3);   // SYN, ARP reply, ACK
    CHECK(counted.from_kernel >= 2); // ARP request, SYN-ACK
    CHECK(counted.to_kernel_dropped == 0);
    if (accepted >= 0) {
        close(accepted);
    }
    close(listener);
    kernel.stop();
}
