// Test fixture builder for Ethernet frames (after Katran's PacketBuilder): layers are
// declared with a fluent API and build() lays them out with correct lengths and
// checksums. Header-only and deliberately independent of lib/net: addresses are
// parsed with inet_pton, checksums with a byte-at-a-time reference sum, so tests
// compare our code against a separate computation rather than against itself.
//
//   auto frame = packet_builder()
//                    .eth("02:00:00:00:00:01", "02:00:00:00:00:02")
//                    .vlan(100)
//                    .ipv4("10.0.0.1", "10.10.0.100")
//                    .tcp(1234, 80, tcp_flags::syn)
//                    .payload("hello")
//                    .build();
//
// Malformed frames are made by building a valid one and patching bytes at the
// offsets layout() reports (put16/put8 below); there are also a few explicit knobs
// (checksum overrides, raw L3/L4) for what patching cannot express simply.
// One self-contained header, longer than most files on purpose: every test includes
// it alone, and it must not share code with lib/net (it is the independent check).
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace evenflow::testing {

using bytes = std::vector<uint8_t>;
using mac = std::array<uint8_t, 6>;

// Protocol numbers, kept local so the fixture does not depend on the code it tests.
namespace ethertypes {
inline constexpr uint16_t ipv4 = 0x0800;
inline constexpr uint16_t arp = 0x0806;
inline constexpr uint16_t vlan = 0x8100;
inline constexpr uint16_t qinq = 0x88a8;
inline constexpr uint16_t ipv6 = 0x86dd;
} // namespace ethertypes

namespace ipprotos {
inline constexpr uint8_t hop_by_hop = 0;
inline constexpr uint8_t icmp = 1;
inline constexpr uint8_t tcp = 6;
inline constexpr uint8_t udp = 17;
inline constexpr uint8_t routing = 43;
inline constexpr uint8_t fragment = 44;
inline constexpr uint8_t esp = 50;
inline constexpr uint8_t ah = 51;
inline constexpr uint8_t icmpv6 = 58;
inline constexpr uint8_t no_next = 59;
inline constexpr uint8_t dest_opts = 60;
} // namespace ipprotos

namespace tcp_flags {
inline constexpr uint8_t fin = 0x01;
inline constexpr uint8_t syn = 0x02;
inline constexpr uint8_t rst = 0x04;
inline constexpr uint8_t psh = 0x08;
inline constexpr uint8_t ack = 0x10;
inline constexpr uint8_t urg = 0x20;
inline constexpr uint8_t ece = 0x40;
inline constexpr uint8_t cwr = 0x80;
} // namespace tcp_flags

// ---- Byte helpers (big-endian, bounds-checked with at() so a test bug throws) ----

inline void put8(bytes& b, size_t off, uint8_t v) {
    b.at(off) = v;
}
inline void put16(bytes& b, size_t off, uint16_t v) {
    b.at(off) = uint8_t(v >> 8);
    b.at(off + 1) = uint8_t(v);
}
inline void put32(bytes& b, size_t off, uint32_t v) {
    put16(b, off, uint16_t(v >> 16));
    put16(b, off + 2, uint16_t(v));
}
inline uint16_t get16(std::span<const uint8_t> b, size_t off) {
    if (off + 2 > b.size()) {
        throw std::out_of_range("get16 past the end");
    }
    return uint16_t(b[off] << 8 | b[off + 1]);
}
inline uint32_t get32(std::span<const uint8_t> b, size_t off) {
    return uint32_t(get16(b, off)) << 16 | get16(b, off + 2);
}

// ---- Reference checksum: RFC 1071 the slow, obvious way ----

// Sums big-endian 16-bit words byte by byte; an odd trailing byte is the high byte
// of a zero-padded word. Returns the unfolded 32-bit sum so callers can chain.
inline uint32_t reference_sum(std::span<const uint8_t> data, uint32_t sum = 0) {
    for (size_t i = 0; i < data.size(); i += 2) {
        uint32_t hi = data[i];
        uint32_t lo = i + 1 < data.size() ? data[i + 1] : 0;
        sum += hi << 8 | lo;
    }
    return sum;
}
inline uint16_t reference_fold(uint32_t sum) {
    while (sum > 0xffff) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return uint16_t(sum);
}
// The checksum to store (host order value; write it with put16).
inline uint16_t reference_checksum(std::span<const uint8_t> data, uint32_t sum = 0) {
    return uint16_t(~reference_fold(reference_sum(data, sum)));
}

// ---- Text parsing for fixtures; throws on bad input (a test bug, not a case) ----

inline mac parse_mac(std::string_view text) {
    mac m{};
    unsigned v[6];
    std::string s(text);
    if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) !=
        6) {
        throw std::invalid_argument("bad MAC: " + s);
    }
    for (size_t i = 0; i < 6; ++i) {
        m[i] = uint8_t(v[i]);
    }
    return m;
}
inline std::array<uint8_t, 4> parse_v4(std::string_view text) {
    std::array<uint8_t, 4> a{};
    std::string s(text);
    if (inet_pton(AF_INET, s.c_str(), a.data()) != 1) {
        throw std::invalid_argument("bad IPv4 address: " + s);
    }
    return a;
}
inline std::array<uint8_t, 16> parse_v6(std::string_view text) {
    std::array<uint8_t, 16> a{};
    std::string s(text);
    if (inet_pton(AF_INET6, s.c_str(), a.data()) != 1) {
        throw std::invalid_argument("bad IPv6 address: " + s);
    }
    return a;
}

