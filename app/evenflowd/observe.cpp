// evenflowd's figures that join every feature: the Prometheus exposition (each
// module adds its own series) and DPDK telemetry endpoints, and the baseline drift,
// all read on the control thread from the same counters (dataplane/counters.hpp) that
// evenctl reads.
#include "daemon.hpp"

#include "control/announce.hpp"
#include "control/guard.hpp"
#include "control/log.hpp"
#include "control/low_priority.hpp"

#include <rte_telemetry.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <unistd.h>

namespace evenflow::daemon {

using control::log_event;

namespace {

// Telemetry callbacks run on DPDK's telemetry thread: they read this copy, never
// the daemon itself. A callback asks for a refresh and waits up to a second for the
// control thread to make it (refresh_telemetry_if_wanted).
struct telemetry_view {
    std::mutex mutex;
    std::condition_variable refreshed;
    std::atomic<bool> wanted{false};
    uint64_t generation = 0;
    uint64_t version = 0;
    double uptime_s = 0;
    uint64_t alarms = 0;
    std::vector<std::pair<std::string, std::string>> backends; // "service/ADDR:PORT" -> summary
    std::vector<std::string> workers; // per worker: packets, busy cycles, cycles/packet
};
telemetry_view g_telemetry;

std::unique_lock<std::mutex> fresh_telemetry() {
    std::unique_lock lock(g_telemetry.mutex);
    uint64_t seen = g_telemetry.generation;
    g_telemetry.wanted.store(true);
    g_telemetry.refreshed.wait_for(lock, std::chrono::seconds(1),
                                   [&] { return g_telemetry.generation != seen; });
    return lock;
}

int telemetry_status(const char*, const char*, rte_tel_data* d) {
    auto lock = fresh_telemetry();
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "version", g_telemetry.version);
    rte_tel_data_add_dict_u64(d, "uptime_s", uint64_t(g_telemetry.uptime_s));
    rte_tel_data_add_dict_u64(d, "alarms", g_telemetry.alarms);
    return 0;
}

int telemetry_backends(const char*, const char*, rte_tel_data* d) {
    auto lock = fresh_telemetry();
    rte_tel_data_start_dict(d);
    for (const auto& [key, summary] : g_telemetry.backends) {
        rte_tel_data_add_dict_string(d, key.c_str(), summary.c_str());
    }
    return 0;
}

int telemetry_workers(const char*, const char*, rte_tel_data* d) {
    auto lock = fresh_telemetry();
    rte_tel_data_start_dict(d);
    for (size_t i = 0; i < g_telemetry.workers.size(); ++i) {
        rte_tel_data_add_dict_string(d, std::to_string(i).c_str(), g_telemetry.workers[i].c_str());
    }
    return 0;
}

} // namespace

void evenflowd::register_telemetry() {
    rte_telemetry_register_cmd("/evenflow/workers", telemetry_workers,
                               "evenflowd: per worker packets, busy cycles, cycles per packet");
    rte_telemetry_register_cmd("/evenflow/status", telemetry_status,
                               "evenflowd: running config version, uptime, active alarms");
    rte_telemetry_register_cmd("/evenflow/backends", telemetry_backends,
                               "evenflowd: per backend state, expected/observed share, flows");
}

