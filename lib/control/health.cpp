#include "control/health.hpp"

#include <algorithm>
#include <random>
#include <utility>

namespace evenflow::control {

namespace {

// Where in its first interval a target is probed: spread evenly over targets and
// stable for an endpoint, so a large pool is never probed in one burst.
double phase_of(const net::ip_addr& address, uint16_t port) {
    uint32_t h = net::crc32c(address.bytes.data(), address.bytes.size(), port);
    return double(h) / 4294967296.0;
}

} // namespace

uint32_t health_checker::next_isn() {
    // Unpredictable initial sequence numbers: only the backend that received a probe
    // can acknowledge it. xorshift64* is fast; the system's entropy (getrandom via
    // std::random_device) reseeds it every 4,096 probes.
    if (m_isn_left == 0 || m_isn_state == 0) {
        std::random_device entropy;
        m_isn_state = (uint64_t(entropy()) << 32 | entropy()) | 1;
        m_isn_left = 4096;
    }
    --m_isn_left;
    m_isn_state ^= m_isn_state >> 12;
    m_isn_state ^= m_isn_state << 25;
    m_isn_state ^= m_isn_state >> 27;
    return uint32_t((m_isn_state * 0x2545f4914f6cdd1dull) >> 32);
}

void health_checker::sync(const snapshot& snap, clock::time_point now) {
    if (snap.cfg == m_synced) {
        return; // a rebuild for states only: the same endpoints
    }
    m_synced = snap.cfg;
    std::map<endpoint, target> kept;
    for (const snapshot_backend& b : snap.backends) {
        const snapshot_service& svc = snap.services[b.service_index];
        const config::pool_config* pool = snap.cfg->find_pool(svc.pool);
        if (pool == nullptr || pool->health.kind != config::health_kind::tcp) {
            continue;
        }
        endpoint e{b.address, pool->health.port.value_or(b.port)};
        auto [it, fresh] = kept.try_emplace(e);
        target& t = it->second;
        if (fresh) {
            if (auto old = m_targets.find(e); old != m_targets.end()) {
                t = std::move(old->second);
                t.members.clear();
            } else {
                auto spread = std::chrono::duration_cast<clock::duration>(
                    pool->health.interval * phase_of(e.first, e.second));
                t.next_probe = now + spread;
            }
            t.cfg = pool->health;
        }
        t.members.push_back({b.id, svc.name, b.key()});
    }
    for (auto& [e, t] : m_targets) {
        if (t.outstanding && !kept.contains(e)) {
            m_probes.close(*t.outstanding); // removed while its probe was out
        }
    }
    m_targets = std::move(kept);
    m_schedule.clear();
    m_timeouts.clear();
    for (auto& [e, t] : m_targets) {
        if (t.outstanding) {
            m_timeouts.insert({t.deadline, e});
        } else {
            m_schedule.insert({t.next_probe, e});
        }
    }
}

std::vector<health_checker::probe> health_checker::due(clock::time_point now) {
    std::vector<probe> out;
    if (!m_tokens_at) {
        m_tokens_at = now;
        m_tokens = m_rate / 10;
    }
    m_tokens = std::min(
        m_rate / 10, m_tokens + m_rate * std::chrono::duration<double>(now - *m_tokens_at).count());
    m_tokens_at = now;
    while (!m_schedule.empty() && m_schedule.begin()->first <= now) {
        if (m_tokens < 1) {
            ++m_deferred;
            break; // the rest waits for the next call
        }
        endpoint e = m_schedule.begin()->second;
        target& t = m_targets.at(e);
        uint32_t seq = next_isn();
        while (seq + 1 == 0) { // the table's "free": never expected
            seq = next_isn();
        }
        // One probe outstanding per endpoint: a port in use by another endpoint's
        // probe is no obstacle, as replies are matched on the endpoint too.
        std::optional<net::probe_table::ticket> ticket = m_probes.open(e.first, e.second, seq + 1);
        if (!ticket) {
            ++m_deferred;
            break; // every slot in flight: the rest waits for replies and timeouts
        }
        m_schedule.erase(m_schedule.begin());
        t.outstanding = ticket;
        t.outstanding_seq = seq;
        t.deadline = now + std::chrono::duration_cast<clock::duration>(t.cfg.timeout);
        t.next_probe = now + std::chrono::duration_cast<clock::duration>(t.cfg.interval);
        m_timeouts.insert({t.deadline, e});
        out.push_back({t.members.front().id, e.first, e.second, ticket->port, seq});
        m_tokens -= 1;
        ++m_sent;
    }
    return out;
}

bool health_checker::on_reply(const net::ip_addr& address, uint16_t src_port, uint16_t dst_port,
                              reply_kind kind, uint32_t ack, clock::time_point now) {
    (void)now;
    auto it = m_targets.find({address, src_port});
    if (it == m_targets.end() || !it->second.outstanding ||
        it->second.outstanding->port != dst_port) {
        return false;
    }
    target& t = it->second;
    if (ack != t.outstanding_seq + 1) {
        ++m_forged; // it names our probe but cannot have seen it
        return false;
    }
    m_timeouts.erase({t.deadline, it->first});
    m_probes.close(*t.outstanding);
    t.outstanding.reset();
    m_schedule.insert({t.next_probe, it->first});
    record(t, kind == reply_kind::syn_ack, kind == reply_kind::syn_ack ? "syn-ack" : "rst");
    return true;
}

void health_checker::record(target& t, bool success, const char* reason) {
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
        for (const member& m : t.members) {
            m_transitions.push_back({m.id, m.service, m.backend, before, t.verdict, reason});
        }
    }
}

void health_checker::forget_verdicts() {
    for (auto& [e, t] : m_targets) {
        t.verdict = health_verdict::unknown;
        t.successes = 0;
        t.failures = 0;
    }
}

std::vector<health_checker::transition> health_checker::take_transitions(clock::time_point now) {
    while (!m_timeouts.empty() && m_timeouts.begin()->first <= now) {
        endpoint e = m_timeouts.begin()->second;
        m_timeouts.erase(m_timeouts.begin());
        target& t = m_targets.at(e);
        const bool lost = m_probes.reply_lost(*t.outstanding);
        m_probes.close(*t.outstanding);
        t.outstanding.reset();
        m_schedule.insert({t.next_probe, e});
        if (lost) {
            ++m_inconclusive; // answered, but our data plane dropped the answer
            continue;
        }
        record(t, false, "timeout");
    }
    return std::exchange(m_transitions, {});
}

} // namespace evenflow::control
