// The one path by which configurations and backend states reach the workers:
// evenctl apply and SIGHUP (apply_config), rollbacks by an operator or by the guard
// (roll_back), drain/enable/disable (set_admin) and health verdicts (health_tick).
// Each builds a snapshot through the config manager, publishes it with RCU, and
// logs in one format: event, version, origin, uid, pid, via, then one apply_change
// line per change.
#include "daemon.hpp"

#include "config/load.hpp"
#include "control/guard.hpp"
#include "control/log.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <unistd.h>

namespace evenflow::daemon {

using control::json;
using control::log_event;

namespace {

std::string join(const std::vector<std::string>& lines, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
        out += (i ? std::string(sep) : std::string()) + lines[i];
    }
    return out;
}

std::string diagnostics_text(const config::load_result& r) {
    std::vector<std::string> lines;
    for (const auto& d : r.errors) {
        lines.push_back(d.to_string());
    }
    return join(lines, "\n");
}

void log_refusal(const std::string& reason, const control::actor& who, const std::string& origin,
                 uint64_t version, std::initializer_list<control::log_field> extra = {}) {
    std::vector<control::log_field> fields{{"reason", reason},
                                           {"origin", origin},
                                           {"uid", std::to_string(who.uid)},
                                           {"pid", std::to_string(who.pid)},
                                           {"via", who.via},
                                           {"version", std::to_string(version)}};
    fields.insert(fields.end(), extra.begin(), extra.end());
    control::log_event("warning", "apply_refused", fields);
}

json refusal_reply(const std::string& message, uint64_t version) {
    json reply = control::error_reply(message, true);
    reply["version"] = version;
    return reply;
}

} // namespace

void evenflowd::log_change(const char* event, const control::change_result& result,
                           const control::actor& who, const std::string& origin,
                           std::initializer_list<control::log_field> extra) {
    std::vector<control::log_field> fields{{"version", std::to_string(result.version)},
                                           {"origin", origin},
                                           {"uid", std::to_string(who.uid)},
                                           {"pid", std::to_string(who.pid)},
                                           {"via", who.via},
                                           {"changes", std::to_string(result.diff.size())}};
    fields.insert(fields.end(), extra.begin(), extra.end());
    log_event(who.via == "skew-guard" ? "warning" : "info", event, fields);
    for (const std::string& line : result.diff) {
        log_event("info", "apply_change",
                  {{"version", std::to_string(result.version)}, {"change", line}});
    }
}

json evenflowd::commit_reply(control::change_result& result) {
    bool changed = result.snap != nullptr;
    if (changed) {
        publish(std::move(result.snap));
        after_config_change();
    }
    json reply = control::ok_reply();
    reply["version"] = m_manager.version();
    reply["changed"] = changed;
    reply["diff"] = result.diff;
    return reply;
}

std::optional<std::vector<std::string>> evenflowd::refused_shift(const config::config& next,
                                                                 const control::actor& who,
                                                                 const std::string& origin) {
    // Guarded apply: predict the new distribution and refuse a large shift. The
    // running config's limits apply, so a config cannot loosen its own guard.
    build_result candidate =
        build_snapshot(next, m_manager.registry(), {}, m_manager.version() + 1);
    if (!candidate.value) {
        return std::nullopt; // the apply itself reports why it cannot build
    }
    control::shift_review review =
        control::review_shift(*m_shared.snap.load(), *candidate.value, m_manager.running().skew);
    if (!review.refused) {
        return std::nullopt;
    }
    ++m_refused["shift"];
    log_refusal("distribution shift", who, origin, m_manager.version(),
                {{"shift", join(review.lines, "; ")}});
    return review.lines;
}

json evenflowd::apply_config(const config::load_result& loaded, const control::actor& who,
                             const std::string& origin, bool accept_shift) {
    if (!loaded.ok()) {
        ++m_refused["invalid"];
        log_refusal("invalid config", who, origin, m_manager.version(),
                    {{"errors", std::to_string(loaded.errors.size())},
                     {"first_error", loaded.errors.empty() ? "" : loaded.errors[0].to_string()}});
        return refusal_reply(diagnostics_text(loaded), m_manager.version());
    }
    // SIGHUP has no way to say "I accept the shift": a large one is refused and
    // logged; `evenctl apply FILE --accept-shift` is the deliberate path.
    if (!accept_shift) {
        if (auto shift = refused_shift(*loaded.value, who, origin)) {
            json reply = refusal_reply("refused: this config shifts traffic too far (evenctl "
                                       "apply FILE --accept-shift to apply it anyway):\n  " +
                                           join(*shift, "\n  "),
                                       m_manager.version());
            reply["shift"] = *shift;
            return reply;
        }
    }
    control::change_result result = m_manager.apply(*loaded.value, who, origin);
    if (!result.ok) {
        ++m_refused["restart"];
        log_refusal(result.error, who, origin, m_manager.version());
        return refusal_reply(result.error, m_manager.version());
    }
    if (result.snap) {
        ++m_applies;
        m_probation.on_apply(std::chrono::steady_clock::now());
        log_change("apply", result, who, origin);
    }
    return commit_reply(result);
}

void evenflowd::reload_from_file() {
    control::actor who{uint32_t(getuid()), int32_t(getpid()), "sighup"};
    apply_config(config::load_file(m_options.config_path), who,
                 fmt::format("reload {}", m_options.config_path), false);
}