// Pure work on immutable configs, run off the control loop.
evenflowd::baseline_drift
evenflowd::compute_drift(std::shared_ptr<const config::config> running, uint64_t running_version,
                         std::shared_ptr<const config::config> baseline, uint64_t baseline_version,
                         std::shared_ptr<const config::config> before_accepted) {
    baseline_drift out;
    out.running = running_version;
    out.baseline = baseline_version;
    auto now = control::expected_distribution(*running);
    auto base = control::expected_distribution(*baseline);
    std::optional<control::distribution> before;
    if (before_accepted) {
        before = control::expected_distribution(*before_accepted);
    }
    auto share = [](const control::distribution& d, const auto& key) {
        auto it = d.share.find(key);
        return it == d.share.end() ? 0.0 : it->second;
    };
    // Shares are ratios of small integers: six digits say all there is, and keep
    // 0.2 - 0.25 from printing as -0.04999999999999999.
    auto rounded = [](double v) {
        return std::round(v * 1e6) / 1e6;
    };
    auto add = [&](const std::pair<std::string, std::string>& key) {
        drift_row row{key.first, key.second, rounded(share(now, key)), rounded(share(base, key)),
                      std::nullopt};
        if (before) {
            row.before_accepted = rounded(share(*before, key));
        }
        out.rows.push_back(std::move(row));
    };
    for (const auto& [key, s] : now.share) {
        add(key);
    }
    for (const auto& [key, s] : base.share) {
        if (now.share.count(key) == 0) {
            add(key); // removed since the baseline
        }
    }
    bool every = running->control.metrics_backends.which == config::metrics_backends::kind::all;
    exposition drifted, accepted;
    for (const drift_row& r : out.rows) {
        std::string labels = exposition::labels({{"service", r.service}, {"backend", r.backend}});
        if (every || std::abs(r.share - r.baseline) > 1e-9) {
            drifted.sample("evenflow_backend_baseline_drift", labels,
                           std::round((r.share - r.baseline) * 1e6) / 1e6);
        }
        if (r.before_accepted && (every || std::abs(r.share - *r.before_accepted) > 1e-9)) {
            accepted.sample("evenflow_backend_accepted_drift", labels,
                            std::round((r.share - *r.before_accepted) * 1e6) / 1e6);
        }
    }
    out.baseline_samples = drifted.take();
    out.accepted_samples = accepted.take();
    return out;
}

const evenflowd::baseline_drift& evenflowd::drift() {
    if (m_drift_job.valid() &&
        m_drift_job.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        m_drift = m_drift_job.get();
    }
    auto view = manager().baseline(std::chrono::system_clock::now());
    if (view.entry == nullptr || m_drift_job.valid() ||
        (m_drift.running == manager().version() && m_drift.baseline == view.entry->version)) {
        return m_drift;
    }
    // At the lowest priority (low_priority.hpp): the control loop must not wait
    // behind a status figure.
    m_drift_job =
        std::async(std::launch::async,
                   [running = manager().history().back().cfg, version = manager().version(),
                    base = view.entry->cfg, base_version = view.entry->version,
                    before = view.accepted_from != nullptr ? view.accepted_from->cfg : nullptr] {
                       control::lower_this_thread_priority();
                       return compute_drift(running, version, base, base_version, before);
                   });
    return m_drift;
}

const std::string& evenflowd::fingerprint() {
    if (m_fingerprint.value.empty() || m_fingerprint.version != manager().version() ||
        m_fingerprint.admin_generation != manager().admin_generation()) {
        m_fingerprint.value = control::fingerprint(manager().running(), manager());
        m_fingerprint.version = manager().version();
        m_fingerprint.admin_generation = manager().admin_generation();
    }
    return m_fingerprint.value;
}

std::string evenflowd::render_metrics() {
    exposition out;
    const snapshot* snap = m_shared.snap.load();
    out.reserve(size_t(snap->backends.size()) * 1500 + 65536);
    config_metrics(out);
    backend_metrics(out, *snap);
    worker_metrics(out);
    for (const auto& m : m_modules) {
        m->collect_metrics(out);
    }
    return out.take();
}

