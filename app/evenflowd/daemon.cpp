#include "daemon.hpp"

#include "config/load.hpp"
#include "control/log.hpp"
#include "dataplane/ports.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_pdump.h>
#include <rte_ring.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <unistd.h>

namespace evenflow::daemon {

using api::json;
using control::log_event;
using namespace std::chrono_literals;

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void on_signal(int sig) {
    if (sig == SIGHUP) {
        g_reload.store(true);
    } else {
        g_stop.store(true);
    }
}

void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

} // namespace

evenflowd::evenflowd(options opts)
    : m_options(std::move(opts)), m_changes(pipeline_host(), m_options.config_path),
      m_server(
          [this](const json& request, const control::actor& who, control_server::ticket ticket) {
              return dispatch(request, request_context{who, ticket});
          }) {}

evenflowd::~evenflowd() {
    shutdown();
}

int evenflowd::run() {
    install_signal_handlers();
    if (!start()) {
        shutdown();
        return 1;
    }
    loop();
    shutdown();
    return 0;
}

bool evenflowd::start() {
    m_started = std::chrono::steady_clock::now();
    config::load_result loaded = config::load_file(m_options.config_path);
    for (const auto& w : loaded.warnings) {
        log_event("warning", "config", {{"message", w.to_string()}});
    }
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors) {
            std::fprintf(stderr, "%s\n", e.to_string().c_str());
        }
        log_event("error", "start_refused",
                  {{"reason", "invalid config"}, {"path", m_options.config_path}});
        return false;
    }
    const config::config& cfg = *loaded.value;
    // In this order; a step that refuses logs why (start_refused), and shutdown()
    // undoes what the steps before it did.
    if (!no_other_daemon(cfg) || !start_eal(cfg) || !start_ports(cfg) || !create_rings(cfg)) {
        return false;
    }
    m_modules = make_modules(m_module_context); // before the workers: what they read
    m_skew = find_module<skew_module>(m_modules);
    if (!publish_first(cfg) || !create_workers(cfg) || !open_control(cfg) || !start_modules()) {
        return false;
    }
    if (const char* wedge = std::getenv("EVENFLOW_TEST_WEDGE_FILE")) {
        m_wedge_file = wedge;
        log_event("warning", "test_hook", {{"wedge_file", m_wedge_file}});
    }

    for (size_t i = 0; i < m_workers.size(); ++i) {
        rte_eal_remote_launch(dataplane::worker::launch, m_workers[i].get(), m_worker_lcores[i]);
    }
    m_workers_launched = true;
    after_config_change();
    log_event("info", "started",
              {{"version", std::to_string(manager().version())},
               {"from", m_changes.start_origin().from},
               {"workers", std::to_string(m_workers.size())},
               {"services", std::to_string(manager().running().services.size())},
               {"socket", m_server.path()},
               {"pid", std::to_string(getpid())}});
    return true;
}

bool evenflowd::no_other_daemon(const config::config& cfg) {
    // Before EAL takes the ports.
    std::string ignored;
    int fd = api::connect_socket(cfg.control.socket, &ignored);
    if (fd < 0) {
        return true;
    }
    close(fd);
    log_event("error", "start_refused",
              {{"reason", "another evenflowd answers on the control socket"},
               {"socket", cfg.control.socket}});
    return false;
}

bool evenflowd::start_eal(const config::config& cfg) {
    // EAL: [eal] args, then the extras from the command line.
    std::vector<std::string> args{"evenflowd"};
    args.insert(args.end(), cfg.eal.args.begin(), cfg.eal.args.end());
    args.insert(args.end(), m_options.extra_eal_args.begin(), m_options.extra_eal_args.end());
    std::vector<char*> argv;
    for (std::string& a : args) {
        argv.push_back(a.data());
    }
    if (rte_eal_init(int(argv.size()), argv.data()) < 0) {
        log_event("error", "start_refused",
                  {{"reason", fmt::format("EAL init failed: {}", rte_strerror(rte_errno))},
                   {"eal_args", fmt::format("{}", fmt::join(args, " "))}});
        return false;
    }
    m_eal_ready = true;
    // dpdk-dumpcap (a secondary process on the same --file-prefix) captures the ports.
    if (rte_pdump_init() != 0) {
        log_event("warning", "pdump_unavailable", {{"reason", rte_strerror(rte_errno)}});
    }
    register_telemetry();

    for (uint32_t lcore : cfg.dataplane.workers) {
        if (lcore == rte_get_main_lcore() || !rte_lcore_is_enabled(lcore)) {
            log_event("error", "start_refused",
                      {{"reason", fmt::format("worker lcore {} is not an enabled worker lcore "
                                              "(main lcore is {}; enable it with -l/--lcores "
                                              "in [eal] args)",
                                              lcore, rte_get_main_lcore())}});
            return false;
        }
    }
    return true;
}

