// evenflowd's control thread: owns the config, the snapshots and the control
// socket; serves the slow path (ARP, neighbor resolution) for the workers.
//
// The class is split by role across files:
//   daemon.cpp          start, shutdown and the control loop
//   control_server.cpp  the socket transport (control_server.hpp)
//   commands.cpp        one handler per command of lib/api/commands.hpp
//   changes.cpp         the daemon's side of the change pipeline (control/changes.hpp):
//                       publication to the workers
//   file_status.cpp     does the running config differ from the file (status)
//   observe.cpp         figures that join every feature: /metrics per backend and
//                       worker, the baseline drift, DPDK telemetry
//   modules.cpp         the features it runs (module.hpp), each in modules/<name>/:
//                       health (probes, verdicts), skew (the sampler, alarms, skew and
//                       clients commands), bgp (BIRD, drain-host, SIGTERM drain)
#pragma once

#include "api/commands.hpp"
#include "api/protocol.hpp"
#include "config/load.hpp"
#include "control/changes.hpp"
#include "control/guard.hpp"
#include "control/log.hpp"
#include "control/manager.hpp"
#include "control/policy.hpp"
#include "control/state_store.hpp"
#include "control_server.hpp"
#include "dataplane/neighbor.hpp"
#include "dataplane/slow_path.hpp"
#include "dataplane/worker.hpp"
#include "file_status.hpp"
#include "metrics.hpp"
#include "module.hpp"
#include "modules/skew/skew_module.hpp"
#include "reclaimer.hpp"

#include <rte_mempool.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace evenflow::daemon {

struct options {
    std::string config_path;
    std::vector<std::string> extra_eal_args;
};

class evenflowd {
public:
    explicit evenflowd(options opts);
    ~evenflowd();
    // Runs until SIGINT/SIGTERM. Returns the process exit code.
    int run();

private:
    // ---- daemon.cpp
    bool start();
    // start()'s steps, in order: false when evenflowd refuses to start (logged).
    bool no_other_daemon(const config::config& cfg);
    bool start_eal(const config::config& cfg);
    bool start_ports(const config::config& cfg);
    bool create_rings(const config::config& cfg);
    bool publish_first(const config::config& cfg);
    bool create_workers(const config::config& cfg);
    bool open_control(const config::config& cfg);
    bool start_modules();
    void loop();
    void shutdown();

    // ---- commands.cpp
    // request_context and answer_t: module.hpp (modules answer commands too).
    answer_t dispatch(const api::json& request, const request_context& ctx);
    answer_t cmd_status(const api::json& request, const request_context& ctx);
    api::json status_reply();
    // Answers the statuses that waited for the config file's read (file_status.hpp).
    void answer_waiting_status();
    answer_t cmd_services(const api::json& request, const request_context& ctx);
    answer_t cmd_backends(const api::json& request, const request_context& ctx);
    answer_t cmd_apply(const api::json& request, const request_context& ctx);
    answer_t cmd_diff(const api::json& request, const request_context& ctx);
    answer_t cmd_history(const api::json& request, const request_context& ctx);
    answer_t cmd_rollback(const api::json& request, const request_context& ctx);
    answer_t cmd_drain(const api::json& request, const request_context& ctx);
    answer_t cmd_enable(const api::json& request, const request_context& ctx);
    answer_t cmd_disable(const api::json& request, const request_context& ctx);
    answer_t cmd_stats(const api::json& request, const request_context& ctx);
    answer_t admin_command(const api::json& request, const request_context& ctx,
                           control::admin_state state);
    using handler = answer_t (evenflowd::*)(const api::json&, const request_context&);
    static handler handler_for(api::command id);

    // ---- changes.cpp: the daemon's side of the change pipeline (control/changes.hpp)
    // Where a publication goes: the workers (RCU), then the follow-up work.
    control::change_pipeline::host pipeline_host();
    control::config_manager& manager() { return m_changes.manager(); }
    const control::config_manager& manager() const { return m_changes.manager(); }
    // A reply callback that answers `ticket` on the control socket.
    control::change_pipeline::reply_fn reply_to(control_server::ticket ticket);
    void publish(std::unique_ptr<snapshot> snap, const control::publication& what);
    void after_config_change();

