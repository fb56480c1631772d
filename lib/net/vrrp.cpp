#include "net/vrrp.hpp"

#include "net/bytes.hpp"
#include "net/checksum.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace evenflow::net {

namespace {

constexpr uint8_t vrrp_version_type = 0x31; // version 3, type 1 (advertisement)
constexpr size_t vrrp_header_length = 8;
constexpr uint32_t vrrp_group_be = 0xe0000012; // 224.0.0.18, host order
constexpr mac_addr vrrp_group_mac = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x12};

// RFC 5798 §5.2.8: over the VRRP message and an IPv4 pseudo-header.
uint16_t vrrp_checksum(uint32_t src_be, uint32_t dst_be, const uint8_t* vrrp, size_t length) {
    uint8_t pseudo[12];
    store32(pseudo, src_be);
    store32(pseudo + 4, dst_be);
    pseudo[8] = 0;
    pseudo[9] = ipproto_vrrp;
    store16(pseudo + 10, htons(uint16_t(length)));
    return checksum_fold(checksum_partial(vrrp, length, checksum_partial(pseudo, sizeof pseudo)));
}

} // namespace

mac_addr vrrp_virtual_mac(uint8_t id) {
    return {0x00, 0x00, 0x5e, 0x00, 0x01, id};
}

size_t build_vrrp_advert(std::span<uint8_t> out, const vrrp_advert& advert) {
    if (out.size() < vrrp_frame_length || !advert.sender.is_v4() || !advert.address.is_v4()) {
        return 0;
    }
    uint8_t* p = out.data();
    std::memset(p, 0, vrrp_frame_length);
    const mac_addr source = vrrp_virtual_mac(advert.id);
    std::memcpy(p, vrrp_group_mac.data(), 6);
    std::memcpy(p + 6, source.data(), 6);
    store16(p + 12, htons(0x0800));
    uint8_t* ip = p + 14;
    constexpr size_t vrrp_length = vrrp_header_length + 4;
    ip[0] = 0x45;
    ip[1] = 0xc0; // precedence: internetwork control, as routing protocols send
    store16(ip + 2, htons(uint16_t(20 + vrrp_length)));
    ip[8] = 255; // RFC 5798 §5.1.1.3: receivers drop anything else (not routed here)
    ip[9] = ipproto_vrrp;
    store32(ip + 12, advert.sender.v4_be());
    store32(ip + 16, htonl(vrrp_group_be));
    store16(ip + 10, checksum_fold(checksum_partial(ip, 20)));
    uint8_t* v = ip + 20;
    v[0] = vrrp_version_type;
    v[1] = advert.id;
    v[2] = advert.priority;
    v[3] = 1; // one address
    store16(v + 4, htons(uint16_t(advert.interval_cs & 0x0fff)));
    store32(v + 8, advert.address.v4_be());
    store16(v + 6, vrrp_checksum(advert.sender.v4_be(), htonl(vrrp_group_be), v, vrrp_length));
    return vrrp_frame_length;
}

bool read_vrrp_advert(std::span<const uint8_t> frame, const packet_meta& meta, vrrp_advert& out) {
    if (meta.l3 != l3_type::ipv4 || meta.l4_proto != ipproto_vrrp ||
        size_t(meta.l3_offset) + 20 > frame.size()) {
        return false;
    }
    const uint8_t* ip = frame.data() + meta.l3_offset;
    const size_t header = size_t(ip[0] & 0x0f) * 4;
    const size_t total = ntohs(load16(ip + 2));
    if (ip[8] != 255 || total < header + vrrp_header_length + 4 ||
        size_t(meta.l3_offset) + total > frame.size()) {
        return false;
    }
    const uint8_t* v = ip + header;
    const size_t length = total - header;
    const uint8_t count = v[3];
    if (v[0] != vrrp_version_type || count == 0 || length < vrrp_header_length + 4u * count) {
        return false;
    }
    if (vrrp_checksum(load32(ip + 12), load32(ip + 16), v, length) != 0 &&
        checksum_fold(checksum_partial(v, length, 0)) != 0) {
        // Neither the RFC's sum nor the pseudo-header-less one some implementations
        // send (keepalived's vrrp_v3_checksum_as_v2) verifies.
        return false;
    }
    out.sender = ip_addr::from_v4_be(load32(ip + 12));
    out.id = v[1];
    out.priority = v[2];
    out.interval_cs = uint16_t(ntohs(load16(v + 4)) & 0x0fff);
    out.address = ip_addr::from_v4_be(load32(v + 8));
    return true;
}