// Where each layer starts in a built frame. A layer that is absent has offset npos.
struct frame_layout {
    static constexpr size_t npos = size_t(-1);
    size_t l3_offset = npos;      // IP or ARP header
    size_t l4_offset = npos;      // TCP/ICMP/raw L4 header (after IPv6 ext headers)
    size_t payload_offset = npos; // after the TCP header and options, or the ICMP header
    size_t l3_length = 0;         // IPv4 total length / 40 + IPv6 payload length / 28 (ARP)
    size_t frame_length = 0;      // including any padding
};

class packet_builder {
public:
    // ---- L2 ----
    packet_builder& eth(const mac& src, const mac& dst) {
        _src_mac = src;
        _dst_mac = dst;
        return *this;
    }
    packet_builder& eth(std::string_view src, std::string_view dst) {
        return eth(parse_mac(src), parse_mac(dst));
    }
    // One 802.1Q tag; call again for a second (QinQ) tag, outermost first.
    packet_builder& vlan(uint16_t vid, uint8_t pcp = 0, uint16_t tpid = ethertypes::vlan) {
        _vlans.push_back({tpid, uint16_t((pcp & 7) << 13 | (vid & 0x0fff))});
        return *this;
    }

    // ---- L3 ----
    packet_builder& ipv4(std::string_view src, std::string_view dst) {
        return ipv4(parse_v4(src), parse_v4(dst));
    }
    packet_builder& ipv4(const std::array<uint8_t, 4>& src, const std::array<uint8_t, 4>& dst) {
        _l3 = l3_kind::ipv4;
        _src_ip.assign(src.begin(), src.end());
        _dst_ip.assign(dst.begin(), dst.end());
        return *this;
    }
    packet_builder& ipv6(std::string_view src, std::string_view dst) {
        return ipv6(parse_v6(src), parse_v6(dst));
    }
    packet_builder& ipv6(const std::array<uint8_t, 16>& src, const std::array<uint8_t, 16>& dst) {
        _l3 = l3_kind::ipv6;
        _src_ip.assign(src.begin(), src.end());
        _dst_ip.assign(dst.begin(), dst.end());
        return *this;
    }
    packet_builder& ttl(uint8_t v) {
        _ttl = v;
        return *this;
    }
    packet_builder& ip_id(uint16_t v) {
        _ip_id = v;
        return *this;
    }
    packet_builder& tos(uint8_t v) {
        _tos = v;
        return *this;
    }
    // IPv4 options, copied as given and padded with End-of-Options (0) to 4 bytes.
    packet_builder& ipv4_options(bytes options) {
        _ipv4_options = std::move(options);
        while (_ipv4_options.size() % 4 != 0) {
            _ipv4_options.push_back(0);
        }
        return *this;
    }
    packet_builder& dont_fragment(bool df = true) {
        _df = df;
        return *this;
    }
    // IPv4: sets MF and the offset (in 8-byte units). IPv6: appends a Fragment header
    // to the extension chain with the same meaning. Call after ipv4()/ipv6().
    packet_builder& fragment(uint16_t offset_units, bool more_fragments, uint32_t id = 0x1234) {
        _frag_offset = offset_units;
        _frag_more = more_fragments;
        if (_l3 == l3_kind::ipv6) {
            bytes h(8, 0);
            put16(h, 2, uint16_t(offset_units << 3 | (more_fragments ? 1 : 0)));
            put32(h, 4, id);
            _ipv6_ext.push_back({ipprotos::fragment, std::move(h)});
        } else {
            _ipv4_fragment = true;
        }
        return *this;
    }
    // Appends an IPv6 extension header of `length` bytes (a multiple of 8, at least 8)
    // to the chain: Hop-by-Hop, Destination Options (PadN-filled), Routing (type 4
    // with zero segments left), AH (length field in 4-byte units minus 2) or Fragment.
    packet_builder& ipv6_ext(uint8_t type, size_t length = 8) {
        if (length < 8 || length % 8 != 0 || length > 2048) {
            throw std::invalid_argument("IPv6 extension length must be a multiple of 8");
        }
        bytes h(length, 0);
        switch (type) {
        case ipprotos::hop_by_hop:
        case ipprotos::dest_opts:
            h[1] = uint8_t(length / 8 - 1);
            h[2] = 1; // PadN covering the rest of the header
            h[3] = uint8_t(length - 4);
            break;
        case ipprotos::routing:
            h[1] = uint8_t(length / 8 - 1);
            h[2] = 4; // segment routing header type; segments left 0: nothing to do
            break;
        case ipprotos::ah:
            if (length < 16) {
                throw std::invalid_argument("AH needs 12 bytes plus ICV, 8-aligned");
            }
            h[1] = uint8_t(length / 4 - 2);
            put32(h, 4, 0x1000); // SPI
            put32(h, 8, 1);      // sequence number
            break;
        case ipprotos::fragment:
            if (length != 8) {
                throw std::invalid_argument("a Fragment header is 8 bytes");
            }
            break;
        default:
            h[1] = uint8_t(length / 8 - 1);
        }
        _ipv6_ext.push_back({type, std::move(h)});
        return *this;
    }
    packet_builder& flow_label(uint32_t label) {
        _flow_label = label & 0xfffff;
        return *this;
    }
    // An ARP frame for Ethernet/IPv4 (op 1 request, 2 reply).
    packet_builder& arp(uint16_t op, const mac& sender_mac, std::string_view sender_ip,
                        const mac& target_mac, std::string_view target_ip) {
        _l3 = l3_kind::arp;
        _arp_op = op;
        _arp_sha = sender_mac;
        _arp_tha = target_mac;
        auto s = parse_v4(sender_ip), t = parse_v4(target_ip);
        _src_ip.assign(s.begin(), s.end());
        _dst_ip.assign(t.begin(), t.end());
        return *this;
    }
    // Any other ethertype with an opaque body (e.g. MPLS, LLDP) or hand-made L3 bytes.
    packet_builder& raw_l3(uint16_t ethertype, bytes body) {
        _l3 = l3_kind::raw;
        _raw_ethertype = ethertype;
        _raw_l3 = std::move(body);
        return *this;
    }

