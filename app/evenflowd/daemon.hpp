// evenflowd's control thread: owns the config, the snapshots and the control
// socket; serves the slow path (ARP, neighbor resolution) for the workers.
#pragma once

#include "control/health.hpp"
#include "control/manager.hpp"
#include "control/protocol.hpp"
#include "control/skew.hpp"
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
    explicit evenflowd(options opts) : m_options(std::move(opts)) {}
    ~evenflowd();
    // Runs until SIGINT/SIGTERM. Returns the process exit code.
    int run();

private:
    struct client {
        int fd = -1;
        control::actor who;
        std::unique_ptr<control::line_reader> reader;
    };

    bool start();
    void loop();
    void shutdown();

    // Control socket.
    bool open_socket(const std::string& path);
    void accept_clients();
    void serve(client& c);
    void close_client(int fd);
    control::json dispatch(const control::json& request, const control::actor& who);
    control::json cmd_status();
    control::json cmd_services();
    control::json cmd_backends(const control::json& request);
    // The shift review's lines when `next` moves traffic too far (logged, counted).
    std::optional<std::vector<std::string>>
    refused_shift(const config::config& next, const control::actor& who, const std::string& path);
    control::json cmd_apply(const control::json& request, const control::actor& who);
    control::json cmd_history();
    control::json cmd_rollback(const control::json& request, const control::actor& who);
    control::json cmd_admin(const control::json& request, const control::actor& who,
                            control::admin_state state);
    control::json cmd_stats();
    control::json cmd_skew();
    control::json change_reply(control::change_result& result);

    // Configuration.
    void reload_from_file();
    void publish(std::unique_ptr<snapshot> snap);
    // Fields only the daemon knows: drain deadlines (workers' clock), and whether a
    // mass health failure during probation keeps pinned flows.
    void stamp_runtime_state(snapshot& snap);
    void after_config_change();

    // Health checks and alarms.
    void health_tick();
    bool on_local_tcp(const net::packet_meta& meta);
    void check_no_backend_alarms();
    // With [skew] action = "rollback": back to the previous version when an alarm
    // rises within `probation` of an apply.
    void maybe_roll_back(const std::string& why);

    // Figures: counters, Prometheus exposition (observe.cpp), DPDK telemetry.
    void stats_tick();
    std::string render_metrics();
    void register_telemetry();
    std::vector<control::backend_sample> sample_backends() const;

    options m_options;
    control::config_manager m_manager;
    control::skew_detector m_skew;
    control::health_checker m_health;
    std::map<std::string, std::chrono::system_clock::time_point> m_no_backend_since; // by service
    dataplane::dataplane_shared m_shared;
    std::unique_ptr<dataplane::qsbr_domain> m_qsbr;
    std::vector<std::unique_ptr<dataplane::worker>> m_workers;
    std::vector<unsigned> m_worker_lcores;
    std::unique_ptr<dataplane::slow_path> m_slow_path;
    rte_mempool* m_pool = nullptr;
    bool m_eal_ready = false;
    bool m_ports_started = false;
    bool m_workers_launched = false;
    std::string m_socket_path;
    int m_listen_fd = -1;
    int m_epoll_fd = -1;
    std::map<int, client> m_clients;
    std::chrono::steady_clock::time_point m_started;
    std::optional<std::chrono::steady_clock::time_point> m_last_apply; // for probation
    std::map<uint32_t, uint64_t> m_draining_since; // backend id -> worker clock ms
    metrics_server m_metrics;
    uint64_t m_applies = 0;
    std::map<std::string, uint64_t> m_refused;   // by reason: invalid, shift, restart
    std::map<std::string, uint64_t> m_rollbacks; // by trigger: operator, automatic
    std::chrono::steady_clock::time_point m_next_neighbor_tick, m_next_stats_tick;
};

} // namespace evenflow::daemon