// The running version, its fingerprint, the change pipeline's counts and the series
// baseline with each backend's drift from it.
void evenflowd::config_metrics(exposition& out) {
    out.help("evenflow_config_version", "gauge", "Running configuration version.");
    out.sample("evenflow_config_version", {}, double(manager().version()));
    {
        // The value is the fingerprint's first 13 hex digits (52 bits: exact in a
        // double); the label has all of it. Hosts behind one ECMP group must agree.
        const std::string& fp = fingerprint();
        out.help("evenflow_config_fingerprint", "gauge",
                 "Hash of what maps a flow to its backend (services, backends, weights, "
                 "admin states, table sizes; not health): equal on hosts that agree.");
        out.sample("evenflow_config_fingerprint", {{"fingerprint", fp}},
                   double(std::stoull(fp.substr(0, 13), nullptr, 16)));
    }
    const control::change_counters& changes = m_changes.counters();
    auto count = [](const std::map<std::string, uint64_t>& by, const char* key) {
        auto it = by.find(key);
        return it == by.end() ? 0.0 : double(it->second);
    };
    out.help("evenflow_config_applies_total", "counter", "Configurations applied.");
    out.sample("evenflow_config_applies_total", {}, double(changes.applies));
    out.help("evenflow_config_apply_refused_total", "counter",
             "Applies refused, by reason (invalid, shift, restart).");
    for (const char* reason : {"invalid", "shift", "restart"}) {
        out.sample("evenflow_config_apply_refused_total", {{"reason", reason}},
                   count(changes.refused, reason));
    }
    out.help("evenflow_config_rollbacks_total", "counter",
             "Rollbacks, by trigger (operator, automatic).");
    for (const char* trigger : {"operator", "automatic"}) {
        out.sample("evenflow_config_rollbacks_total", {{"trigger", trigger}},
                   count(changes.rollbacks, trigger));
    }

    // The series baseline the guard judges applies against, and how far the running
    // config's expected shares have moved from it.
    {
        const baseline_drift& d = drift();
        const control::history_entry* base =
            manager().baseline(std::chrono::system_clock::now()).entry;
        double age =
            base == nullptr
                ? 0.0
                : std::chrono::duration<double>(std::chrono::system_clock::now() - base->at)
                      .count();
        out.help("evenflow_config_baseline_version", "gauge",
                 "Version of the series baseline applies are judged against.");
        out.sample("evenflow_config_baseline_version", {},
                   base == nullptr ? 0.0 : double(base->version));
        out.help("evenflow_config_baseline_age_seconds", "gauge",
                 "Seconds since the series baseline started running.");
        out.sample("evenflow_config_baseline_age_seconds", {}, age);
        out.help("evenflow_config_baseline_window_seconds", "gauge",
                 "[skew] baseline_window: how long a version runs to become the baseline.");
        out.sample("evenflow_config_baseline_window_seconds", {},
                   std::chrono::duration<double>(manager().running().skew.baseline_window).count());
        out.help("evenflow_config_baseline_accepted", "gauge",
                 "1 when the baseline is a version applied with --accept-shift.");
        out.sample("evenflow_config_baseline_accepted", {},
                   base != nullptr && base->accepted_shift ? 1.0 : 0.0);
        out.help("evenflow_backend_baseline_drift", "gauge",
                 "Expected share now minus in the series baseline (-1..1).");
        out.raw(d.baseline_samples);
        out.help("evenflow_backend_accepted_drift", "gauge",
                 "While the baseline is an accepted shift: expected share now minus in the "
                 "baseline it replaced (-1..1).");
        out.raw(d.accepted_samples);
    }
}