bool evenflowd::start_ports(const config::config& cfg) {
    const auto workers = uint16_t(cfg.dataplane.workers.size());
    m_shared.steering = dataplane::flow_steering(workers);
    dataplane::port_options port_opts;
    port_opts.queues = workers;
    port_opts.steering = &m_shared.steering;
    port_opts.roles = dataplane::port_roles(cfg);
    std::string error;
    m_pool = dataplane::create_packet_pool(cfg.interfaces.size(), port_opts, &error);
    if (m_pool == nullptr) {
        log_event("error", "start_refused", {{"reason", error}});
        return false;
    }
    if (!dataplane::start_ports(cfg.interfaces, port_opts, m_pool, m_shared.interfaces, &error)) {
        log_event("error", "start_refused", {{"reason", error}});
        return false;
    }
    m_ports_started = true;
    if (!m_kernel.start(m_shared.interfaces, m_pool, &error)) {
        log_event("error", "start_refused", {{"reason", error}});
        return false;
    }
    for (const auto& k : m_kernel.entries()) {
        log_event("info", "kernel_interface_up",
                  {{"interface", m_shared.interfaces[k.iface].name},
                   {"kernel_interface", k.kernel},
                   {"address", m_shared.interfaces[k.iface].address.to_string()}});
    }
    if (cfg.bgp.enabled) {
        for (const auto& peer : cfg.bgp.peers) {
            m_shared.routing_peers.push_back(peer.address);
        }
    }
    for (const auto& i : m_shared.interfaces) {
        char mac[RTE_ETHER_ADDR_FMT_SIZE];
        rte_ether_format_addr(mac, sizeof mac, &i.mac);
        log_event("info", "interface_up",
                  {{"name", i.name},
                   {"device", i.device},
                   {"port", std::to_string(i.port_id)},
                   {"mac", mac},
                   {"address", i.address.to_string()},
                   {"steering", std::string(dataplane::to_string(i.steering))}});
    }
    return true;
}