vrrp_election::vrrp_election(uint8_t priority, std::chrono::milliseconds interval,
                             ip_addr own_address)
    : m_priority(priority), m_interval(interval), m_own(own_address), m_peer_interval(interval) {}

std::chrono::microseconds
vrrp_election::master_down_interval(std::chrono::microseconds peer_interval) const {
    // RFC 5798 §6.1: three adverts missed, plus a skew that lets the highest
    // priority backup move first.
    return 3 * peer_interval + (256 - priority()) * peer_interval / 256;
}

vrrp_election::actions vrrp_election::become_master(clock::time_point now) {
    actions a;
    a.send_advert = true;
    a.advert_priority = priority();
    a.became_master = m_role != role::master;
    m_transitions += a.became_master ? 1 : 0;
    m_role = role::master;
    m_next_advert = now + m_interval;
    return a;
}

vrrp_election::actions vrrp_election::become_backup(std::chrono::microseconds peer_interval,
                                                    clock::time_point now) {
    actions a;
    a.became_backup = m_role != role::backup;
    m_transitions += a.became_backup ? 1 : 0;
    m_role = role::backup;
    m_peer_interval = peer_interval;
    m_master_down_at = now + master_down_interval(peer_interval);
    return a;
}

vrrp_election::actions vrrp_election::start(clock::time_point now) {
    m_started = true;
    m_role = role::backup;
    m_master_down_at = now + master_down_interval(m_interval);
    return {};
}

vrrp_election::actions vrrp_election::receive(const vrrp_advert& advert, clock::time_point now) {
    if (!m_started || advert.sender == m_own) {
        return {};
    }
    const std::chrono::microseconds interval =
        std::chrono::milliseconds(10) * std::max<uint16_t>(advert.interval_cs, 1);
    m_last_peer = advert;
    m_last_peer_at = now;
    m_peer_interval = interval;
    if (m_role == role::backup) {
        if (advert.priority == 0) {
            // The master is leaving: take over after the skew alone.
            m_master_down_at = now + (256 - priority()) * interval / 256;
        } else if (advert.priority >= priority()) {
            m_master_down_at = now + master_down_interval(interval);
        }
        // A lower priority master is preempted when the timer runs out.
        return {};
    }
    if (advert.priority == 0) {
        return become_master(now); // advertise at once: the leaver's backups hear us
    }
    if (advert.priority > priority() ||
        (advert.priority == priority() && ntohl(advert.sender.v4_be()) > ntohl(m_own.v4_be()))) {
        return become_backup(interval, now);
    }
    return {};
}

vrrp_election::actions vrrp_election::tick(clock::time_point now) {
    if (!m_started) {
        return {};
    }
    if (m_role == role::master) {
        if (now >= m_next_advert) {
            return become_master(now); // the periodic advert
        }
        return {};
    }
    if (now >= m_master_down_at) {
        return become_master(now);
    }
    return {};
}

vrrp_election::actions vrrp_election::leave(clock::time_point now) {
    actions a;
    if (m_started && m_role == role::master) {
        a = become_backup(m_peer_interval, now);
        a.send_advert = true;
        a.advert_priority = 0;
    }
    m_started = false;
    return a;
}

vrrp_election::actions vrrp_election::set_in_service(bool in_service, clock::time_point now) {
    if (in_service == m_in_service) {
        return {};
    }
    m_in_service = in_service;
    if (!m_started) {
        return {};
    }
    if (!in_service && m_role == role::master) {
        // Hand over now: a priority-0 advert makes the backups take over after their
        // skew (a few ms) instead of three intervals. (Backups are silent: whether one
        // is there shows only in whether it takes over; if none does, this host takes
        // the address back when its own timer runs out, priority 1.)
        actions a = become_backup(m_peer_interval, now);
        a.send_advert = true;
        a.advert_priority = 0;
        return a;
    }
    if (m_role == role::master) {
        return become_master(now); // back in service: say the new priority at once
    }
    return {};
}

} // namespace evenflow::net