json evenflowd::roll_back(std::optional<uint64_t> version, const control::actor& who,
                          const std::string& why) {
    uint64_t from = m_manager.version();
    bool automatic = who.via == "skew-guard";
    if (automatic) {
        // Verdicts reached under the bad config (a wrong health port, say) go with it,
        // before the rollback builds its snapshot.
        m_manager.forget_health();
        m_health.forget_verdicts();
    }
    control::change_result result = m_manager.rollback(version, who);
    if (!result.ok) {
        log_event("warning", automatic ? "auto_rollback_failed" : "rollback_refused",
                  {{"reason", result.error}, {"why", why}});
        return control::error_reply(result.error, true);
    }
    const std::string& origin = m_manager.history().back().origin;
    if (automatic) {
        ++m_rollbacks["automatic"];
        m_skew.reset_windows();
        auto since_apply = m_probation.since_apply(std::chrono::steady_clock::now());
        m_probation.on_rollback(); // probation ends with the rollback
        log_change("auto_rollback", result, who, origin,
                   {{"from", std::to_string(from)},
                    {"why", why},
                    {"since_apply_s", fmt::format("{:.1f}", since_apply.value_or(0))}});
    } else {
        ++m_rollbacks["operator"];
        log_change("rollback", result, who, origin);
    }
    return commit_reply(result);
}

json evenflowd::set_admin(const json& request, const control::actor& who,
                          control::admin_state state) {
    if (!request.contains("service") || !request.contains("backend")) {
        return control::error_reply("malformed request: needs \"service\" and \"backend\"");
    }
    std::string service = request["service"];
    std::string backend = request["backend"];
    control::change_result result = m_manager.set_admin(service, backend, state, who);
    if (!result.ok) {
        return control::error_reply(result.error, true);
    }
    log_event("info", "backend_admin",
              {{"service", service},
               {"backend", backend},
               {"state", std::string(control::to_string(state))},
               {"version", std::to_string(m_manager.version())},
               {"uid", std::to_string(who.uid)},
               {"pid", std::to_string(who.pid)},
               {"via", who.via}});
    return commit_reply(result);
}

void evenflowd::publish(std::unique_ptr<snapshot> snap) {
    auto now = std::chrono::steady_clock::now();
    bool in_probation = m_probation.active(now, m_manager.running().skew);
    for (const auto& kept : m_stamper.stamp(*snap, dataplane::worker::now_ms(), in_probation)) {
        log_event("warning", "probation_keeps_flows",
                  {{"service", kept.service},
                   {"down_weight", std::to_string(kept.down_weight)},
                   {"total_weight", std::to_string(kept.total_weight)},
                   {"action", "established flows of down backends kept, not reset"},
                   {"version", std::to_string(m_manager.version())}});
    }
    m_shared.snap.publish(std::move(snap), *m_qsbr);
    m_health.sync(*m_shared.snap.load(), now);
    update_no_backend_alarms();
    m_metrics.publish(render_metrics()); // scrapes see a change at once, not a second later
}

void evenflowd::after_config_change() {
    m_skew.reconfigure(m_manager.running().skew);
    m_slow_path->want_neighbors(m_manager.running());
    m_slow_path->announce_vips(*m_shared.snap.load());
}

bool evenflowd::on_local_tcp(const net::packet_meta& meta) {
    namespace flag = net::tcp_flag;
    bool syn_ack = (meta.tcp_flags & (flag::syn | flag::ack)) == (flag::syn | flag::ack);
    bool rst = (meta.tcp_flags & flag::rst) != 0;
    if (syn_ack || rst) {
        m_health.on_reply(meta.key.src, ntohs(meta.key.src_port), ntohs(meta.key.dst_port),
                          syn_ack ? control::health_checker::reply_kind::syn_ack
                                  : control::health_checker::reply_kind::rst,
                          std::chrono::steady_clock::now());
    }
    // A SYN-ACK to our address is answered with RST, probe or not: nothing of ours
    // listens there, and the backend frees its half-open connection at once.
    return syn_ack;
}

void evenflowd::health_tick() {
    auto now = std::chrono::steady_clock::now();
    for (const auto& p : m_health.due(now)) {
        m_slow_path->send_tcp_syn(p.address, p.port, p.src_port, p.seq);
    }
    for (const auto& t : m_health.take_transitions(now)) {
        log_event(t.to == control::health_verdict::down ? "warning" : "info", "health",
                  {{"service", t.service},
                   {"backend", t.backend},
                   {"from", std::string(control::to_string(t.from))},
                   {"to", std::string(control::to_string(t.to))},
                   {"reason", t.reason},
                   {"version", std::to_string(m_manager.version())}});
        control::change_result r = m_manager.set_health(t.backend_id, t.to);
        if (r.snap) {
            publish(std::move(r.snap));
        }
    }
}

void evenflowd::update_no_backend_alarms() {
    std::string first_raised;
    for (const auto& c :
         m_no_backend.update(*m_shared.snap.load(), std::chrono::system_clock::now())) {
        log_event(c.raised ? "warning" : "info", c.raised ? "no_backend_alarm" : "no_backend_clear",
                  {{"service", c.service}, {"version", std::to_string(m_manager.version())}});
        if (c.raised && first_raised.empty()) {
            first_raised = c.service;
        }
    }
    if (!first_raised.empty()) {
        maybe_roll_back(fmt::format("no backend up for service {}", first_raised));
    }
}

void evenflowd::maybe_roll_back(const std::string& why) {
    if (!m_probation.should_roll_back(std::chrono::steady_clock::now(), m_manager.running().skew,
                                      m_manager.history().size())) {
        return;
    }
    roll_back(std::nullopt, control::actor{uint32_t(getuid()), int32_t(getpid()), "skew-guard"},
              why);
}

} // namespace evenflow::daemon