bool evenflowd::create_rings(const config::config& cfg) {
    const auto workers = uint16_t(cfg.dataplane.workers.size());
    // Hand-off rings between every pair of workers, when a port needs them.
    bool handoff = std::any_of(m_shared.interfaces.begin(), m_shared.interfaces.end(),
                               [](const dataplane::interface_info& i) {
                                   return i.steering == dataplane::steering_mode::handoff;
                               });
    if (handoff) {
        m_shared.handoff.assign(size_t(workers) * workers, nullptr);
        for (uint16_t from = 0; from < workers; ++from) {
            for (uint16_t to = 0; to < workers; ++to) {
                if (from == to) {
                    continue;
                }
                rte_ring* r = rte_ring_create(fmt::format("ef_handoff_{}_{}", from, to).c_str(),
                                              4096, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
                if (r == nullptr) {
                    log_event("error", "start_refused",
                              {{"reason", "cannot create the hand-off rings"}});
                    return false;
                }
                m_shared.handoff[size_t(from) * workers + to] = r;
            }
        }
    }

    for (size_t r = 0; r < m_shared.to_control.size(); ++r) {
        auto reason = dataplane::control_reason(r);
        m_shared.to_control[r] =
            rte_ring_create(fmt::format("ef_ctl_{}", dataplane::to_string(reason)).c_str(),
                            reason == dataplane::control_reason::probe ? 16384 : 4096,
                            SOCKET_ID_ANY, RING_F_SC_DEQ);
    }
    m_qsbr = dataplane::qsbr_domain::create(uint32_t(cfg.dataplane.workers.size()));
    if (std::count(m_shared.to_control.begin(), m_shared.to_control.end(), nullptr) != 0 ||
        !m_qsbr) {
        log_event("error", "start_refused", {{"reason", "cannot create the control ring/RCU"}});
        return false;
    }
    m_shared.qsbr = m_qsbr.get();
    return true;
}

bool evenflowd::publish_first(const config::config& cfg) {
    // The first snapshot is published before any worker runs.
    // The saved version (state_dir) or the file's; what runs is saved at once, with the
    // file's hash, so that a crash from here on resumes it.
    control::change_result first = m_changes.start(cfg);
    if (!first.ok) {
        log_event("error", "start_refused", {{"reason", first.error}});
        return false;
    }
    m_file_status.seed(std::make_shared<const config::config>(cfg), m_changes.file_hash());
    publish(std::move(first.snap), {});
    m_shared.neighbors.publish(dataplane::neighbor_table::build({}), *m_qsbr);
    return true;
}

bool evenflowd::create_workers(const config::config& cfg) {
    std::string error;
    for (size_t i = 0; i < cfg.dataplane.workers.size(); ++i) {
        auto w = dataplane::worker::create(
            dataplane::worker_config::from(cfg.dataplane, uint32_t(i)), m_shared, &error);
        if (!w) {
            log_event("error", "start_refused", {{"reason", error}});
            return false;
        }
        m_workers.push_back(std::move(w));
        m_worker_lcores.push_back(cfg.dataplane.workers[i]);
    }

    m_slow_path = std::make_unique<dataplane::slow_path>(m_shared, m_pool,
                                                         m_workers[0]->inject_ring(), &m_kernel);
    m_module_context.slow_path = m_slow_path.get();
    return true;
}

bool evenflowd::open_control(const config::config& cfg) {
    if (std::string socket_error;
        !m_server.open(cfg.control.socket, cfg.control.socket_group, &socket_error)) {
        log_event("error", "start_refused",
                  {{"reason", socket_error}, {"socket", cfg.control.socket}});
        return false;
    }
    if (!cfg.control.metrics.empty()) {
        std::string metrics_error;
        if (!m_metrics.start(cfg.control.metrics, &metrics_error)) {
            log_event("error", "start_refused", {{"reason", metrics_error}});
            return false;
        }
    }
    return true;
}

bool evenflowd::start_modules() {
    // Before the workers run: [bgp] forks BIRD's watchdog.
    for (const auto& m : m_modules) {
        if (std::string module_error; !m->start(&module_error)) {
            log_event("error", "start_refused", {{"reason", module_error}, {"module", m->name()}});
            return false;
        }
    }
    return true;
}

void evenflowd::shutdown() {
    m_metrics.stop();
    for (const auto& m : m_modules) {
        m->stop();
    }
    if (m_workers_launched) {
        m_shared.stop.store(true);
        rte_eal_mp_wait_lcore();
        m_workers_launched = false;
        log_event("info", "workers_stopped");
    }
    m_server.close();
    m_slow_path.reset();
    m_module_context.slow_path = nullptr; // shutdown() runs again from the destructor
    m_workers.clear();
    auto free_ring = [](rte_ring*& ring) {
        if (ring == nullptr) {
            return;
        }
        rte_mbuf* m;
        while (rte_ring_dequeue(ring, reinterpret_cast<void**>(&m)) == 0) {
            rte_pktmbuf_free(m);
        }
        rte_ring_free(ring);
        ring = nullptr;
    };
    for (rte_ring*& r : m_shared.to_control) {
        free_ring(r);
    }
    for (rte_ring*& r : m_shared.handoff) {
        free_ring(r);
    }
    m_shared.handoff.clear();
    m_kernel.stop();
    if (m_ports_started) {
        dataplane::stop_ports(m_shared.interfaces);
        m_ports_started = false;
        log_event("info", "ports_closed");
    }
    // DPDK-allocated objects go before the EAL that owns their memory.
    m_qsbr.reset();
    m_shared.qsbr = nullptr;
    if (m_pool != nullptr) {
        rte_mempool_free(m_pool);
        m_pool = nullptr;
    }
    if (m_eal_ready) {
        rte_pdump_uninit();
        rte_eal_cleanup();
        m_eal_ready = false;
        log_event("info", "stopped");
    }
}

void evenflowd::loop() {
    auto iteration_start = std::chrono::steady_clock::now();
    // SIGTERM: modules may hold the stop a while (BGP: withdraw, wait for routers, let
    // connections drain); the loop goes on meanwhile.
    bool stop_asked = false;
    for (;;) {
        if (g_stop.load()) {
            auto t = std::chrono::steady_clock::now();
            if (!stop_asked) {
                stop_asked = true;
                for (const auto& m : m_modules) {
                    m->on_stop_requested(t);
                }
            }
            bool held = false;
            for (const auto& m : m_modules) {
                held |= m->holds_stop(t);
            }
            if (!held) {
                break;
            }
        }
        // Each step is timed: the slowest is in `evenctl status` (control_loop).
        auto step = [this, t = iteration_start](const char* name) mutable {
            auto end = std::chrono::steady_clock::now();
            m_loop.record_step(name, end - t);
            t = end;
            return end;
        };
        // Short waits: the slow path (ARP, held packets) is polled between them; none
        // while a change is being built, so the build moves on at once.
        m_server.poll(m_changes.pending() ? 0 : 2);
        m_slow_path->drain();
        for (const auto& e : m_slow_path->take_events()) {
            char from[RTE_ETHER_ADDR_FMT_SIZE], to[RTE_ETHER_ADDR_FMT_SIZE];
            rte_ether_format_addr(from, sizeof from, &e.old_mac);
            rte_ether_format_addr(to, sizeof to, &e.new_mac);
            log_event("warning", "neighbor_mac_changed",
                      {{"interface", m_shared.interfaces[e.iface].name},
                       {"address", e.ip.to_string()},
                       {"from", from},
                       {"to", to}});
        }
        auto now = step("socket+slow_path");
        if (now >= m_next_neighbor_tick) {
            m_slow_path->tick(now);
            m_next_neighbor_tick = now + 100ms;
            step("neighbors");
        }
        for (const auto& m : m_modules) {
            m->tick(now);
            step(m->name());
        }
        test_hooks_tick(now);
        if (g_reload.exchange(false)) {
            m_changes.request_reload();
        }
        m_changes.advance();
        answer_waiting_status();
        step("changes");
        if (m_metrics.wanted()) {
            m_metrics.publish(render_metrics());
            step("metrics");
        }
        refresh_telemetry_if_wanted();
        // The longest iteration is how long ARP, probes and the socket could have waited.
        auto end = step("telemetry");
        m_loop.record(end - iteration_start, end);
        iteration_start = end;
    }
    log_event("info", "stopping", {{"version", std::to_string(manager().version())}});
}

} // namespace evenflow::daemon

namespace evenflow::daemon {

std::vector<dataplane::worker*> evenflowd::running_workers() const {
    std::vector<dataplane::worker*> out;
    if (m_workers_launched) {
        for (const auto& w : m_workers) {
            out.push_back(w.get());
        }
    }
    return out;
}

uint64_t module_context::active_flows() const {
    return sum(worker_stats(), &dataplane::worker_counters::flows_active);
}

void evenflowd::test_hooks_tick(std::chrono::steady_clock::time_point now) {
    if (!m_wedge_file.empty() && now >= m_next_wedge_check) {
        // Test hook: the file holds a worker index to wedge; no file, none.
        m_next_wedge_check = now + std::chrono::milliseconds(100);
        uint32_t wedge = 0;
        if (FILE* f = std::fopen(m_wedge_file.c_str(), "r")) {
            unsigned index = 0;
            if (std::fscanf(f, "%u", &index) == 1) {
                wedge = index + 1;
            }
            std::fclose(f);
        }
        if (m_shared.wedge_worker.exchange(wedge) != wedge) {
            log_event("warning", "test_wedge_worker", {{"worker", std::to_string(int(wedge) - 1)}});
        }
    }
}

} // namespace evenflow::daemon
