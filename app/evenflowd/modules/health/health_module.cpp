#include "health_module.hpp"

#include "control/log.hpp"

#include <arpa/inet.h>

namespace evenflow::daemon {

using control::log_event;

health_module::health_module(module_context& ctx) : m_ctx(ctx) {
    m_ctx.shared.probes = &m_checker.probes();
}

bool health_module::start(std::string*) {
    m_ctx.slow_path->on_probe_reply(
        [this](const net::packet_meta& meta, uint32_t ack) { return on_reply(meta, ack); });
    return true;
}

bool health_module::on_reply(const net::packet_meta& meta, uint32_t ack) {
    namespace flag = net::tcp_flag;
    bool syn_ack = (meta.tcp_flags & (flag::syn | flag::ack)) == (flag::syn | flag::ack);
    return m_checker.on_reply(meta.key.src, ntohs(meta.key.src_port), ntohs(meta.key.dst_port),
                              syn_ack ? control::health_checker::reply_kind::syn_ack
                                      : control::health_checker::reply_kind::rst,
                              ack, clock::now());
}

void health_module::tick(clock::time_point) {
    auto now = clock::now();
    for (const auto& p : m_checker.due(now)) {
        m_ctx.slow_path->send_tcp_syn(p.address, p.port, p.src_port, p.seq);
    }
    control::config_manager& manager = m_ctx.changes.manager();
    bool changed = false;
    control::log_batch lines; // a rack failing is thousands of verdicts: one write
    for (const auto& t : m_checker.take_transitions(now)) {
        lines.add(t.to == control::health_verdict::down ? "warning" : "info", "health",
                  {{"service", t.service},
                   {"backend", t.backend},
                   {"from", std::string(control::to_string(t.from))},
                   {"to", std::string(control::to_string(t.to))},
                   {"reason", t.reason},
                   {"version", std::to_string(manager.version())}});
        changed |= manager.record_health(t.backend_id, t.to);
    }
    if (changed) {
        m_ctx.changes.request_states_rebuild(); // all of this tick's verdicts, one publication
    }
}

void health_module::on_publish(const snapshot& snap, const control::publication&) {
    m_checker.sync(snap, clock::now());
}

uint64_t health_module::forged_replies() const {
    // The workers drop most forged replies (no probe in flight matches); the checker
    // counts those that matched one but could not answer it.
    return m_checker.forged_replies() + m_ctx.slow_path->forged_probe_replies();
}

void health_module::collect_metrics(exposition& out) {
    out.help("evenflow_health_forged_replies_total", "counter",
             "Probe replies that named a probe of ours but could not answer it.");
    out.sample("evenflow_health_forged_replies_total", {}, double(forged_replies()));
    out.help("evenflow_health_inconclusive_total", "counter",
             "Probes not judged: their replies may have been dropped by our own overload.");
    out.sample("evenflow_health_inconclusive_total", {}, double(m_checker.inconclusive()));
}

void health_module::status(api::json& out) {
    out["health"] = {{"targets", m_checker.targets()},
                     {"probes_sent", m_checker.probes_sent()},
                     {"probes_deferred", m_checker.probes_deferred()}};
}

void health_module::stats(api::json& out) {
    out["health"] = {{"forged_replies", forged_replies()},
                     {"inconclusive", m_checker.inconclusive()}};
}

} // namespace evenflow::daemon
