#include "workload.hpp"

#include <rte_byteorder.h>
#include <rte_ip.h>

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace evenflow::gen {

namespace {

void put16(uint8_t* p, uint16_t v) {
    p[0] = uint8_t(v >> 8);
    p[1] = uint8_t(v);
}
void put32(uint8_t* p, uint32_t v) {
    put16(p, uint16_t(v >> 16));
    put16(p + 2, uint16_t(v));
}
uint16_t get16(const uint8_t* p) {
    return uint16_t(p[0] << 8 | p[1]);
}
uint32_t get32(const uint8_t* p) {
    return uint32_t(get16(p)) << 16 | get16(p + 2);
}

// Ones' complement sum of big-endian 16-bit words, unfolded.
uint32_t sum16(uint32_t sum, uint32_t word) {
    return sum + (word & 0xffff);
}
uint32_t sum32(uint32_t sum, uint32_t value) {
    return sum + (value >> 16) + (value & 0xffff);
}
uint16_t fold(uint64_t sum) {
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return uint16_t(~sum);
}

constexpr size_t ip_off = 14;
constexpr size_t tcp_off = 34;
constexpr size_t payload_off = headers_length;

} // namespace

std::optional<uint32_t> parse_ipv4(const std::string& text) {
    std::optional<net::ip_addr> a = net::ip_addr::parse(text);
    if (!a || !a->is_v4()) {
        return std::nullopt;
    }
    return ntohl(a->v4_be());
}

std::optional<endpoint> parse_endpoint(const std::string& text) {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
        return std::nullopt;
    }
    std::optional<uint32_t> addr = parse_ipv4(text.substr(0, colon));
    unsigned port = 0;
    const char* first = text.data() + colon + 1;
    const char* last = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(first, last, port);
    if (!addr || ec != std::errc() || ptr != last || port == 0 || port > 65535) {
        return std::nullopt;
    }
    return endpoint{*addr, uint16_t(port)};
}

std::string format_endpoint(const endpoint& e) {
    return net::ip_addr::from_v4_be(htonl(e.addr)).to_string() + ":" + std::to_string(e.port);
}

std::optional<uint64_t> addressing::flow_of(const endpoint& client) const {
    uint32_t offset = client.addr - client_base;
    if (offset >= clients_per_port || client.port < first_client_port) {
        return std::nullopt;
    }
    return uint64_t(client.port - first_client_port) * clients_per_port + offset;
}

int addressing::backend_index(const endpoint& e) const {
    for (size_t i = 0; i < backends.size(); ++i) {
        if (backends[i] == e) {
            return int(i);
        }
    }
    return -1;
}

frame_template::frame_template(size_t packet_size, const mac_addr& src, const mac_addr& dst)
    : m_bytes(packet_size - fcs_length, 0) {
    std::copy(dst.begin(), dst.end(), m_bytes.begin());
    std::copy(src.begin(), src.end(), m_bytes.begin() + 6);
    uint8_t* f = m_bytes.data();
    put16(f + 12, 0x0800);
    uint8_t* ip = f + ip_off;
    size_t ip_length = m_bytes.size() - ip_off;
    ip[0] = 0x45;
    put16(ip + 2, uint16_t(ip_length));
    put16(ip + 6, 0x4000); // don't fragment
    ip[8] = 64;
    ip[9] = 6;
    uint8_t* tcp = f + tcp_off;
    put16(tcp + 14, 65535); // window
    // Payload: a recognisable pattern after the timestamp.
    for (size_t i = payload_off + timestamp_length; i < m_bytes.size(); ++i) {
        f[i] = uint8_t(0xa5 ^ i);
    }
    // Sums over everything write() does not patch (the patched fields are zero here).
    uint32_t s = 0;
    for (size_t i = 0; i < 20; i += 2) {
        s = sum16(s, get16(ip + i));
    }
    m_ip_sum = s;
    size_t tcp_length = ip_length - 20;
    uint64_t t = 6 + tcp_length; // pseudo-header: protocol and TCP length
    for (size_t i = 0; i + 1 < tcp_length; i += 2) {
        t += get16(tcp + i);
    }
    if (tcp_length % 2) {
        t += uint32_t(tcp[tcp_length - 1]) << 8;
    }
    while (t >> 32) {
        t = (t & 0xffffffff) + (t >> 32);
    }
    m_tcp_sum = uint32_t(t);
}

