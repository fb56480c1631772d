#include "skew_module.hpp"

#include "control/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <thread>

namespace evenflow::daemon {

using api::json;
using control::log_event;

bool skew_module::start(std::string*) {
    m_detector.reconfigure(m_ctx.changes.manager().running().skew);
    // A first sample at zero, so flows of the first second count in the first window.
    auto now = clock::now();
    m_detector.tick(now, std::chrono::system_clock::now(), sample_backends());
    m_next_tick = now + std::chrono::seconds(1);
    return true;
}

void skew_module::tick(clock::time_point now) {
    if (now >= m_next_tick) {
        judge(now);
        m_next_tick = now + std::chrono::seconds(1);
    }
}

void skew_module::on_replaced(const control::publication& what) {
    m_samples_of = nullptr; // the old snapshot is gone; its address may come back
    if (what.automatic_rollback) {
        m_detector.reset_windows(); // alarms of the bad config's traffic go with it
    }
}

void skew_module::on_publish(const snapshot& snap, const control::publication& what) {
    if (what.new_version) {
        m_detector.reconfigure(m_ctx.changes.manager().running().skew);
    }
    std::string first_raised;
    control::log_batch lines;
    for (const auto& c : m_no_backend.update(snap, std::chrono::system_clock::now())) {
        lines.add(c.raised ? "warning" : "info", c.raised ? "no_backend_alarm" : "no_backend_clear",
                  {{"service", c.service},
                   {"version", std::to_string(m_ctx.changes.manager().version())}});
        if (c.raised && first_raised.empty()) {
            first_raised = c.service;
        }
    }
    if (!first_raised.empty()) {
        m_ctx.changes.roll_back_automatically(
            fmt::format("no backend up for service {}", first_raised));
    }
}

std::vector<control::backend_sample> skew_module::sample_backends() {
    // Names and expected shares change only with the snapshot: kept from one tick to
    // the next, so a tick at ten thousand backends only reads counters.
    const snapshot* snap = m_ctx.shared.snap.load();
    if (m_samples_of != snap) {
        m_samples.clear();
        for (const snapshot_backend& b : snap->backends) {
            control::backend_sample s;
            s.id = b.id;
            s.service = snap->services[b.service_index].name;
            s.backend = b.key();
            s.expected_share = b.expected_share;
            s.pins_clients = snap->services[b.service_index].hash == config::hash_mode::src_ip;
            m_samples.push_back(std::move(s));
        }
        m_samples_of = snap;
    }
    auto workers = m_ctx.worker_stats();
    for (control::backend_sample& s : m_samples) {
        using dataplane::backend_counters;
        s.new_flows = sum(workers, s.id, &backend_counters::new_flows);
        s.syns = sum(workers, s.id, &backend_counters::syns);
        s.active_flows = sum(workers, s.id, &backend_counters::active_flows);
        s.bytes = sum(workers, s.id, &backend_counters::bytes_to) +
                  sum(workers, s.id, &backend_counters::bytes_from);
        s.packets = sum(workers, s.id, &backend_counters::packets_to) +
                    sum(workers, s.id, &backend_counters::packets_from);
    }
    return m_samples;
}

bool skew_module::collect_clients(clock::time_point now) {
    const std::vector<dataplane::worker*> workers = m_ctx.workers();
    auto take_sealed = [&] {
        std::vector<const flow::client_sketches::buffer*> sealed;
        for (dataplane::worker* w : workers) {
            if (w->clients().sealed_ready()) {
                sealed.push_back(&w->clients().sealed());
            }
        }
        if (!sealed.empty()) {
            m_detector.clients().add(now, sealed);
        }
        for (dataplane::worker* w : workers) {
            if (w->clients().sealed_ready()) {
                w->clients().release_sealed();
            }
        }
    };
    // A buffer sealed too late for the last tick first, so that every worker is asked
    // for a seal now and the sketches reach as far as the counters read next.
    take_sealed();
    for (dataplane::worker* w : workers) {
        w->clients().request_seal();
    }
    // A worker acknowledges at its next poll, microseconds away unless its thread is
    // preempted (two cores shared with other processes): wait up to 20 ms, sleeping
    // so that the core is not taken from them.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
    auto all_sealed = [&] {
        return std::all_of(workers.begin(), workers.end(),
                           [](dataplane::worker* w) { return w->clients().sealed_ready(); });
    };
    while (!all_sealed() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    take_sealed();
    return std::none_of(workers.begin(), workers.end(),
                        [](dataplane::worker* w) { return w->clients().pending(); });
}

void skew_module::judge(clock::time_point now) {
    // Sketches first, then counters: what the counters hold beyond the sketches
    // (events in between) is never credited to a heavy client. A worker that has not
    // sealed its buffer yet holds the next judgement back: counters ahead of the
    // sketches would make a few clients' skew look like the config's, and roll it
    // back. Its buffer is taken at the next tick; after max_ticks_without_clients in
    // a row (a wedged worker, which liveness reports) the detector judges anyway.
    if (!collect_clients(now)) {
        if (++m_ticks_without_clients <= max_ticks_without_clients) {
            ++m_ticks_held;
            return;
        }
        if (m_ticks_without_clients == max_ticks_without_clients + 1) {
            log_event("warning", "skew_clients_incomplete",
                      {{"seconds", std::to_string(max_ticks_without_clients)}});
        }
    } else {
        m_ticks_without_clients = 0;
    }
    auto events = m_detector.tick(now, std::chrono::system_clock::now(), sample_backends());
    for (const auto& e : events) {
        std::vector<control::log_field> fields = {
            {"service", e.alarm.service},
            {"backend", e.alarm.backend},
            {"kind", std::string(control::to_string(e.alarm.kind))},
            {"basis", std::string(control::to_string(e.alarm.basis))},
            {"observed", fmt::format("{:.3f}", e.alarm.observed_share)},
            {"expected", fmt::format("{:.3f}", e.alarm.expected_share)},
            {"flows", std::to_string(e.alarm.flows)},
            {"version", std::to_string(m_ctx.changes.manager().version())}};
        if (!e.alarm.clients.empty()) {
            std::string names;
            for (const auto& c : e.alarm.clients) {
                names += (names.empty() ? "" : " ") + c.client;
            }
            fields.emplace_back("clients", names);
        }
        log_event(e.raised ? "warning" : "info", e.raised ? "skew_alarm" : "skew_clear", fields);
    }
    for (const auto& e : events) {
        // Bytes and packets skew is reported, not rolled back: it is as often the
        // traffic's shape (one client's downloads) as the config's doing; so is a
        // skew a few clients explain (heavy_hitter).
        if (e.raised && control::causes_rollback(e.alarm)) {
            m_ctx.changes.roll_back_automatically(
                fmt::format("skew alarm: {} backend {} {} ({} observed, {} expected)",
                            e.alarm.service, e.alarm.backend, control::to_string(e.alarm.kind),
                            fmt::format("{:.1f}%", e.alarm.observed_share * 100),
                            fmt::format("{:.1f}%", e.alarm.expected_share * 100)));
            break;
        }
    }
}

void skew_module::collect_metrics(exposition& out) {
    // The clients heavy_hitter alarms name: at most five per alarm, so the label set
    // stays bounded whatever the traffic.
    out.help("evenflow_heavy_hitter_connections", "gauge",
             "Connections (basis new_flows) or SYNs (basis syns) a client named by a "
             "heavy_hitter alarm opened to the backend in the skew window (lower bound).");
    for (const auto& [id, a] : m_detector.alarms()) {
        if (a.kind != control::skew_kind::heavy_hitter) {
            continue;
        }
        for (const control::heavy_client& c : a.clients) {
            out.sample("evenflow_heavy_hitter_connections",
                       {{"service", a.service},
                        {"backend", a.backend},
                        {"client", c.client},
                        {"basis", std::string(control::to_string(a.basis))}},
                       double(c.to_backend));
        }
    }

    out.help("evenflow_alarms_active", "gauge", "Skew and no-backend alarms active.");
    out.sample("evenflow_alarms_active", {}, double(alarm_count()));
}

void skew_module::status(json& out) {
    out["alarms"] = alarm_count();
}

answer_t skew_module::handle(api::command id, const json& request, const request_context&) {
    return id == api::command::skew ? list_alarms() : top_clients(request);
}

answer_t skew_module::list_alarms() const {
    json rows = json::array();
    for (const auto& [service, since] : m_no_backend.active()) {
        rows.push_back({{"service", service},
                        {"backend", "*"},
                        {"kind", "no_backend"},
                        {"basis", "health"},
                        {"observed_share", 0.0},
                        {"expected_share", 1.0},
                        {"flows", 0},
                        {"since", iso_time(since)}});
    }
    for (const auto& [id, a] : m_detector.alarms()) {
        rows.push_back({{"service", a.service},
                        {"backend", a.backend},
                        {"kind", control::to_string(a.kind)},
                        {"basis", control::to_string(a.basis)},
                        {"observed_share", a.observed_share},
                        {"expected_share", a.expected_share},
                        {"flows", a.flows},
                        {"since", iso_time(a.since)},
                        {"explanation", control::explain(a, m_detector.view(id))}});
        if (!a.clients.empty()) {
            json named = json::array();
            for (const control::heavy_client& c : a.clients) {
                named.push_back({{"client", c.client},
                                 {"to_backend", c.to_backend},
                                 {"to_service", c.to_service}});
            }
            rows.back()["clients"] = named;
        }
    }
    json reply = api::ok_reply();
    reply["alarms"] = rows;
    return reply;
}

answer_t skew_module::top_clients(const json& request) const {
    if (!request.contains("service") || !request["service"].is_string()) {
        return api::error_reply("malformed request: needs \"service\"");
    }
    const std::string& name = request["service"].get_ref<const std::string&>();
    size_t limit = 10;
    if (request.contains("limit")) {
        if (!request["limit"].is_number_unsigned() || request["limit"].get<uint64_t>() == 0 ||
            request["limit"].get<uint64_t>() > 100) {
            return api::error_reply("limit must be 1 to 100");
        }
        limit = request["limit"].get<size_t>();
    }
    const snapshot* snap = m_ctx.shared.snap.load();
    const snapshot_service* svc = nullptr;
    for (const snapshot_service& s : snap->services) {
        if (s.name == name) {
            svc = &s;
        }
    }
    if (svc == nullptr) {
        return api::error_reply(fmt::format("no service {:?}", name));
    }
    std::vector<uint32_t> ids;
    std::map<uint32_t, std::string> names;
    uint64_t verified = 0, syns = 0;
    for (uint32_t i : svc->backend_indexes) {
        const snapshot_backend& b = snap->backends[i];
        ids.push_back(b.id);
        names[b.id] = b.key();
        control::backend_view v = m_detector.view(b.id);
        verified += v.window_new_flows;
        syns += v.window_syns;
    }
    using flow::client_event;
    auto rows_of = [&](bool networks) {
        json rows = json::array();
        for (const auto& row : m_detector.clients().top(ids, networks, limit)) {
            json backends = json::array();
            for (const auto& [id, c] : row.backends) {
                backends.push_back({{"backend", names[id]},
                                    {"verified", c[size_t(client_event::verified)].lower_bound()},
                                    {"syns", c[size_t(client_event::syn)].lower_bound()}});
            }
            const auto& v = row.total[size_t(client_event::verified)];
            const auto& s = row.total[size_t(client_event::syn)];
            rows.push_back({{"client", row.text()},
                            {"verified", v.lower_bound()},
                            {"verified_at_most", v.count},
                            {"syns", s.lower_bound()},
                            {"syns_at_most", s.count},
                            {"verified_share",
                             verified == 0 ? 0.0 : double(v.lower_bound()) / double(verified)},
                            {"syn_share", syns == 0 ? 0.0 : double(s.lower_bound()) / double(syns)},
                            {"backends", backends}});
        }
        return rows;
    };
    json reply = api::ok_reply();
    reply["service"] = name;
    reply["window_s"] =
        std::chrono::duration<double>(m_ctx.changes.manager().running().skew.window).count();
    reply["verified"] = verified;
    reply["syns"] = syns;
    reply["addresses"] = rows_of(false);
    reply["networks"] = rows_of(true);
    return reply;
}

} // namespace evenflow::daemon
