// evenflowd's control thread: owns the config, the snapshots and the control
// socket; serves the slow path (ARP, neighbor resolution) for the workers.
//
// The class is split by role across files:
//   daemon.cpp          start, shutdown and the control loop
//   control_server.cpp  the socket transport (control_server.hpp)
//   commands.cpp        one handler per command of lib/control/commands.hpp
//   changes.cpp         the one path by which configs and states reach the workers:
//                       apply_config, rollbacks, admin states, health verdicts
//   observe.cpp         figures: the skew sampler, /metrics, DPDK telemetry
#pragma once

#include "config/load.hpp"
#include "control/commands.hpp"
#include "control/health.hpp"
#include "control/log.hpp"
#include "control/manager.hpp"
#include "control/policy.hpp"
#include "control/protocol.hpp"
#include "control/skew.hpp"
#include "control_server.hpp"
#include "dataplane/neighbor.hpp"
#include "dataplane/slow_path.hpp"
#include "dataplane/worker.hpp"
#include "metrics.hpp"

#include <rte_mempool.h>

#include <chrono>
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
    void loop();
    void shutdown();

    // ---- commands.cpp
    control::json dispatch(const control::json& request, const control::actor& who);
    control::json cmd_status(const control::json& request, const control::actor& who);
    control::json cmd_services(const control::json& request, const control::actor& who);
    control::json cmd_backends(const control::json& request, const control::actor& who);
    control::json cmd_apply(const control::json& request, const control::actor& who);
    control::json cmd_history(const control::json& request, const control::actor& who);
    control::json cmd_rollback(const control::json& request, const control::actor& who);
    control::json cmd_drain(const control::json& request, const control::actor& who);
    control::json cmd_enable(const control::json& request, const control::actor& who);
    control::json cmd_disable(const control::json& request, const control::actor& who);
    control::json cmd_stats(const control::json& request, const control::actor& who);
    control::json cmd_skew(const control::json& request, const control::actor& who);
    using handler = control::json (evenflowd::*)(const control::json&, const control::actor&);
    static handler handler_for(control::command id);

    // ---- changes.cpp
    // The one path by which a loaded config becomes the running one: evenctl apply and
    // SIGHUP. Refuses an invalid config, a large shift (unless accepted) and what only a
    // restart can change; logs the verdict in one format (uid, pid, via, origin, one line
    // per change). The reply is the one evenctl apply prints.
    control::json apply_config(const config::load_result& loaded, const control::actor& who,
                               const std::string& origin, bool accept_shift);
    // Back to a kept version (the previous one by default); `who.via` tells an
    // operator's rollback from the guard's.
    control::json roll_back(std::optional<uint64_t> version, const control::actor& who,
                            const std::string& why);
    control::json set_admin(const control::json& request, const control::actor& who,
                            control::admin_state state);
    // Publishes an accepted change and answers with its version and diff.
    control::json commit_reply(control::change_result& result);
    void log_change(const char* event, const control::change_result& result,
                    const control::actor& who, const std::string& origin,
                    std::initializer_list<control::log_field> extra = {});
    // The shift review's lines when `next` moves traffic too far (logged, counted).
    std::optional<std::vector<std::string>>
    refused_shift(const config::config& next, const control::actor& who, const std::string& path);
    void reload_from_file();
    void publish(std::unique_ptr<snapshot> snap);
    void after_config_change();
    void health_tick();
    bool on_local_tcp(const net::packet_meta& meta);
    void update_no_backend_alarms();
    // With [skew] action = "rollback": back to the previous version when an alarm
    // rises within `probation` of an apply.
    void maybe_roll_back(const std::string& why);

    // ---- observe.cpp
    void stats_tick();
    std::string render_metrics();
    void register_telemetry();
    std::vector<control::backend_sample> sample_backends() const;
    std::vector<const dataplane::worker_stats*> worker_stats() const;
    size_t alarm_count() const;

    options m_options;
    control::config_manager m_manager;
    control::skew_detector m_skew;
    control::health_checker m_health;
    control::probation m_probation;
    control::no_backend_alarms m_no_backend;
    control::runtime_stamper m_stamper;
    dataplane::dataplane_shared m_shared;
    std::unique_ptr<dataplane::qsbr_domain> m_qsbr;
    std::vector<std::unique_ptr<dataplane::worker>> m_workers;
    std::vector<unsigned> m_worker_lcores;
    std::unique_ptr<dataplane::slow_path> m_slow_path;
    rte_mempool* m_pool = nullptr;
    bool m_eal_ready = false;
    bool m_ports_started = false;
    bool m_workers_launched = false;
    control_server m_server;
    std::chrono::steady_clock::time_point m_started;
    metrics_server m_metrics;
    uint64_t m_applies = 0;
    std::map<std::string, uint64_t> m_refused;   // by reason: invalid, shift, restart
    std::map<std::string, uint64_t> m_rollbacks; // by trigger: operator, automatic
    std::chrono::steady_clock::time_point m_next_neighbor_tick, m_next_stats_tick;
};

} // namespace evenflow::daemon