// Per service, then per backend ([control] metrics_backends selects which).
void evenflowd::backend_metrics(exposition& out, const snapshot& running) {
    const snapshot* snap = &running;
    struct row {
        const snapshot_backend* b;
        std::string service;
        const std::string* labels = nullptr; // service="..",backend=".."
        uint64_t active = 0, new_flows = 0, syns = 0, pkts_to = 0, pkts_from = 0, bytes_to = 0,
                 bytes_from = 0;
        control::backend_view view;
    };
    auto workers = worker_stats();
    if (m_labels_of != snap) {
        m_labels.clear();
        for (const snapshot_backend& b : snap->backends) {
            m_labels.push_back(exposition::labels(
                {{"service", snap->services[b.service_index].name}, {"backend", b.key()}}));
        }
        m_labels_of = snap;
    }
    std::vector<row> rows;
    for (const snapshot_backend& b : snap->backends) {
        using dataplane::backend_counters;
        row r{&b, snap->services[b.service_index].name,
              &m_labels[size_t(&b - snap->backends.data())]};
        r.active = sum(workers, b.id, &backend_counters::active_flows);
        r.new_flows = sum(workers, b.id, &backend_counters::new_flows);
        r.syns = sum(workers, b.id, &backend_counters::syns);
        r.pkts_to = sum(workers, b.id, &backend_counters::packets_to);
        r.pkts_from = sum(workers, b.id, &backend_counters::packets_from);
        r.bytes_to = sum(workers, b.id, &backend_counters::bytes_to);
        r.bytes_from = sum(workers, b.id, &backend_counters::bytes_from);
        r.view = m_skew->detector().view(b.id);
        rows.push_back(r);
    }
    // Per-service aggregates first: always present, whatever metrics_backends says.
    {
        struct totals {
            uint64_t active = 0, new_flows = 0, syns = 0, pkts_to = 0, pkts_from = 0, bytes_to = 0,
                     bytes_from = 0;
        };
        std::vector<totals> per_service(snap->services.size());
        for (const row& r : rows) {
            totals& t = per_service[r.b->service_index];
            t.active += r.active;
            t.new_flows += r.new_flows;
            t.syns += r.syns;
            t.pkts_to += r.pkts_to;
            t.pkts_from += r.pkts_from;
            t.bytes_to += r.bytes_to;
            t.bytes_from += r.bytes_from;
        }
        auto per_service_metric = [&](const char* name, const char* type, const char* help,
                                      auto value) {
            out.help(name, type, help);
            for (const snapshot_service& svc : snap->services) {
                out.sample(name, {{"service", svc.name}}, double(value(per_service[svc.index])));
            }
        };
        per_service_metric("evenflow_service_active_flows", "gauge",
                           "Live flows of the service, all backends.",
                           [](const totals& t) { return t.active; });
        per_service_metric("evenflow_service_new_flows_total", "counter",
                           "Connections to the service whose handshake was verified (tunnel "
                           "mode: the client's packet after its SYN), all backends.",
                           [](const totals& t) { return t.new_flows; });
        per_service_metric("evenflow_service_syns_total", "counter",
                           "SYNs that opened a flow to the service, verified or not "
                           "(spoofable; never judged by the skew detector).",
                           [](const totals& t) { return t.syns; });
        out.help("evenflow_service_packets_total", "counter",
                 "Packets forwarded for the service, by direction.");
        out.help("evenflow_service_bytes_total", "counter",
                 "Bytes forwarded for the service, by direction.");
        for (const snapshot_service& svc : snap->services) {
            const totals& t = per_service[svc.index];
            out.sample("evenflow_service_packets_total",
                       {{"service", svc.name}, {"direction", "to_backend"}}, double(t.pkts_to));
            out.sample("evenflow_service_packets_total",
                       {{"service", svc.name}, {"direction", "to_client"}}, double(t.pkts_from));
            out.sample("evenflow_service_bytes_total",
                       {{"service", svc.name}, {"direction", "to_backend"}}, double(t.bytes_to));
            out.sample("evenflow_service_bytes_total",
                       {{"service", svc.name}, {"direction", "to_client"}}, double(t.bytes_from));
        }
    }
    // Then per-backend series for the backends [control] metrics_backends selects.
    const config::metrics_backends& selection = manager().running().control.metrics_backends;
    if (selection.which != config::metrics_backends::kind::all) {
        auto in_trouble = [&](const row& r) {
            return !takes_new_flows(r.b->state) ||
                   m_skew->detector().alarms().count(r.b->id) != 0 ||
                   m_skew->no_backend().active().count(r.service) != 0;
        };
        std::vector<row> busiest;
        std::vector<row> kept;
        for (row& r : rows) {
            (in_trouble(r) ? kept : busiest).push_back(std::move(r));
        }
        if (selection.which == config::metrics_backends::kind::top) {
            size_t n = std::min<size_t>(selection.top, busiest.size());
            std::partial_sort(busiest.begin(), busiest.begin() + ptrdiff_t(n), busiest.end(),
                              [](const row& a, const row& b) { return a.active > b.active; });
            kept.insert(kept.end(), busiest.begin(), busiest.begin() + ptrdiff_t(n));
        }
        rows = std::move(kept);
    }
    out.help("evenflow_metrics_backends_exported", "gauge",
             "Backends with per-backend series in this exposition ([control] metrics_backends).");
    out.sample("evenflow_metrics_backends_exported", {}, double(rows.size()));
    auto per_backend = [&](const char* name, const char* type, const char* help, auto value) {
        out.help(name, type, help);
        for (const row& r : rows) {
            out.sample(name, *r.labels, value(r));
        }
    };
    per_backend("evenflow_backend_up", "gauge", "1 when the backend takes new flows.",
                [](const row& r) { return takes_new_flows(r.b->state) ? 1.0 : 0.0; });
    out.help("evenflow_backend_state", "gauge", "1 for the backend's current state.");
    for (const row& r : rows) {
        for (backend_state s : {backend_state::unknown, backend_state::up, backend_state::down,
                                backend_state::draining, backend_state::disabled}) {
            out.sample("evenflow_backend_state",
                       *r.labels + ",state=\"" + std::string(to_string(s)) + "\"",
                       r.b->state == s ? 1.0 : 0.0);
        }
    }
    per_backend("evenflow_backend_active_flows", "gauge", "Live flows pinned to the backend.",
                [](const row& r) { return double(r.active); });
    per_backend("evenflow_backend_new_flows_total", "counter",
                "Connections to the backend whose handshake was verified.",
                [](const row& r) { return double(r.new_flows); });
    out.help("evenflow_backend_packets_total", "counter", "Packets forwarded, by direction.");
    out.help("evenflow_backend_bytes_total", "counter", "Bytes forwarded, by direction.");
    for (const row& r : rows) {
        const std::string to_backend = *r.labels + ",direction=\"to_backend\"";
        const std::string to_client = *r.labels + ",direction=\"to_client\"";
        out.sample("evenflow_backend_packets_total", to_backend, double(r.pkts_to));
        out.sample("evenflow_backend_packets_total", to_client, double(r.pkts_from));
        out.sample("evenflow_backend_bytes_total", to_backend, double(r.bytes_to));
        out.sample("evenflow_backend_bytes_total", to_client, double(r.bytes_from));
    }
    per_backend("evenflow_backend_expected_share", "gauge",
                "Configured weight share within the service (0..1).",
                [](const row& r) { return r.b->expected_share; });
    per_backend("evenflow_backend_observed_share", "gauge",
                "Share of the service's new flows in the skew window (0..1).",
                [](const row& r) { return r.view.observed_share; });
    per_backend("evenflow_backend_bytes_share", "gauge",
                "Share of the service's bytes (both directions) in the skew window (0..1).",
                [](const row& r) { return r.view.bytes_share; });
    per_backend("evenflow_backend_packets_share", "gauge",
                "Share of the service's packets (both directions) in the skew window (0..1).",
                [](const row& r) { return r.view.packets_share; });
    per_backend(
        "evenflow_backend_skew_ratio", "gauge", "Observed over expected share.", [](const row& r) {
            return r.b->expected_share > 0 ? r.view.observed_share / r.b->expected_share : 0.0;
        });
    auto alarm_kind = [&](const row& r) -> std::optional<control::skew_kind> {
        const auto& alarms = m_skew->detector().alarms();
        auto it = alarms.find(r.b->id);
        return it == alarms.end() ? std::nullopt : std::optional(it->second.kind);
    };
    per_backend("evenflow_backend_skew_alarm", "gauge",
                "1 while a skew alarm that points at the config (hot or starved) is active.",
                [&](const row& r) {
                    auto kind = alarm_kind(r);
                    return kind && *kind != control::skew_kind::heavy_hitter ? 1.0 : 0.0;
                });
    per_backend("evenflow_backend_heavy_hitter_alarm", "gauge",
                "1 while the backend's skew comes from a few clients (never rolled back).",
                [&](const row& r) {
                    return alarm_kind(r) == control::skew_kind::heavy_hitter ? 1.0 : 0.0;
                });
    out.help("evenflow_service_backends_up", "gauge", "Backends taking new flows.");
    out.help("evenflow_service_no_backend_alarm", "gauge", "1 while no backend is up.");
    for (const snapshot_service& svc : snap->services) {
        double up = 0;
        for (uint32_t i : svc.backend_indexes) {
            up += takes_new_flows(snap->backends[i].state) ? 1 : 0;
        }
        out.sample("evenflow_service_backends_up", {{"service", svc.name}}, up);
        out.sample("evenflow_service_no_backend_alarm", {{"service", svc.name}},
                   m_skew->no_backend().active().count(svc.name) ? 1.0 : 0.0);
    }
}

