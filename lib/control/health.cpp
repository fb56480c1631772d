#include "control/health.hpp"

#include <utility>

namespace evenflow::control {

void health_checker::sync(const snapshot& snap, clock::time_point now) {
    std::map<uint32_t, target> kept;
    for (const snapshot_backend& b : snap.backends) {
        const snapshot_service& svc = snap.services[b.service_index];
        const config::pool_config* pool = snap.cfg->find_pool(svc.pool);
        if (pool == nullptr || pool->health.kind != config::health_kind::tcp) {
            continue;
        }
        target t;
        if (auto it = m_targets.find(b.id); it != m_targets.end()) {
            t = it->second;
        } else {
            // Spread first probes over one interval so a large pool is not probed
            // in one burst.
            auto spread = pool->health.interval * (b.id % 16) / 16;
            t.next_probe = now + std::chrono::duration_cast<clock::duration>(spread);
        }
        t.service = svc.name;
        t.backend = b.key();
        t.address = b.address;
        t.port = pool->health.port.value_or(b.port);
        t.cfg = pool->health;
        kept[b.id] = t;
    }
    for (auto it = m_by_port.begin(); it != m_by_port.end();) {
        it = kept.count(it->second) ? std::next(it) : m_by_port.erase(it);
    }
    m_targets = std::move(kept);
}

std::vector<health_checker::probe> health_checker::due(clock::time_point now) {
    std::vector<probe> out;
    for (auto& [id, t] : m_targets) {
        if (t.outstanding_port || now < t.next_probe) {
            continue;
        }
        // Next free probe port (a port stays reserved while its probe is outstanding).
        uint16_t port = 0;
        for (uint16_t tries = 0; tries < probe_ports; ++tries) {
            uint16_t candidate = uint16_t(first_probe_port + m_next_port);
            m_next_port = uint16_t((m_next_port + 1) % probe_ports);
            if (!m_by_port.count(candidate)) {
                port = candidate;
                break;
            }
        }
        if (port == 0) {
            break;
        }
        t.outstanding_port = port;
        t.outstanding_since = now;
        t.next_probe = now + std::chrono::duration_cast<clock::duration>(t.cfg.interval);
        m_by_port[port] = id;
        m_seq = m_seq * 1103515245u + 12345u;
        out.push_back({id, t.address, t.port, port, m_seq});
        ++m_sent;
    }
    return out;
}

bool health_checker::on_reply(const net::ip_addr& address, uint16_t src_port, uint16_t dst_port,
                              reply_kind kind, clock::time_point now) {
    (void)now;
    auto it = m_by_port.find(dst_port);
    if (it == m_by_port.end()) {
        return false;
    }
    auto t = m_targets.find(it->second);
    if (t == m_targets.end() || t->second.address != address || t->second.port != src_port) {
        return false;
    }
    m_by_port.erase(it);
    t->second.outstanding_port.reset();
    record(t->first, t->second, kind == reply_kind::syn_ack,
           kind == reply_kind::syn_ack ? "syn-ack" : "rst");
    return true;
}

void health_checker::record(uint32_t id, target& t, bool success, const char* reason) {
    health_verdict before = t.verdict;
    if (success) {
        t.failures = 0;
        ++t.successes;
        // A backend that never had a verdict comes up on its first success; one that
        // was down needs `rise` in a row.
        if (t.verdict != health_verdict::up &&
            (t.verdict == health_verdict::unknown || t.successes >= t.cfg.rise)) {
            t.verdict = health_verdict::up;
        }
    } else {
        t.successes = 0;
        ++t.failures;
        if (t.verdict != health_verdict::down && t.failures >= t.cfg.fall) {
            t.verdict = health_verdict::down;
        }
    }
    if (t.verdict != before) {
        m_transitions.push_back({id, t.service, t.backend, before, t.verdict, reason});
    }
}

void health_checker::forget_verdicts() {
    for (auto& [id, t] : m_targets) {
        t.verdict = health_verdict::unknown;
        t.successes = 0;
        t.failures = 0;
    }
}

std::vector<health_checker::transition> health_checker::take_transitions(clock::time_point now) {
    for (auto& [id, t] : m_targets) {
        if (t.outstanding_port && now - t.outstanding_since >= t.cfg.timeout) {
            m_by_port.erase(*t.outstanding_port);
            t.outstanding_port.reset();
            record(id, t, false, "timeout");
        }
    }
    return std::exchange(m_transitions, {});
}

} // namespace evenflow::control
