// One handler per command of the shared vocabulary (lib/api/commands.hpp).
// Read-only handlers answer from the published snapshot and the counters; the
// handlers that change state go through changes.cpp.
#include "daemon.hpp"

#include "config/load.hpp"
#include "control/log.hpp"
#include "version.hpp"

#include <rte_cycles.h>
#include <rte_ether.h>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include <unistd.h>

namespace evenflow::daemon {

using api::json;
using control::log_event;

namespace {

double cycles_per_packet(const dataplane::worker_counters& c) {
    uint64_t packets = c.rx_packets.get() + c.handoff_in.get();
    return packets == 0 ? 0.0 : double(c.busy_cycles.get()) / double(packets);
}

} // namespace

evenflowd::handler evenflowd::handler_for(api::command id) {
    using api::command;
    switch (id) {
    case command::status:
        return &evenflowd::cmd_status;
    case command::services:
        return &evenflowd::cmd_services;
    case command::backends:
        return &evenflowd::cmd_backends;
    case command::apply:
        return &evenflowd::cmd_apply;
    case command::diff:
        return &evenflowd::cmd_diff;
    case command::history:
        return &evenflowd::cmd_history;
    case command::rollback:
        return &evenflowd::cmd_rollback;
    case command::drain:
        return &evenflowd::cmd_drain;
    case command::enable:
        return &evenflowd::cmd_enable;
    case command::disable:
        return &evenflowd::cmd_disable;
    case command::stats:
        return &evenflowd::cmd_stats;
    case command::skew: // modules/skew
    case command::clients:
    case command::drain_host: // modules/bgp
    case command::undrain_host:
    case command::check: // evenctl answers these alone
    case command::top:
    case command::count_:
        break;
    }
    return nullptr;
}

answer_t evenflowd::dispatch(const json& request, const request_context& ctx) {
    if (!request.contains("cmd") || !request["cmd"].is_string()) {
        return api::error_reply("malformed request: missing \"cmd\"");
    }
    std::string name = request["cmd"];
    const api::command_spec* spec = api::find_command(name);
    handler h = spec != nullptr ? handler_for(spec->id) : nullptr;
    module* answering = nullptr; // a module's command (module::commands)
    for (const auto& m : m_modules) {
        const auto ids = m->commands();
        if (spec != nullptr && std::find(ids.begin(), ids.end(), spec->id) != ids.end()) {
            answering = m.get();
        }
    }
    if (h == nullptr && answering == nullptr) {
        return api::error_reply(fmt::format("unknown command {:?}", name));
    }
    if (spec->changes_state && ctx.who.uid != 0) {
        const auto& admins = manager().running().control.admins;
        if (std::find(admins.begin(), admins.end(), ctx.who.uid) == admins.end()) {
            log_event("warning", "command_refused",
                      {{"command", name},
                       {"uid", std::to_string(ctx.who.uid)},
                       {"pid", std::to_string(ctx.who.pid)},
                       {"reason", "not an admin"}});
            return api::error_reply(
                fmt::format("uid {} may not {}: only root and the uids in [control] admins "
                            "change state (anyone who can open the socket may read)",
                            ctx.who.uid, name),
                true);
        }
    }
    return answering != nullptr ? answering->handle(spec->id, request, ctx)
                                : (this->*h)(request, ctx);
}

answer_t evenflowd::cmd_status(const json&, const request_context& ctx) {
    if (!m_file_status.current(manager().history().back().cfg, manager().version())) {
        m_status_waiting.push_back(ctx.ticket); // answered once the file is read
        return std::nullopt;
    }
    return status_reply();
}

void evenflowd::answer_waiting_status() {
    if (m_status_waiting.empty() || !m_file_status.finished()) {
        return;
    }
    json reply = status_reply();
    for (control_server::ticket t : m_status_waiting) {
        m_server.reply(t, reply);
    }
    m_status_waiting.clear();
}

json evenflowd::status_reply() {
    json reply = api::ok_reply();
    reply["version"] = manager().version();
    reply["evenflow_version"] = EVENFLOW_VERSION;
    reply["generation"] = manager().generation();
    reply["uptime_s"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - m_started).count();
    reply["pid"] = getpid();
    reply["config"] = m_options.config_path;
    // Where the running version came from at start, and whether it is the file's now.
    const control::start_origin& origin = m_changes.start_origin();
    reply["state"] = {{"start", origin.from},
                      {"version", origin.version},
                      {"reason", origin.reason},
                      {"dir", m_changes.state().is_open() ? m_changes.state().dir() : ""},
                      {"saved", m_changes.state_error().empty()}};
    if (!m_changes.state_error().empty()) {
        reply["state"]["save_error"] = m_changes.state_error();
    }
    reply["file"] = m_file_status.answer();
    reply["fingerprint"] = fingerprint();
    const snapshot* snap = m_shared.snap.load();
    reply["services"] = snap->services.size();
    reply["backends"] = snap->backends.size();
    json states = json::object();
    for (const snapshot_backend& b : snap->backends) {
        states[std::string(to_string(b.state))] = states.value(to_string(b.state), 0) + 1;
    }
    reply["backend_states"] = states;
    for (const auto& m : m_modules) {
        m->status(reply);
    }
    const baseline_drift& d = drift();
    if (const control::history_entry* base =
            manager().baseline(std::chrono::system_clock::now()).entry) {
        // The backends that moved, largest first and at most 100 of them (ten thousand
        // rows would make every status slow); /metrics has every backend's drift.
        constexpr size_t shown = 100;
        auto moved = [](const drift_row& r) {
            return std::abs(r.share - r.baseline) >= 1e-6 ||
                   (r.before_accepted && std::abs(r.share - *r.before_accepted) >= 1e-6);
        };
        std::vector<const drift_row*> order;
        for (const drift_row& r : d.rows) {
            if (moved(r)) {
                order.push_back(&r);
            }
        }
        size_t drifted = order.size();
        auto larger = [](const drift_row* x, const drift_row* y) {
            return std::abs(x->share - x->baseline) > std::abs(y->share - y->baseline);
        };
        size_t n = std::min(order.size(), shown);
        std::partial_sort(order.begin(), order.begin() + ptrdiff_t(n), order.end(), larger);
        json rows = json::array();
        for (size_t i = 0; i < n; ++i) {
            const drift_row& r = *order[i];
            json row{{"service", r.service},
                     {"backend", r.backend},
                     {"share", r.share},
                     {"baseline_share", r.baseline},
                     {"drift", std::round((r.share - r.baseline) * 1e6) / 1e6}};
            if (r.before_accepted) {
                row["accepted_drift"] = std::round((r.share - *r.before_accepted) * 1e6) / 1e6;
            }
            rows.push_back(std::move(row));
        }
        reply["baseline"] = {
            {"version", base->version},
            {"at", iso_time(base->at)},
            {"age_s",
             std::chrono::duration<double>(std::chrono::system_clock::now() - base->at).count()},
            {"window_s",
             std::chrono::duration<double>(manager().running().skew.baseline_window).count()},
            {"accepted_shift", base->accepted_shift},
            {"accepted_from", base->accepted_from},
            {"uid", base->who.uid},
            {"via", base->who.via},
            {"origin", base->origin},
            {"backends_drifted", drifted},
            {"drift_of", {{"version", d.running}, {"baseline", d.baseline}}},
            {"drift", rows}};
    }
    auto ms = [](auto d) {
        return std::chrono::duration<double, std::milli>(d).count();
    };
    reply["control_loop"] = {{"max_ms", ms(m_loop.max())},
                             {"recent_max_ms", ms(m_loop.recent_max())},
                             {"iterations", m_loop.iterations()},
                             {"slowest_step", m_loop.slowest_step()},
                             {"slowest_step_ms", ms(m_loop.slowest_step_took())},
                             {"changes_queued", m_changes.queued()},
                             // seconds the skew judgement waited for a worker's sketches
                             {"skew_ticks_held", m_skew->ticks_held()}};
    json workers = json::array();
    for (size_t i = 0; i < m_workers.size(); ++i) {
        const dataplane::worker_counters& c = m_workers[i]->stats().totals;
        workers.push_back({{"worker", i},
                           {"lcore", m_worker_lcores[i]},
                           {"rx_packets", c.rx_packets.get()},
                           {"tx_packets", c.tx_packets.get()},
                           {"rx_bytes", c.rx_bytes.get()},
                           {"tx_bytes", c.tx_bytes.get()},
                           {"dropped", dataplane::dropped(c)},
                           {"flows_active", c.flows_active.get()},
                           {"flow_capacity", c.flow_capacity.get()},
                           {"busy_cycles", c.busy_cycles.get()},
                           {"cycles_per_packet", cycles_per_packet(c)}});
    }
    reply["workers"] = workers;
    json ports = json::array();
    for (const dataplane::interface_info& i : m_shared.interfaces) {
        ports.push_back({{"interface", i.name},
                         {"device", i.device},
                         {"steering", dataplane::to_string(i.steering)}});
    }
    reply["ports"] = ports;
    auto sock = m_server.stats();
    reply["control_socket"] = {
        {"clients", sock.clients},           {"accepted", sock.accepted},
        {"refused_full", sock.refused_full}, {"closed_idle", sock.closed_idle},
        {"evicted", sock.evicted},           {"accept_paused", sock.accept_paused}};
    return reply;
}

answer_t evenflowd::cmd_services(const json&, const request_context&) {
    const snapshot* snap = m_shared.snap.load();
    json rows = json::array();
    for (const snapshot_service& svc : snap->services) {
        size_t up = 0;
        for (uint32_t i : svc.backend_indexes) {
            up += takes_new_flows(snap->backends[i].state) ? 1 : 0;
        }
        rows.push_back({{"name", svc.name},
                        {"vip", svc.vip.to_string()},
                        {"port", svc.port},
                        {"protocol", "tcp"},
                        {"pool", svc.pool},
                        {"hash", config::to_string(svc.hash)},
                        {"table_size", svc.table_size()},
                        {"backends", svc.backend_indexes.size()},
                        {"backends_up", up}});
    }
    json reply = api::ok_reply();
    reply["services"] = rows;
    return reply;
}

answer_t evenflowd::cmd_backends(const json& request, const request_context&) {
    const snapshot* snap = m_shared.snap.load();
    std::string only = request.value("service", "");
    if (!only.empty() && snap->cfg->find_service(only) == nullptr) {
        return api::error_reply(fmt::format("no service named {}; see evenctl services", only),
                                true);
    }
    auto workers = worker_stats();
    json rows = json::array();
    for (const snapshot_backend& b : snap->backends) {
        const snapshot_service& svc = snap->services[b.service_index];
        if (!only.empty() && svc.name != only) {
            continue;
        }
        control::backend_view v = m_skew->detector().view(b.id);
        double drain_left_s = 0;
        if (b.drain_deadline_ms != 0) {
            drain_left_s = std::max(
                0.0, double(int64_t(b.drain_deadline_ms - dataplane::worker::now_ms())) / 1000.0);
        }
        using dataplane::backend_counters;
        const uint64_t verified = sum(workers, b.id, &backend_counters::new_flows);
        const uint64_t syns = sum(workers, b.id, &backend_counters::syns);
        rows.push_back(
            {{"service", svc.name},
             {"backend", b.key()},
             {"id", b.id},
             {"state", to_string(b.state)},
             {"weight", b.weight},
             {"expected_share", b.expected_share},
             {"predicted_share", b.predicted_share},
             {"observed_share", v.observed_share},
             {"active_flows", sum(workers, b.id, &backend_counters::active_flows)},
             {"new_flows", verified},
             {"new_flows_per_s", v.new_flows_per_s},
             // SYNs are spoofable and never judged; a handshake is what counts
             // (tunnel mode sees one way: the client's packet after its SYN).
             {"syns", syns},
             {"syn_unverified", syns > verified ? syns - verified : 0},
             {"verified_by", svc.mode == config::forward_mode::tunnel ? "one_way" : "handshake"},
             {"packets_to", sum(workers, b.id, &backend_counters::packets_to)},
             {"packets_from", sum(workers, b.id, &backend_counters::packets_from)},
             {"resets", sum(workers, b.id, &backend_counters::resets)},
             {"drain_deadline_s", drain_left_s},
             {"skew", v.skewed}});
    }
    json reply = api::ok_reply();
    reply["backends"] = rows;
    return reply;
}

answer_t evenflowd::cmd_apply(const json& request, const request_context& ctx) {
    if (!request.contains("config") || !request["config"].is_string()) {
        return api::error_reply("malformed request: apply needs \"config\" (the file's text)");
    }
    std::string path = request.value("path", "<apply>");
    std::string origin = fmt::format("apply {}", path);
    m_changes.request_apply([text = request["config"].get<std::string>(),
                             path] { return config::load_string(text, path); },
                            ctx.who, origin, request.value("accept_shift", false),
                            reply_to(ctx.ticket));
    return std::nullopt; // answered once reviewed, built and published
}

answer_t evenflowd::cmd_diff(const json& request, const request_context& ctx) {
    if (!request.contains("config") || !request["config"].is_string()) {
        return api::error_reply("malformed request: diff needs \"config\" (the file's text)");
    }
    std::string path = request.value("path", "<diff>");
    m_changes.request_apply([text = request["config"].get<std::string>(),
                             path] { return config::load_string(text, path); },
                            ctx.who, fmt::format("diff {}", path), false, reply_to(ctx.ticket),
                            true);
    return std::nullopt; // answered once reviewed, nothing applied
}

answer_t evenflowd::cmd_history(const json&, const request_context&) {
    json rows = json::array();
    for (const control::history_entry& e : manager().history()) {
        rows.push_back({{"version", e.version},
                        {"at", iso_time(e.at)},
                        {"uid", e.who.uid},
                        {"pid", e.who.pid},
                        {"via", e.who.via},
                        {"origin", e.origin},
                        {"diff", e.diff},
                        {"accepted_shift", e.accepted_shift},
                        {"baseline", e.baseline},
                        {"rollback_of", e.rollback_of},
                        {"running", e.version == manager().version()}});
    }
    json reply = api::ok_reply();
    reply["history"] = rows;
    return reply;
}

answer_t evenflowd::cmd_rollback(const json& request, const request_context& ctx) {
    std::optional<uint64_t> version;
    if (request.contains("version") && !request["version"].is_null()) {
        version = request["version"].get<uint64_t>();
    }
    m_changes.request_rollback(version, ctx.who, "operator", reply_to(ctx.ticket));
    return std::nullopt;
}

answer_t evenflowd::cmd_drain(const json& request, const request_context& ctx) {
    return admin_command(request, ctx, control::admin_state::draining);
}

answer_t evenflowd::cmd_enable(const json& request, const request_context& ctx) {
    return admin_command(request, ctx, control::admin_state::enabled);
}

answer_t evenflowd::cmd_disable(const json& request, const request_context& ctx) {
    return admin_command(request, ctx, control::admin_state::disabled);
}

answer_t evenflowd::cmd_stats(const json&, const request_context&) {
    auto workers = worker_stats();
    json totals = json::object();
    for (const auto& c : dataplane::worker_counter_list) {
        totals[std::string(c.name)] = sum(workers, c.field);
    }
    json drops = json::object();
    for (size_t r = 1; r < size_t(net::drop_reason::count_); ++r) {
        if (uint64_t n = dataplane::sum_drops(workers, net::drop_reason(r)); n != 0) {
            drops[std::string(net::to_string(net::drop_reason(r)))] = n;
        }
    }
    json per_worker = json::array();
    for (size_t i = 0; i < m_workers.size(); ++i) {
        const dataplane::worker_counters& c = m_workers[i]->stats().totals;
        per_worker.push_back({{"worker", i},
                              {"rx_packets", c.rx_packets.get()},
                              {"busy_cycles", c.busy_cycles.get()},
                              {"cycles_per_packet", cycles_per_packet(c)},
                              {"handoff_out", c.handoff_out.get()},
                              {"handoff_in", c.handoff_in.get()}});
    }
    json reply = api::ok_reply();
    reply["totals"] = totals;
    reply["workers"] = per_worker;
    reply["tsc_hz"] = rte_get_tsc_hz();
    reply["drops"] = drops;
    reply["neighbors_waiting_dropped"] = m_slow_path->resolver().dropped_waiting();
    reply["arp_replies_sent"] = sum(workers, &dataplane::worker_counters::arp_replies);
    const auto& resolver = m_slow_path->resolver();
    reply["neighbor_table"] = {{"ignored_arp", resolver.ignored()},
                               {"mac_changes", resolver.mac_changes()},
                               {"table_full", resolver.table_full()}};
    json kernel = json::array();
    for (const auto& k : m_kernel.entries()) {
        kernel.push_back({{"interface", m_shared.interfaces[k.iface].name},
                          {"kernel_interface", k.kernel},
                          {"to_kernel", k.stats.to_kernel},
                          {"from_kernel", k.stats.from_kernel},
                          {"to_kernel_dropped", k.stats.to_kernel_dropped}});
    }
    reply["kernel_interfaces"] = kernel;
    for (const auto& m : m_modules) {
        m->stats(reply);
    }
    json neighbors = json::array();
    for (const auto& n : m_slow_path->resolver().list()) {
        char mac[RTE_ETHER_ADDR_FMT_SIZE];
        rte_ether_format_addr(mac, sizeof mac, &n.mac);
        neighbors.push_back({{"interface", m_shared.interfaces[n.iface].name},
                             {"address", n.ip.to_string()},
                             {"mac", n.resolved ? mac : ""},
                             {"resolved", n.resolved},
                             {"waiting", n.waiting}});
    }
    reply["neighbors"] = neighbors;
    return reply;
}

answer_t evenflowd::admin_command(const json& request, const request_context& ctx,
                                  control::admin_state state) {
    if (!request.contains("service") || !request.contains("backend")) {
        return api::error_reply("malformed request: needs \"service\" and \"backend\"");
    }
    m_changes.request_admin(request["service"], request["backend"], state, ctx.who,
                            reply_to(ctx.ticket));
    return std::nullopt;
}

} // namespace evenflow::daemon