// Per worker, the control loop and the neighbor table.
void evenflowd::worker_metrics(exposition& out) {
    for (const dataplane::worker_counter_info& m : dataplane::worker_counter_list) {
        if (!m.exported) {
            continue;
        }
        bool is_counter = m.kind == dataplane::metric_kind::counter;
        std::string name = fmt::format("evenflow_worker_{}{}", m.name, is_counter ? "_total" : "");
        out.help(name, is_counter ? "counter" : "gauge", std::string(m.help));
        for (size_t i = 0; i < m_workers.size(); ++i) {
            out.sample(name, {{"worker", std::to_string(i)}},
                       double((m_workers[i]->stats().totals.*m.field).get()));
        }
    }
    out.help("evenflow_worker_drops_total", "counter", "Packets dropped, by reason.");
    for (size_t i = 0; i < m_workers.size(); ++i) {
        const auto& c = m_workers[i]->stats().totals;
        for (size_t r = 1; r < size_t(net::drop_reason::count_); ++r) {
            if (net::drop_reason(r) == net::drop_reason::flow_table_full) {
                continue; // informational, the packet went out
            }
            out.sample("evenflow_worker_drops_total",
                       {{"worker", std::to_string(i)},
                        {"reason", std::string(net::to_string(net::drop_reason(r)))}},
                       double(c.drops[r].get()));
        }
    }
    out.help("evenflow_control_loop_max_seconds", "gauge",
             "Longest control-loop iteration over the last 10 to 20 s (ARP, probes and the "
             "socket wait that long).");
    out.sample("evenflow_control_loop_max_seconds", {},
               std::chrono::duration<double>(m_loop.recent_max()).count());
    const auto& resolver = m_slow_path->resolver();
    out.help("evenflow_neighbor_mac_changes_total", "counter",
             "Neighbors (gateways, backends, clients on-link) whose MAC changed.");
    out.sample("evenflow_neighbor_mac_changes_total", {}, double(resolver.mac_changes()));
    out.help("evenflow_neighbor_arp_ignored_total", "counter",
             "ARP frames not learned from: unsolicited, or a MAC change too soon after one.");
    out.sample("evenflow_neighbor_arp_ignored_total", {}, double(resolver.ignored()));
    if (!m_kernel.entries().empty()) {
        out.help("evenflow_kernel_interface_packets_total", "counter",
                 "Frames through the exception path, by interface and direction (to_kernel: "
                 "the host's own traffic from the port; from_kernel: the kernel's, sent out).");
        out.help("evenflow_kernel_interface_dropped_total", "counter",
                 "Frames for a kernel interface its TAP queue did not take.");
    }
    for (const auto& k : m_kernel.entries()) {
        const std::string& name = m_shared.interfaces[k.iface].name;
        out.sample("evenflow_kernel_interface_packets_total",
                   {{"interface", name}, {"direction", "to_kernel"}}, double(k.stats.to_kernel));
        out.sample("evenflow_kernel_interface_packets_total",
                   {{"interface", name}, {"direction", "from_kernel"}},
                   double(k.stats.from_kernel));
        out.sample("evenflow_kernel_interface_dropped_total", {{"interface", name}},
                   double(k.stats.to_kernel_dropped));
    }
}

