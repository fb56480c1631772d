// Packets the balancer answers with, built in place from the packet they answer
// (RST, ICMP echo reply) or from scratch (ARP). Pure byte manipulation.
#pragma once

#include "net/addr.hpp"
#include "net/parse.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace evenflow::net {

using mac_addr = std::array<uint8_t, 6>;

// Rewrites a parsed TCP segment into the RST that answers it: MACs, addresses and
// ports swapped, payload dropped, sequence numbers per RFC 793 (reset generation),
// TTL reset, checksums recomputed. Returns the new frame length (the caller trims
// the buffer), or 0 when the segment is itself a RST (never answer a RST).
size_t make_tcp_reset(std::span<uint8_t> frame, const packet_meta& meta);

// Rewrites an ICMP echo request (IPv4 type 8, ICMPv6 type 128) into its reply.
// Returns false, changing nothing, for anything else.
bool make_echo_reply(std::span<uint8_t> frame, const packet_meta& meta);

inline constexpr uint16_t arp_op_request = 1;
inline constexpr uint16_t arp_op_reply = 2;
inline constexpr size_t arp_frame_length = 42; // Ethernet + ARP for IPv4, unpadded

// Writes an Ethernet/IPv4 ARP frame into `out` (at least arp_frame_length bytes).
// A request goes to broadcast with a zero target MAC when `target_mac` is zero.
size_t build_arp(std::span<uint8_t> out, uint16_t op, const mac_addr& sender_mac,
                 const ip_addr& sender_ip, const mac_addr& target_mac, const ip_addr& target_ip);

// Fields of a parsed ARP frame that parse_frame does not keep.
struct arp_fields {
    uint16_t op = 0;
    mac_addr sender_mac{};
    ip_addr sender_ip;
    mac_addr target_mac{};
    ip_addr target_ip;
};
bool read_arp(std::span<const uint8_t> frame, const packet_meta& meta, arp_fields& out);

// Turns a parsed ARP request into our reply, in place: the requested address is
// ours at `our_mac`; the frame goes back to the requester. Any 802.1Q tag stays.
// False, changing nothing, when the frame is not an Ethernet/IPv4 ARP request.
bool make_arp_reply(std::span<uint8_t> frame, const packet_meta& meta, const mac_addr& our_mac);

// Health probes leave from the balancer's interface address with a source port in
// this range; replies to it are told apart from everything else by the port.
inline constexpr uint16_t first_probe_port = 61000;
inline constexpr uint16_t probe_ports = 4000;
inline bool is_probe_port(uint16_t port_host_order) {
    return port_host_order >= first_probe_port &&
           port_host_order < uint32_t(first_probe_port) + probe_ports;
}

inline constexpr size_t tcp_syn_frame_length = 14 + 20 + 20;

// Writes an Ethernet/IPv4/TCP SYN (no options) into `out`: a health probe.
// Returns the frame length, or 0 when `out` is too small or an address is not IPv4.
size_t build_tcp_syn(std::span<uint8_t> out, const mac_addr& src_mac, const mac_addr& dst_mac,
                     const ip_addr& src, const ip_addr& dst, uint16_t src_port, uint16_t dst_port,
                     uint32_t seq);

// The TCP checksum of a segment from scratch (pseudo-header included), as stored.
uint16_t tcp_checksum(std::span<const uint8_t> frame, const packet_meta& meta);

} // namespace evenflow::net