    // ---- L4 ----
    packet_builder& tcp(uint16_t src_port, uint16_t dst_port, uint8_t flags = tcp_flags::syn,
                        uint32_t seq = 1000, uint32_t ack = 0) {
        _l4 = l4_kind::tcp;
        _src_port = src_port;
        _dst_port = dst_port;
        _tcp_flags = flags;
        _seq = seq;
        _ack = ack;
        return *this;
    }
    // TCP options, copied as given and padded with End-of-Options (0) to 4 bytes.
    packet_builder& tcp_options(bytes options) {
        _tcp_options = std::move(options);
        while (_tcp_options.size() % 4 != 0) {
            _tcp_options.push_back(0);
        }
        return *this;
    }
    packet_builder& window(uint16_t w) {
        _window = w;
        return *this;
    }
    // ICMP for IPv4, ICMPv6 for IPv6 (decided at build time by the L3 layer).
    packet_builder& icmp(uint8_t type, uint8_t code = 0, uint16_t id = 1, uint16_t seq = 1) {
        _l4 = l4_kind::icmp;
        _icmp_type = type;
        _icmp_code = code;
        _icmp_id = id;
        _icmp_seq = seq;
        return *this;
    }
    // An arbitrary transport protocol: `header` is copied verbatim, no checksum.
    packet_builder& raw_l4(uint8_t proto, bytes header = {}) {
        _l4 = l4_kind::raw;
        _raw_proto = proto;
        _raw_l4 = std::move(header);
        return *this;
    }
    packet_builder& payload(bytes data) {
        _payload = std::move(data);
        return *this;
    }
    packet_builder& payload(std::string_view text) {
        _payload.assign(text.begin(), text.end());
        return *this;
    }
    // `n` bytes counting up from `first` (mod 256): recognisable in a hex dump.
    packet_builder& payload_size(size_t n, uint8_t first = 0) {
        _payload.resize(n);
        for (size_t i = 0; i < n; ++i) {
            _payload[i] = uint8_t(first + i);
        }
        return *this;
    }

