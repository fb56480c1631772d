#include "bgp_module.hpp"

#include "control/log.hpp"
#include "control/state_store.hpp"

#include <fmt/format.h>

#include <filesystem>

namespace evenflow::daemon {

using api::json;
using control::log_event;

bool bgp_module::start(std::string* error) {
    const config::config& running = m_ctx.changes.manager().running();
    if (!running.bgp.enabled) {
        return true;
    }
    // BIRD's directory beside the control socket (/run/evenflow), named after it
    // (evenflow.sock: evenflow-bird/bird.conf, ...): it lives as long as the daemon
    // runs, and two daemons whose sockets share a directory keep theirs apart.
    std::filesystem::path socket(m_ctx.server.path());
    std::string files = (socket.parent_path() / (socket.stem().string() + "-bird")).string();
    std::vector<net::ip_addr> vips;
    for (const auto& w : control::decide_announcements(*m_ctx.shared.snap.load(), false, true)) {
        vips.push_back(w.vip);
    }
    m_speaker = std::make_unique<bgp_speaker>();
    if (!m_speaker->prepare(running.bgp, vips, files, error)) {
        return false;
    }
    // An operator's drain-host outlives a crash or a restart: the host stays withdrawn
    // until undrain-host.
    if (std::string marker = drain_marker(); !marker.empty() && std::filesystem::exists(marker)) {
        m_host_drained = true;
        log_event("warning", "host_drain_resumed",
                  {{"marker", marker}, {"undo", "evenctl undrain-host"}});
    }
    return true;
}

std::string bgp_module::drain_marker() const {
    const control::state_store& state = m_ctx.changes.state();
    return state.is_open() ? state.dir() + "/host-drained" : "";
}

std::string bgp_module::remember_drain(bool drained, const control::actor& who) {
    const std::string marker = drain_marker();
    if (marker.empty()) {
        return "no state_dir: a restart announces again";
    }
    std::string error;
    if (drained) {
        const std::string text = fmt::format("drained by uid {} (pid {}) at {}\n", who.uid, who.pid,
                                             iso_time(std::chrono::system_clock::now()));
        if (!control::write_file_atomic(marker, text, &error)) {
            log_event("warning", "host_drain_not_saved", {{"reason", error}});
            return fmt::format("not saved ({}): a restart announces again", error);
        }
    } else if (std::error_code ec; !std::filesystem::remove(marker, ec) && ec) {
        log_event("warning", "host_drain_not_saved", {{"reason", ec.message()}});
        return fmt::format("not saved ({}): a restart stays drained", ec.message());
    }
    return "";
}

void bgp_module::tick(clock::time_point now) {
    if (!m_speaker) {
        return;
    }
    std::vector<uint64_t> counters{m_ctx.loop_iterations()};
    for (const dataplane::worker_stats* w : m_ctx.worker_stats()) {
        counters.push_back(w->totals.loops.get());
    }
    m_liveness.observe(counters, now);
    const auto& bgp = m_ctx.changes.manager().running().bgp;
    bool live = m_liveness.live(now, bgp.detection);
    m_live = live;
    m_speaker->tick(control::decide_announcements(*m_ctx.shared.snap.load(), live, m_host_drained),
                    live, m_liveness.oldest(), now);
    if (m_host_drain) {
        uint64_t flows = m_ctx.active_flows();
        if (flows == 0 || now >= m_host_drain->deadline) {
            double waited = std::chrono::duration<double>(now - m_host_drain->started).count();
            json reply = api::ok_reply();
            reply["drained"] = true;
            reply["flows_left"] = flows;
            reply["waited_s"] = waited;
            reply["message"] = fmt::format("VIPs withdrawn; {} after {:.1f} s",
                                           flows == 0 ? "no flow left" : "timeout", waited);
            m_ctx.server.reply(m_host_drain->ticket, reply);
            m_host_drain.reset();
        }
    }
}

void bgp_module::collect_metrics(exposition& out) {
    if (!m_speaker) {
        return;
    }
    out.help("evenflow_bgp_vip_announced", "gauge",
             "1 while this host announces the VIP over BGP ([bgp]).");
    // Held in a variable: a range-for over status()["vips"] would iterate a temporary
    // that is already destroyed (C++20 lifetime rules).
    const json bgp = m_speaker->status();
    for (const auto& v : bgp["vips"]) {
        out.sample("evenflow_bgp_vip_announced", {{"vip", v["vip"].get<std::string>()}},
                   v["announced"].get<bool>() ? 1.0 : 0.0);
    }
}

void bgp_module::status(json& out) {
    out["host_drained"] = m_host_drained;
    if (m_speaker) {
        out["bgp"] = m_speaker->status();
        out["bgp"]["stuck"] =
            m_liveness.stuck(clock::now(), m_ctx.changes.manager().running().bgp.detection);
    }
}

answer_t bgp_module::handle(api::command id, const json& request, const request_context& ctx) {
    return id == api::command::drain_host ? drain_host(request, ctx) : undrain_host(ctx);
}

answer_t bgp_module::drain_host(const json& request, const request_context& ctx) {
    if (!m_speaker) {
        return api::error_reply("drain-host needs [bgp]: this host announces nothing", true);
    }
    m_host_drained = true;
    log_event("info", "host_drained",
              {{"uid", std::to_string(ctx.who.uid)}, {"pid", std::to_string(ctx.who.pid)}});
    tick(clock::now()); // withdrawn before the answer
    const std::string unsaved = remember_drain(true, ctx.who);
    uint64_t timeout = 0;
    if (request.contains("timeout") && request["timeout"].is_number_unsigned()) {
        timeout = request["timeout"].get<uint64_t>();
    }
    uint64_t flows = m_ctx.active_flows();
    if (timeout == 0 || flows == 0) {
        json reply = api::ok_reply();
        reply["drained"] = true;
        reply["flows_left"] = flows;
        reply["message"] = fmt::format("VIPs withdrawn; {} flows active", flows);
        if (!unsaved.empty()) {
            reply["warning"] = unsaved;
        }
        return reply;
    }
    auto now = clock::now();
    m_host_drain = host_drain{ctx.ticket, now, now + std::chrono::seconds(timeout)};
    return std::nullopt; // answered by tick
}

answer_t bgp_module::undrain_host(const request_context& ctx) {
    if (!m_speaker) {
        return api::error_reply("undrain-host needs [bgp]: this host announces nothing", true);
    }
    m_host_drained = false;
    log_event("info", "host_undrained",
              {{"uid", std::to_string(ctx.who.uid)}, {"pid", std::to_string(ctx.who.pid)}});
    tick(clock::now());
    json reply = api::ok_reply();
    reply["drained"] = false;
    reply["message"] = "VIPs with a backend up are announced again";
    if (std::string unsaved = remember_drain(false, ctx.who); !unsaved.empty()) {
        reply["warning"] = unsaved;
    }
    return reply;
}

uint64_t bgp_module::forwarded() const {
    auto workers = m_ctx.worker_stats();
    return sum(workers, &dataplane::worker_counters::to_backend) +
           sum(workers, &dataplane::worker_counters::to_client);
}

// SIGTERM with [bgp]: withdraw, wait [bgp] convergence for routers, then let connections
// drain (until this host forwards nothing for a second, or no flow is left, or [bgp]
// drain_timeout), then stop.
void bgp_module::on_stop_requested(clock::time_point now) {
    if (!m_speaker) {
        return;
    }
    const auto& bgp = m_ctx.changes.manager().running().bgp;
    m_stop_asked = now;
    m_host_drained = true;
    m_last_forwarded = forwarded();
    m_quiet_since = now;
    log_event("info", "stop_withdrawing",
              {{"convergence", config::format_duration(bgp.convergence)},
               {"drain_timeout", config::format_duration(bgp.drain_timeout)},
               {"flows", std::to_string(m_ctx.active_flows())}});
}

bool bgp_module::holds_stop(clock::time_point now) {
    if (!m_stop_asked) {
        return false;
    }
    const auto& bgp = m_ctx.changes.manager().running().bgp;
    if (uint64_t f = forwarded(); f != m_last_forwarded) {
        m_last_forwarded = f;
        m_quiet_since = now;
    }
    auto since = now - *m_stop_asked;
    bool converged = since >= bgp.convergence;
    bool drained = m_ctx.active_flows() == 0 || now - m_quiet_since >= std::chrono::seconds(1);
    if (converged && (drained || since >= bgp.convergence + bgp.drain_timeout)) {
        log_event("info", "stop_drained",
                  {{"after_s", fmt::format("{:.2f}", std::chrono::duration<double>(since).count())},
                   {"flows", std::to_string(m_ctx.active_flows())},
                   {"why", drained ? "quiet" : "drain_timeout"}});
        m_stop_asked.reset();
        return false;
    }
    return true;
}

void bgp_module::stop() {
    if (m_speaker) {
        m_speaker->stop();
        m_speaker.reset();
    }
}

} // namespace evenflow::daemon