void frame_template::write(uint8_t* out, const tcp_fields& f) const {
    std::memcpy(out, m_bytes.data(), m_bytes.size());
    uint8_t* ip = out + ip_off;
    put32(ip + 12, f.src.addr);
    put32(ip + 16, f.dst.addr);
    uint32_t addrs = sum32(sum32(0, f.src.addr), f.dst.addr);
    put16(ip + 10, fold(uint64_t(m_ip_sum) + addrs));

    uint8_t* tcp = out + tcp_off;
    put16(tcp, f.src.port);
    put16(tcp + 2, f.dst.port);
    put32(tcp + 4, f.seq);
    put32(tcp + 8, f.ack);
    uint16_t offset_flags = uint16_t(5 << 12 | f.flags);
    put16(tcp + 12, offset_flags);
    uint8_t* ts = out + payload_off;
    uint64_t stamp = f.timestamp & 0xffffffffffffULL;
    put16(ts, uint16_t(stamp >> 32));
    put32(ts + 2, uint32_t(stamp));

    uint64_t s = uint64_t(m_tcp_sum) + addrs;
    s = sum16(uint32_t(s), f.src.port);
    s = sum16(uint32_t(s), f.dst.port);
    s = sum32(uint32_t(s), f.seq);
    s = sum32(uint32_t(s), f.ack);
    s = sum16(uint32_t(s), offset_flags);
    s = sum16(uint32_t(s), uint16_t(stamp >> 32));
    s = sum32(uint32_t(s), uint32_t(stamp));
    put16(tcp + 16, fold(s));
}

frame_kind read_frame(std::span<const uint8_t> frame, received_tcp& out, bool& checksums_ok) {
    checksums_ok = false;
    if (frame.size() < 14) {
        return frame_kind::malformed;
    }
    uint16_t ethertype = get16(frame.data() + 12);
    if (ethertype == 0x0806) {
        return frame_kind::arp;
    }
    if (ethertype != 0x0800 || frame.size() < headers_length) {
        return frame_kind::malformed;
    }
    const uint8_t* ip = frame.data() + ip_off;
    size_t ip_length = get16(ip + 2);
    if (ip[0] != 0x45 || ip[9] != 6 || ip_length < 40 || ip_off + ip_length > frame.size()) {
        return frame_kind::malformed;
    }
    const uint8_t* tcp = ip + 20;
    if ((tcp[12] >> 4) != 5) {
        return frame_kind::malformed;
    }
    out.src = {get32(ip + 12), get16(tcp)};
    out.dst = {get32(ip + 16), get16(tcp + 2)};
    out.seq = get32(tcp + 4);
    out.flags = tcp[13];
    out.ttl = ip[8];
    if (ip_length >= 40 + timestamp_length) {
        const uint8_t* ts = tcp + 20;
        out.timestamp = uint64_t(get16(ts)) << 32 | get32(ts + 2);
    } else {
        out.timestamp.reset();
    }
    // DPDK's checksum routines: an independent computation from the one that wrote
    // the packets (ours, above) and from the balancer's incremental updates.
    const auto* hdr = reinterpret_cast<const rte_ipv4_hdr*>(ip);
    checksums_ok = rte_ipv4_cksum(hdr) == 0 && rte_ipv4_udptcp_cksum_verify(hdr, tcp) == 0;
    return frame_kind::tcp;
}

std::optional<arp_message> read_arp(std::span<const uint8_t> frame) {
    if (frame.size() < 42 || get16(frame.data() + 12) != 0x0806) {
        return std::nullopt;
    }
    const uint8_t* a = frame.data() + 14;
    if (get16(a) != 1 || get16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4) {
        return std::nullopt;
    }
    arp_message m;
    m.op = get16(a + 6);
    std::memcpy(m.sender_mac.data(), a + 8, 6);
    m.sender_ip = get32(a + 14);
    std::memcpy(m.target_mac.data(), a + 18, 6);
    m.target_ip = get32(a + 24);
    return m;
}

void write_arp(uint8_t* out, const mac_addr& eth_dst, const arp_message& msg) {
    std::memset(out, 0, arp_frame_length);
    std::memcpy(out, eth_dst.data(), 6);
    std::memcpy(out + 6, msg.sender_mac.data(), 6);
    put16(out + 12, 0x0806);
    uint8_t* a = out + 14;
    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, msg.op);
    std::memcpy(a + 8, msg.sender_mac.data(), 6);
    put32(a + 14, msg.sender_ip);
    std::memcpy(a + 18, msg.target_mac.data(), 6);
    put32(a + 24, msg.target_ip);
}

} // namespace evenflow::gen