    // ---- Frame-level knobs ----
    // Zero-pads the frame to at least `n` bytes after the IP packet (e.g. 60, the
    // Ethernet minimum without FCS). Lengths in the headers exclude the padding.
    packet_builder& pad_to(size_t n) {
        _pad_to = n;
        return *this;
    }
    // Store these values instead of the computed checksums (to make bad ones).
    packet_builder& ipv4_checksum(uint16_t v) {
        _ipv4_checksum = v;
        return *this;
    }
    packet_builder& l4_checksum(uint16_t v) {
        _l4_checksum = v;
        return *this;
    }

    // Offsets of the layers build() will produce.
    frame_layout layout() const {
        frame_layout out;
        size_t off = 14 + 4 * _vlans.size();
        if (_l3 == l3_kind::none) {
            out.frame_length = std::max(off, _pad_to);
            return out;
        }
        out.l3_offset = off;
        size_t l3_header = 0;
        switch (_l3) {
        case l3_kind::ipv4:
            l3_header = 20 + _ipv4_options.size();
            break;
        case l3_kind::ipv6:
            l3_header = 40;
            for (const auto& e : _ipv6_ext) {
                l3_header += e.data.size();
            }
            break;
        case l3_kind::arp:
            l3_header = 28;
            break;
        case l3_kind::raw:
            l3_header = _raw_l3.size();
            break;
        case l3_kind::none:
            break;
        }
        if (_l3 == l3_kind::arp || _l3 == l3_kind::raw) {
            out.l3_length = l3_header;
            out.frame_length = std::max(off + l3_header, _pad_to);
            return out;
        }
        out.l4_offset = off + l3_header;
        size_t l4_header = 0;
        switch (_l4) {
        case l4_kind::tcp:
            l4_header = 20 + _tcp_options.size();
            break;
        case l4_kind::icmp:
            l4_header = 8;
            break;
        case l4_kind::raw:
            l4_header = _raw_l4.size();
            break;
        case l4_kind::none:
            break;
        }
        out.payload_offset = out.l4_offset + l4_header;
        out.l3_length = l3_header + l4_header + _payload.size();
        out.frame_length = std::max(off + out.l3_length, _pad_to);
        return out;
    }