void evenflowd::refresh_telemetry_if_wanted() {
    if (!g_telemetry.wanted.load()) {
        return;
    }
    const snapshot* snap = m_shared.snap.load();
    auto workers = worker_stats();
    std::vector<std::pair<std::string, std::string>> backends;
    for (const snapshot_backend& b : snap->backends) {
        using dataplane::backend_counters;
        backends.emplace_back(
            fmt::format("{}/{}", snap->services[b.service_index].name, b.key()),
            fmt::format("state={} expected={:.3f} observed={:.3f} active={} new={}",
                        to_string(b.state), b.expected_share,
                        m_skew->detector().view(b.id).observed_share,
                        sum(workers, b.id, &backend_counters::active_flows),
                        sum(workers, b.id, &backend_counters::new_flows)));
    }
    {
        std::lock_guard lock(g_telemetry.mutex);
        g_telemetry.version = manager().version();
        g_telemetry.uptime_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - m_started).count();
        g_telemetry.alarms = m_skew->alarm_count();
        g_telemetry.backends = std::move(backends);
        g_telemetry.workers.clear();
        for (const auto& w : m_workers) {
            const auto& c = w->stats().totals;
            uint64_t packets = c.rx_packets.get() + c.handoff_in.get();
            g_telemetry.workers.push_back(
                fmt::format("rx_packets={} busy_cycles={} cycles_per_packet={:.1f}",
                            c.rx_packets.get(), c.busy_cycles.get(),
                            packets == 0 ? 0.0 : double(c.busy_cycles.get()) / double(packets)));
        }
        ++g_telemetry.generation;
        g_telemetry.wanted.store(false);
    }
    g_telemetry.refreshed.notify_all();
}

std::vector<const dataplane::worker_stats*> evenflowd::worker_stats() const {
    std::vector<const dataplane::worker_stats*> out;
    for (const auto& w : m_workers) {
        out.push_back(&w->stats());
    }
    return out;
}

} // namespace evenflow::daemon
