#include "dataplane/neighbor.hpp"

#include "net/flow_key.hpp"

#include <bit>

namespace evenflow::dataplane {

namespace {

size_t slot_hash(uint16_t iface, const net::ip_addr& ip) {
    return net::crc32c(ip.bytes.data(), ip.bytes.size(), iface);
}

} // namespace

std::unique_ptr<neighbor_table> neighbor_table::build(std::span<const entry> entries) {
    auto table = std::make_unique<neighbor_table>();
    size_t slots = std::bit_ceil(std::max<size_t>(16, entries.size() * 2));
    table->m_slots.assign(slots, {});
    for (const entry& e : entries) {
        size_t i = slot_hash(e.iface, e.ip) & (slots - 1);
        while (table->m_slots[i].used) {
            i = (i + 1) & (slots - 1);
        }
        table->m_slots[i] = {e, true};
    }
    table->m_count = entries.size();
    return table;
}

const rte_ether_addr* neighbor_table::find(uint16_t iface, const net::ip_addr& ip) const {
    size_t mask = m_slots.size() - 1;
    for (size_t i = slot_hash(iface, ip) & mask;; i = (i + 1) & mask) {
        const slot& s = m_slots[i];
        if (!s.used) {
            return nullptr;
        }
        if (s.e.iface == iface && s.e.ip == ip) {
            return &s.e.mac;
        }
    }
}

neighbor_resolver::state* neighbor_resolver::entry(uint16_t iface, const net::ip_addr& ip) {
    auto it = m_neighbors.find({iface, ip});
    if (it != m_neighbors.end()) {
        return &it->second;
    }
    if (m_neighbors.size() >= max_neighbors) {
        ++m_table_full;
        return nullptr;
    }
    return &m_neighbors[{iface, ip}];
}

neighbor_resolver::learnt neighbor_resolver::learn(uint16_t iface, const net::ip_addr& ip,
                                                   const rte_ether_addr& mac, bool reply,
                                                   clock::time_point now) {
    learnt out;
    auto it = m_neighbors.find({iface, ip});
    if (it == m_neighbors.end()) {
        ++m_ignored; // never asked about: unsolicited
        return out;
    }
    state& s = it->second;
    const bool asked = s.tries > 0 || !s.waiting.empty();
    if (!s.resolved && !(reply && asked)) {
        ++m_ignored; // only the answer to our request resolves it
        return out;
    }
    if (s.resolved && !rte_is_same_ether_addr(&s.mac, &mac)) {
        if (now - s.changed_at < min_change_interval) {
            ++m_ignored; // flapping: at most one change a second
            return out;
        }
        out.mac_changed = true;
        out.old_mac = s.mac;
        s.changed_at = now;
        ++m_mac_changes;
    }
    if (!s.resolved || s.failed || out.mac_changed) {
        m_changed = true;
    }
    out.accepted = true;
    s.mac = mac;
    s.resolved = true;
    s.failed = false;
    s.tries = 0;
    s.resolved_at = now;
    out.released.assign(s.waiting.begin(), s.waiting.end());
    m_waiting -= s.waiting.size();
    s.waiting.clear();
    return out;
}

bool neighbor_resolver::want(uint16_t iface, const net::ip_addr& ip) {
    return entry(iface, ip) != nullptr;
}

bool neighbor_resolver::hold(uint16_t iface, const net::ip_addr& ip, rte_mbuf* packet) {
    state* s = entry(iface, ip);
    if (s == nullptr || s->waiting.size() >= max_waiting_per_neighbor || m_waiting >= max_waiting) {
        ++m_dropped;
        return false;
    }
    if (s->failed) {
        // Someone still sends toward it: try again from scratch.
        s->failed = false;
        s->tries = 0;
    }
    s->waiting.push_back(packet);
    ++m_waiting;
    return true;
}

void neighbor_resolver::tick(clock::time_point now, std::vector<request>& to_send,
                             std::vector<rte_mbuf*>& to_free) {
    for (auto& [key, s] : m_neighbors) {
        if (s.failed) {
            continue;
        }
        bool stale = s.resolved && now - s.resolved_at >= reachable_for;
        bool pending = !s.resolved || stale;
        if (!pending || now - s.last_request < retry_every) {
            continue;
        }
        if (s.tries >= max_tries) {
            // Unreachable. A stale entry is kept (the MAC is probably still right and
            // dropping it would blackhole flows); waiting packets are given up on.
            s.failed = true;
            to_free.insert(to_free.end(), s.waiting.begin(), s.waiting.end());
            m_dropped += s.waiting.size();
            m_waiting -= s.waiting.size();
            s.waiting.clear();
            continue;
        }
        ++s.tries;
        s.last_request = now;
        to_send.push_back({key.first, key.second});
    }
}

std::unique_ptr<neighbor_table> neighbor_resolver::build() {
    std::vector<neighbor_table::entry> entries;
    for (const auto& [key, s] : m_neighbors) {
        if (s.resolved) {
            entries.push_back({key.second, key.first, s.mac});
        }
    }
    m_changed = false;
    return neighbor_table::build(entries);
}

std::vector<neighbor_resolver::view> neighbor_resolver::list() const {
    std::vector<view> out;
    for (const auto& [key, s] : m_neighbors) {
        out.push_back({key.first, key.second, s.mac, s.resolved, s.tries, s.waiting.size()});
    }
    return out;
}

} // namespace evenflow::dataplane