    bytes build() const {
        const frame_layout lay = layout();
        if (lay.l3_length > 0xffff + (_l3 == l3_kind::ipv6 ? 40u : 0u)) {
            throw std::length_error("IP packet longer than its length field allows");
        }
        bytes f(lay.frame_length, 0);
        std::memcpy(&f[0], _dst_mac.data(), 6);
        std::memcpy(&f[6], _src_mac.data(), 6);
        size_t off = 12;
        for (const auto& v : _vlans) {
            put16(f, off, v.tpid);
            put16(f, off + 2, v.tci);
            off += 4;
        }
        put16(f, off, ethertype());
        if (_l3 == l3_kind::none) {
            return f;
        }
        const size_t l3 = lay.l3_offset;
        if (_l3 == l3_kind::raw) {
            std::copy(_raw_l3.begin(), _raw_l3.end(), f.begin() + long(l3));
            return f;
        }
        if (_l3 == l3_kind::arp) {
            put16(f, l3, 1); // Ethernet
            put16(f, l3 + 2, ethertypes::ipv4);
            put8(f, l3 + 4, 6);
            put8(f, l3 + 5, 4);
            put16(f, l3 + 6, _arp_op);
            std::memcpy(&f[l3 + 8], _arp_sha.data(), 6);
            std::memcpy(&f[l3 + 14], _src_ip.data(), 4);
            std::memcpy(&f[l3 + 18], _arp_tha.data(), 6);
            std::memcpy(&f[l3 + 24], _dst_ip.data(), 4);
            return f;
        }

        // Transport first (its checksum needs the addresses, not the IP header).
        const size_t l4 = lay.l4_offset;
        const size_t l4_length = lay.l3_length - (l4 - l3);
        const bool v6 = _l3 == l3_kind::ipv6;
        switch (_l4) {
        case l4_kind::tcp:
            put16(f, l4, _src_port);
            put16(f, l4 + 2, _dst_port);
            put32(f, l4 + 4, _seq);
            put32(f, l4 + 8, _ack);
            put8(f, l4 + 12, uint8_t(((20 + _tcp_options.size()) / 4) << 4));
            put8(f, l4 + 13, _tcp_flags);
            put16(f, l4 + 14, _window);
            std::copy(_tcp_options.begin(), _tcp_options.end(), f.begin() + long(l4 + 20));
            break;
        case l4_kind::icmp:
            put8(f, l4, _icmp_type);
            put8(f, l4 + 1, _icmp_code);
            put16(f, l4 + 4, _icmp_id);
            put16(f, l4 + 6, _icmp_seq);
            break;
        case l4_kind::raw:
            std::copy(_raw_l4.begin(), _raw_l4.end(), f.begin() + long(l4));
            break;
        case l4_kind::none:
            break;
        }
        std::copy(_payload.begin(), _payload.end(), f.begin() + long(lay.payload_offset));

        // Network header.
        const uint8_t proto = l4_proto();
        if (v6) {
            put32(f, l3, 6u << 28 | uint32_t(_tos) << 20 | _flow_label);
            put16(f, l3 + 4, uint16_t(lay.l3_length - 40));
            put8(f, l3 + 6, _ipv6_ext.empty() ? proto : _ipv6_ext.front().type);
            put8(f, l3 + 7, _ttl);
            std::memcpy(&f[l3 + 8], _src_ip.data(), 16);
            std::memcpy(&f[l3 + 24], _dst_ip.data(), 16);
            size_t e = l3 + 40;
            for (size_t i = 0; i < _ipv6_ext.size(); ++i) {
                const auto& ext = _ipv6_ext[i];
                std::copy(ext.data.begin(), ext.data.end(), f.begin() + long(e));
                put8(f, e, i + 1 < _ipv6_ext.size() ? _ipv6_ext[i + 1].type : proto);
                e += ext.data.size();
            }
        } else {
            put8(f, l3, uint8_t(0x40 | (20 + _ipv4_options.size()) / 4));
            put8(f, l3 + 1, _tos);
            put16(f, l3 + 2, uint16_t(lay.l3_length));
            put16(f, l3 + 4, _ip_id);
            uint16_t frag = _df ? 0x4000 : 0;
            if (_ipv4_fragment) {
                frag = uint16_t(frag | (_frag_more ? 0x2000 : 0) | (_frag_offset & 0x1fff));
            }
            put16(f, l3 + 6, frag);
            put8(f, l3 + 8, _ttl);
            put8(f, l3 + 9, proto);
            std::memcpy(&f[l3 + 12], _src_ip.data(), 4);
            std::memcpy(&f[l3 + 16], _dst_ip.data(), 4);
            std::copy(_ipv4_options.begin(), _ipv4_options.end(), f.begin() + long(l3 + 20));
            const size_t ihl = 20 + _ipv4_options.size();
            put16(f, l3 + 10,
                  _ipv4_checksum.value_or(reference_checksum(std::span(f).subspan(l3, ihl))));
        }

        // Transport checksum, now that the addresses are in place. ICMPv4 has no
        // pseudo-header; TCP and ICMPv6 do.
        std::optional<size_t> csum_at;
        if (_l4 == l4_kind::tcp) {
            csum_at = l4 + 16;
        } else if (_l4 == l4_kind::icmp) {
            csum_at = l4 + 2;
        }
        if (csum_at) {
            uint16_t sum;
            auto segment = std::span<const uint8_t>(f).subspan(l4, l4_length);
            if (_l4 == l4_kind::icmp && !v6) {
                sum = reference_checksum(segment);
            } else {
                sum = reference_checksum(segment,
                                         pseudo_header_sum(f, l3, v6, proto, uint32_t(l4_length)));
            }
            put16(f, *csum_at, _l4_checksum.value_or(sum));
        }
        return f;
    }