    // ---- daemon.cpp
    // EVENFLOW_TEST_WEDGE_FILE: wedges the worker the file names (liveness and skew
    // tests), with or without [bgp].
    void test_hooks_tick(std::chrono::steady_clock::time_point now);

    // ---- observe.cpp
    std::string render_metrics();
    void config_metrics(exposition& out);
    void backend_metrics(exposition& out, const snapshot& running);
    void worker_metrics(exposition& out);
    // Each backend's expected share now and in the series baseline (and, when the
    // baseline is an accepted shift, in the baseline it replaced), for status and
    // /metrics. Computed off the loop (ten thousand backends take tens of ms) whenever
    // the running or the baseline version changes; until then the last one, which
    // says which versions it describes.
    struct drift_row {
        std::string service, backend;
        double share = 0, baseline = 0;
        std::optional<double> before_accepted;
    };
    struct baseline_drift {
        uint64_t running = 0, baseline = 0; // the versions the rows describe
        std::vector<drift_row> rows;
        // Their /metrics sample lines, rendered with them ([control] metrics_backends:
        // every backend, or those that moved).
        std::string baseline_samples, accepted_samples;
    };
    const baseline_drift& drift();
    // The config fingerprint (status, /metrics), computed again only when the version
    // or an admin state changed: at ten thousand backends it costs ~10 ms.
    const std::string& fingerprint();
    static baseline_drift compute_drift(std::shared_ptr<const config::config> running,
                                        uint64_t running_version,
                                        std::shared_ptr<const config::config> baseline,
                                        uint64_t baseline_version,
                                        std::shared_ptr<const config::config> before_accepted);
    void register_telemetry();
    // DPDK telemetry reads a copy; it is refreshed when a telemetry client asks.
    void refresh_telemetry_if_wanted();
    std::vector<const dataplane::worker_stats*> worker_stats() const;
    std::vector<dataplane::worker*> running_workers() const; // empty before they run

    options m_options;
    control::change_pipeline m_changes; // configs and states on their way to the workers
    control::runtime_stamper m_stamper;
    dataplane::dataplane_shared m_shared;
    std::unique_ptr<dataplane::qsbr_domain> m_qsbr;
    std::vector<std::unique_ptr<dataplane::worker>> m_workers;
    std::vector<unsigned> m_worker_lcores;
    dataplane::kernel_interfaces m_kernel; // before m_slow_path, which uses it
    std::unique_ptr<dataplane::slow_path> m_slow_path;
    rte_mempool* m_pool = nullptr;
    bool m_eal_ready = false;
    bool m_ports_started = false;
    bool m_workers_launched = false;
    control_server m_server;
    std::chrono::steady_clock::time_point m_started;
    metrics_server m_metrics;
    std::chrono::steady_clock::time_point m_next_neighbor_tick;
    control::loop_watch m_loop;
    // The features (module.hpp), made in start() before the workers.
    module_context m_module_context{m_changes,
                                    m_shared,
                                    nullptr,
                                    m_server,
                                    [this] { return worker_stats(); },
                                    [this] { return running_workers(); },
                                    [this] {
                                        return m_loop.iterations();
                                    }};
    std::vector<std::unique_ptr<module>> m_modules;
    skew_module* m_skew = nullptr; // alarms: read by the views that join every feature
    std::string m_wedge_file;      // test hook: EVENFLOW_TEST_WEDGE_FILE
    std::chrono::steady_clock::time_point m_next_wedge_check;
    // `evenctl status`'s "file", read off the loop; the statuses waiting for it.
    config_file_status m_file_status{m_options.config_path};
    std::vector<control_server::ticket> m_status_waiting;
    struct {
        uint64_t version = 0;
        uint64_t admin_generation = 0;
        std::string value; // empty: not computed yet
    } m_fingerprint;
    reclaimer m_reclaimer;             // frees old snapshots off the control thread
    std::vector<std::string> m_labels; // /metrics labels per backend of m_labels_of
    const snapshot* m_labels_of = nullptr;
    baseline_drift m_drift;
    std::future<baseline_drift> m_drift_job;
};

} // namespace evenflow::daemon
