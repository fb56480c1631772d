// evengen's workload, without DPDK: who the flows are, what their packets look like,
// and how a received packet is read back. Kept pure so the unit tier checks the
// frames against an independent builder.
#pragma once

#include "net/parse.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace evenflow::gen {

using mac_addr = std::array<uint8_t, 6>;

// An IPv4 address and port in host byte order.
struct endpoint {
    uint32_t addr = 0;
    uint16_t port = 0;
    bool operator==(const endpoint&) const = default;
};

std::optional<endpoint> parse_endpoint(const std::string& text); // "10.20.0.11:8080"
std::optional<uint32_t> parse_ipv4(const std::string& text);
std::string format_endpoint(const endpoint& e);

// Flow i is the client (client_base + i mod 65536, 1024 + i / 65536) talking to the
// VIP: up to 16M flows from 65,536 addresses, and the index is recovered from any
// packet of the flow without a lookup table.
struct addressing {
    static constexpr uint32_t clients_per_port = 65536;
    static constexpr uint16_t first_client_port = 1024;
    static constexpr uint64_t max_flows = uint64_t(clients_per_port) * (65536 - first_client_port);

    uint32_t client_base = 0xac100000; // 172.16.0.0
    endpoint vip{0x0a0a0064, 80};      // 10.10.0.100:80
    std::vector<endpoint> backends;

    endpoint client(uint64_t flow) const {
        return {client_base + uint32_t(flow % clients_per_port),
                uint16_t(first_client_port + flow / clients_per_port)};
    }
    // The flow a client endpoint belongs to, if it is one of ours.
    std::optional<uint64_t> flow_of(const endpoint& client) const;
    // Index into `backends`, or -1.
    int backend_index(const endpoint& e) const;
};

namespace tcp_flags = net::tcp_flag;

// Ethernet + IPv4 + TCP, no options; the FCS is not part of the frame, so a "64-byte
// packet" is a 60-byte frame. The first 6 payload bytes carry the send time (48 low
// bits of the TSC) for latency.
inline constexpr size_t headers_length = 14 + 20 + 20;
inline constexpr size_t timestamp_length = 6;
inline constexpr size_t fcs_length = 4;
inline constexpr size_t min_packet_size = 64;   // on the wire, with FCS
inline constexpr size_t max_packet_size = 1518; // on the wire, with FCS

struct tcp_fields {
    endpoint src;
    endpoint dst;
    uint32_t seq = 0;
    uint32_t ack = 0;
    uint8_t flags = tcp_flags::ack;
    uint64_t timestamp = 0; // low 48 bits are sent
};

// A frame of one size between two MACs. write() copies the template and patches the
// fields; both checksums are the template's precomputed sum plus the patched words,
// so a 1500-byte packet costs no more to build than a 64-byte one.
class frame_template {
public:
    frame_template(size_t packet_size, const mac_addr& src, const mac_addr& dst);
    size_t frame_length() const { return m_bytes.size(); }
    void write(uint8_t* out, const tcp_fields& f) const;

private:
    std::vector<uint8_t> m_bytes;
    uint32_t m_ip_sum = 0;  // IPv4 header without addresses
    uint32_t m_tcp_sum = 0; // pseudo-header and segment without the patched fields
};

// What evengen needs from a received frame. Checked strictly: evengen only ever
// sends Ethernet/IPv4/TCP without options, so anything else coming back is damage.
struct received_tcp {
    endpoint src;
    endpoint dst;
    uint32_t seq = 0;
    uint8_t flags = 0;
    uint8_t ttl = 0;
    std::optional<uint64_t> timestamp;
};

enum class frame_kind { tcp, arp, malformed };

// Reads the frame; for TCP also verifies both checksums (`checksums_ok`).
frame_kind read_frame(std::span<const uint8_t> frame, received_tcp& out, bool& checksums_ok);

// ARP request/reply for IPv4 over Ethernet, as evengen sends and answers them.
struct arp_message {
    uint16_t op = 0; // 1 request, 2 reply
    mac_addr sender_mac{};
    uint32_t sender_ip = 0;
    mac_addr target_mac{};
    uint32_t target_ip = 0;
};
inline constexpr size_t arp_frame_length = 60; // padded to the Ethernet minimum
std::optional<arp_message> read_arp(std::span<const uint8_t> frame);
void write_arp(uint8_t* out, const mac_addr& eth_dst, const arp_message& msg);

} // namespace evenflow::gen