    // The reference sum of the pseudo-header (RFC 793 / RFC 8200 section 8.1) of the
    // IP header at `l3`, unfolded, for chaining into reference_checksum.
    static uint32_t pseudo_header_sum(std::span<const uint8_t> f, size_t l3, bool v6, uint8_t proto,
                                      uint32_t l4_length) {
        auto addresses = f.subspan(l3 + (v6 ? 8 : 12), v6 ? 32 : 8);
        uint32_t sum = reference_sum(addresses);
        sum += proto;
        sum += l4_length >> 16;
        sum += l4_length & 0xffff;
        return sum;
    }

private:
    enum class l3_kind { none, ipv4, ipv6, arp, raw };
    enum class l4_kind { none, tcp, icmp, raw };
    struct vlan_tag {
        uint16_t tpid;
        uint16_t tci;
    };
    struct ext_header {
        uint8_t type;
        bytes data;
    };

    uint16_t ethertype() const {
        switch (_l3) {
        case l3_kind::ipv4:
            return ethertypes::ipv4;
        case l3_kind::ipv6:
            return ethertypes::ipv6;
        case l3_kind::arp:
            return ethertypes::arp;
        case l3_kind::raw:
            return _raw_ethertype;
        case l3_kind::none:
            break;
        }
        return 0;
    }
    uint8_t l4_proto() const {
        switch (_l4) {
        case l4_kind::tcp:
            return ipprotos::tcp;
        case l4_kind::icmp:
            return _l3 == l3_kind::ipv6 ? ipprotos::icmpv6 : ipprotos::icmp;
        case l4_kind::raw:
            return _raw_proto;
        case l4_kind::none:
            break;
        }
        return ipprotos::no_next;
    }

    mac _src_mac{0x02, 0, 0, 0, 0, 0x01};
    mac _dst_mac{0x02, 0, 0, 0, 0, 0x02};
    std::vector<vlan_tag> _vlans;

    l3_kind _l3 = l3_kind::none;
    bytes _src_ip, _dst_ip;
    uint8_t _ttl = 64;
    uint8_t _tos = 0;
    uint16_t _ip_id = 1;
    bool _df = false;
    bool _ipv4_fragment = false;
    uint16_t _frag_offset = 0;
    bool _frag_more = false;
    bytes _ipv4_options;
    std::vector<ext_header> _ipv6_ext;
    uint32_t _flow_label = 0;
    uint16_t _arp_op = 1;
    mac _arp_sha{}, _arp_tha{};
    uint16_t _raw_ethertype = 0;
    bytes _raw_l3;

    l4_kind _l4 = l4_kind::none;
    uint16_t _src_port = 0, _dst_port = 0;
    uint8_t _tcp_flags = 0;
    uint32_t _seq = 0, _ack = 0;
    uint16_t _window = 65535;
    bytes _tcp_options;
    uint8_t _icmp_type = 0, _icmp_code = 0;
    uint16_t _icmp_id = 0, _icmp_seq = 0;
    uint8_t _raw_proto = 0;
    bytes _raw_l4;
    bytes _payload;

    size_t _pad_to = 0;
    std::optional<uint16_t> _ipv4_checksum;
    std::optional<uint16_t> _l4_checksum;
};

// Verifies every checksum in a frame from scratch with the reference sum, walking the
// headers independently of lib/net. Returns "" when all hold, else what failed, so a
// test reads `CHECK(verify_checksums(frame) == "")` and prints the reason on failure.
// Understands Ethernet, 802.1Q tags, IPv4 (options), IPv6 (Hop-by-Hop, Routing,
// Destination Options, AH), TCP, ICMP, ICMPv6; other protocols are not checked.
inline std::string verify_checksums(std::span<const uint8_t> f) {
    try {
        size_t off = 12;
        uint16_t type = get16(f, off);
        while (type == ethertypes::vlan || type == ethertypes::qinq) {
            off += 4;
            type = get16(f, off);
        }
        const size_t l3 = off + 2;
        size_t l4 = 0, l4_length = 0;
        uint8_t proto = 0;
        bool v6 = false;
        if (type == ethertypes::ipv4) {
            if (l3 + 20 > f.size()) {
                return "IPv4 header truncated";
            }
            size_t ihl = size_t(f[l3] & 0x0f) * 4;
            size_t total = get16(f, l3 + 2);
            if (ihl < 20 || total < ihl || l3 + total > f.size()) {
                return "IPv4 lengths inconsistent";
            }
            if (reference_fold(reference_sum(f.subspan(l3, ihl))) != 0xffff) {
                return "IPv4 header checksum wrong";
            }
            if ((get16(f, l3 + 6) & 0x3fff) != 0) {
                return ""; // a fragment: the transport checksum spans fragments
            }
            proto = f[l3 + 9];
            l4 = l3 + ihl;
            l4_length = total - ihl;
        } else if (type == ethertypes::ipv6) {
            v6 = true;
            if (l3 + 40 > f.size()) {
                return "IPv6 header truncated";
            }
            const size_t end = l3 + 40 + get16(f, l3 + 4);
            if (end > f.size()) {
                return "IPv6 payload length past the frame";
            }
            proto = f[l3 + 6];
            l4 = l3 + 40;
            while (proto == ipprotos::hop_by_hop || proto == ipprotos::routing ||
                   proto == ipprotos::dest_opts || proto == ipprotos::ah) {
                if (l4 + 2 > end) {
                    return "IPv6 extension header truncated";
                }
                size_t len = proto == ipprotos::ah ? (size_t(f[l4 + 1]) + 2) * 4
                                                   : (size_t(f[l4 + 1]) + 1) * 8;
                proto = f[l4];
                l4 += len;
                if (l4 > end) {
                    return "IPv6 extension header truncated";
                }
            }
            l4_length = end - l4;
        } else {
            return ""; // nothing checksummed that we know of
        }
        auto segment = f.subspan(l4, l4_length);
        if (proto == ipprotos::tcp || (proto == ipprotos::icmpv6 && v6)) {
            uint32_t ph = packet_builder::pseudo_header_sum(f, l3, v6, proto, uint32_t(l4_length));
            if (reference_fold(reference_sum(segment, ph)) != 0xffff) {
                return proto == ipprotos::tcp ? "TCP checksum wrong" : "ICMPv6 checksum wrong";
            }
        } else if (proto == ipprotos::icmp && !v6) {
            if (reference_fold(reference_sum(segment)) != 0xffff) {
                return "ICMP checksum wrong";
            }
        }
        return "";
    } catch (const std::out_of_range&) {
        return "frame truncated";
    }
}

} // namespace evenflow::testing
