#include "daemon.hpp"

#include "config/load.hpp"
#include "control/guard.hpp"
#include "control/log.hpp"
#include "dataplane/ports.hpp"
#include "net/reply.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_ring.h>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <arpa/inet.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace evenflow::daemon {

using control::json;
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

std::string iso_time(std::chrono::system_clock::time_point t) {
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", std::chrono::floor<std::chrono::seconds>(t));
}

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

} // namespace

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

    // Refuse early if another daemon answers on the socket: before EAL takes ports.
    {
        std::string ignored;
        int fd = control::connect_socket(cfg.control.socket, &ignored);
        if (fd >= 0) {
            close(fd);
            log_event("error", "start_refused",
                      {{"reason", "another evenflowd answers on the control socket"},
                       {"socket", cfg.control.socket}});
            return false;
        }
    }

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
                   {"eal_args", join(args, " ")}});
        return false;
    }
    m_eal_ready = true;
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

    dataplane::port_options port_opts;
    port_opts.queues = uint16_t(cfg.dataplane.workers.size());
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
    for (const auto& i : m_shared.interfaces) {
        char mac[RTE_ETHER_ADDR_FMT_SIZE];
        rte_ether_format_addr(mac, sizeof mac, &i.mac);
        log_event("info", "interface_up",
                  {{"name", i.name},
                   {"device", i.device},
                   {"port", std::to_string(i.port_id)},
                   {"mac", mac},
                   {"address", i.address.to_string()}});
    }

    m_shared.to_control = rte_ring_create("ef_to_control", 4096, SOCKET_ID_ANY, RING_F_SC_DEQ);
    m_qsbr = dataplane::qsbr_domain::create(uint32_t(cfg.dataplane.workers.size()));
    if (m_shared.to_control == nullptr || !m_qsbr) {
        log_event("error", "start_refused", {{"reason", "cannot create the control ring/RCU"}});
        return false;
    }
    m_shared.qsbr = m_qsbr.get();

    // The first snapshot is published before any worker runs.
    control::change_result first =
        m_manager.start(cfg, control::actor{uint32_t(getuid()), int32_t(getpid()), "startup"},
                        fmt::format("start {}", m_options.config_path));
    if (!first.ok) {
        log_event("error", "start_refused", {{"reason", first.error}});
        return false;
    }
    m_skew.reconfigure(cfg.skew);
    publish(std::move(first.snap));
    m_shared.neighbors.publish(dataplane::neighbor_table::build({}), *m_qsbr);

    flow::flow_timeouts_ms timeouts;
    timeouts.syn = uint32_t(cfg.dataplane.timeouts.syn.count());
    timeouts.established = uint32_t(cfg.dataplane.timeouts.established.count());
    timeouts.closing = uint32_t(cfg.dataplane.timeouts.closing.count());
    for (size_t i = 0; i < cfg.dataplane.workers.size(); ++i) {
        dataplane::worker_config wc;
        wc.index = uint32_t(i);
        wc.flow_capacity = cfg.dataplane.flow_capacity;
        wc.timeouts = timeouts;
        auto w = dataplane::worker::create(wc, m_shared, &error);
        if (!w) {
            log_event("error", "start_refused", {{"reason", error}});
            return false;
        }
        m_workers.push_back(std::move(w));
        m_worker_lcores.push_back(cfg.dataplane.workers[i]);
    }

    if (!open_socket(cfg.control.socket)) {
        return false;
    }
    if (!cfg.control.metrics.empty()) {
        std::string metrics_error;
        if (!m_metrics.start(cfg.control.metrics, &metrics_error)) {
            log_event("error", "start_refused", {{"reason", metrics_error}});
            return false;
        }
    }

    for (size_t i = 0; i < m_workers.size(); ++i) {
        rte_eal_remote_launch(dataplane::worker::launch, m_workers[i].get(), m_worker_lcores[i]);
    }
    m_workers_launched = true;

    m_slow_path =
        std::make_unique<dataplane::slow_path>(m_shared, m_pool, m_workers[0]->inject_ring());
    m_slow_path->on_local_tcp([this](const net::packet_meta& meta) { return on_local_tcp(meta); });
    after_config_change();
    // A first sample at zero, so flows of the first second count in the first window.
    m_skew.tick(std::chrono::steady_clock::now(), std::chrono::system_clock::now(),
                sample_backends());
    m_metrics.publish(render_metrics());
    log_event("info", "started",
              {{"version", std::to_string(m_manager.version())},
               {"workers", std::to_string(m_workers.size())},
               {"services", std::to_string(cfg.services.size())},
               {"socket", m_socket_path},
               {"pid", std::to_string(getpid())}});
    return true;
}

void evenflowd::shutdown() {
    m_metrics.stop();
    if (m_workers_launched) {
        m_shared.stop.store(true);
        rte_eal_mp_wait_lcore();
        m_workers_launched = false;
        log_event("info", "workers_stopped");
    }
    for (auto& [fd, c] : m_clients) {
        close(fd);
    }
    m_clients.clear();
    if (m_listen_fd >= 0) {
        close(m_listen_fd);
        m_listen_fd = -1;
        unlink(m_socket_path.c_str());
    }
    if (m_epoll_fd >= 0) {
        close(m_epoll_fd);
        m_epoll_fd = -1;
    }
    m_slow_path.reset();
    m_workers.clear();
    if (m_shared.to_control != nullptr) {
        rte_mbuf* m;
        while (rte_ring_dequeue(m_shared.to_control, reinterpret_cast<void**>(&m)) == 0) {
            rte_pktmbuf_free(m);
        }
        rte_ring_free(m_shared.to_control);
        m_shared.to_control = nullptr;
    }
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
        rte_eal_cleanup();
        m_eal_ready = false;
        log_event("info", "stopped");
    }
}

// ---- control socket ----

bool evenflowd::open_socket(const std::string& path) {
    m_socket_path = path;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);

    // A leftover socket file with nobody behind it is ours to replace; one that a live
    // daemon answers on was refused before EAL init (checked again here for races).
    std::string ignored;
    int probe = control::connect_socket(path, &ignored);
    if (probe >= 0) {
        close(probe);
        log_event(
            "error", "start_refused",
            {{"reason", "another evenflowd answers on the control socket"}, {"socket", path}});
        return false;
    }
    unlink(path.c_str());

    m_listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), std::min(path.size() + 1, sizeof addr.sun_path - 1));
    mode_t old_mask = umask(0117);
    int rc = bind(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    umask(old_mask);
    if (rc != 0 || listen(m_listen_fd, 16) != 0) {
        log_event("error", "start_refused",
                  {{"reason", fmt::format("cannot listen on {}: {}", path, std::strerror(errno))}});
        close(m_listen_fd);
        m_listen_fd = -1;
        return false;
    }
    chmod(path.c_str(), 0660);
    m_epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = m_listen_fd;
    epoll_ctl(m_epoll_fd, EPOLL_CTL_ADD, m_listen_fd, &ev);
    return true;
}

void evenflowd::accept_clients() {
    for (;;) {
        int fd = accept4(m_listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        client c;
        c.fd = fd;
        ucred cred{};
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            c.who = control::actor{cred.uid, cred.pid, "socket"};
        }
        c.reader = std::make_unique<control::line_reader>(fd);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(m_epoll_fd, EPOLL_CTL_ADD, fd, &ev);
        m_clients.emplace(fd, std::move(c));
    }
}

void evenflowd::close_client(int fd) {
    epoll_ctl(m_epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    m_clients.erase(fd);
}

void evenflowd::serve(client& c) {
    bool open = c.reader->fill();
    while (auto line = c.reader->next()) {
        json reply;
        json request = json::parse(*line, nullptr, false);
        if (request.is_discarded() || !request.is_object()) {
            reply = control::error_reply("malformed request: expected one JSON object per line");
        } else {
            try {
                reply = dispatch(request, c.who);
            } catch (const std::exception& e) {
                // A request with fields of the wrong type: answer, keep serving.
                reply = control::error_reply(fmt::format("malformed request: {}", e.what()));
            }
        }
        if (!control::write_line(c.fd, reply.dump())) {
            close_client(c.fd);
            return;
        }
    }
    if (c.reader->overflowed()) {
        control::write_line(c.fd, control::error_reply("request too large").dump());
        close_client(c.fd);
        return;
    }
    if (!open) {
        close_client(c.fd);
    }
}

json evenflowd::dispatch(const json& request, const control::actor& who) {
    if (!request.contains("cmd") || !request["cmd"].is_string()) {
        return control::error_reply("malformed request: missing \"cmd\"");
    }
    std::string cmd = request["cmd"];
    if (cmd == "status") {
        return cmd_status();
    }
    if (cmd == "services") {
        return cmd_services();
    }
    if (cmd == "backends") {
        return cmd_backends(request);
    }
    if (cmd == "apply") {
        return cmd_apply(request, who);
    }
    if (cmd == "history") {
        return cmd_history();
    }
    if (cmd == "rollback") {
        return cmd_rollback(request, who);
    }
    if (cmd == "drain") {
        return cmd_admin(request, who, control::admin_state::draining);
    }
    if (cmd == "enable") {
        return cmd_admin(request, who, control::admin_state::enabled);
    }
    if (cmd == "disable") {
        return cmd_admin(request, who, control::admin_state::disabled);
    }
    if (cmd == "stats") {
        return cmd_stats();
    }
    if (cmd == "skew") {
        return cmd_skew();
    }
    return control::error_reply(fmt::format("unknown command {:?}", cmd));
}

json evenflowd::cmd_status() {
    json reply = control::ok_reply();
    reply["version"] = m_manager.version();
    reply["generation"] = m_manager.generation();
    reply["uptime_s"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - m_started).count();
    reply["pid"] = getpid();
    reply["config"] = m_options.config_path;
    const snapshot* snap = m_shared.snap.load();
    reply["services"] = snap->services.size();
    reply["backends"] = snap->backends.size();
    reply["alarms"] = m_skew.alarms().size() + m_no_backend_since.size();
    json workers = json::array();
    for (size_t i = 0; i < m_workers.size(); ++i) {
        const dataplane::worker_counters& c = m_workers[i]->stats().totals;
        uint64_t drops = 0;
        for (const auto& d : c.drops) {
            drops += d.get();
        }
        // flow_table_full is informational (the packet was forwarded).
        drops -= c.drops[size_t(net::drop_reason::flow_table_full)].get();
        workers.push_back({{"worker", i},
                           {"lcore", m_worker_lcores[i]},
                           {"rx_packets", c.rx_packets.get()},
                           {"tx_packets", c.tx_packets.get()},
                           {"rx_bytes", c.rx_bytes.get()},
                           {"tx_bytes", c.tx_bytes.get()},
                           {"dropped", drops},
                           {"flows_active", c.flows_active.get()},
                           {"flow_capacity", c.flow_capacity.get()}});
    }
    reply["workers"] = workers;
    return reply;
}

json evenflowd::cmd_services() {
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
                        {"table_size", svc.table.size()},
                        {"backends", svc.backend_indexes.size()},
                        {"backends_up", up}});
    }
    json reply = control::ok_reply();
    reply["services"] = rows;
    return reply;
}

json evenflowd::cmd_backends(const json& request) {
    const snapshot* snap = m_shared.snap.load();
    std::string only = request.value("service", "");
    if (!only.empty() && snap->cfg.find_service(only) == nullptr) {
        return control::error_reply(fmt::format("no service named {}; see evenctl services", only),
                                    true);
    }
    json rows = json::array();
    for (const snapshot_backend& b : snap->backends) {
        const snapshot_service& svc = snap->services[b.service_index];
        if (!only.empty() && svc.name != only) {
            continue;
        }
        uint64_t active = 0, new_flows = 0, packets_to = 0, packets_from = 0, resets = 0;
        for (const auto& w : m_workers) {
            const dataplane::backend_counters& c = w->stats().backends[b.id];
            active += c.active_flows.get();
            new_flows += c.new_flows.get();
            packets_to += c.packets_to.get();
            packets_from += c.packets_from.get();
            resets += c.resets.get();
        }
        control::backend_view v = m_skew.view(b.id);
        rows.push_back(
            {{"service", svc.name},
             {"backend", b.key()},
             {"id", b.id},
             {"state", to_string(b.state)},
             {"weight", b.weight},
             {"expected_share", b.expected_share},
             {"predicted_share", b.predicted_share},
             {"observed_share", v.observed_share},
             {"active_flows", active},
             {"new_flows", new_flows},
             {"new_flows_per_s", v.new_flows_per_s},
             {"packets_to", packets_to},
             {"packets_from", packets_from},
             {"resets", resets},
             {"drain_deadline_s", b.drain_deadline_ms == 0
                                      ? 0.0
                                      : std::max(0.0, double(int64_t(b.drain_deadline_ms -
                                                                     dataplane::worker::now_ms())) /
                                                          1000.0)},
             {"skew", v.skewed}});
    }
    json reply = control::ok_reply();
    reply["backends"] = rows;
    return reply;
}

json evenflowd::change_reply(control::change_result& result) {
    if (!result.ok) {
        return control::error_reply(result.error, true);
    }
    bool changed = result.snap != nullptr;
    if (changed) {
        publish(std::move(result.snap));
        after_config_change();
    }
    json reply = control::ok_reply();
    reply["version"] = result.version;
    reply["changed"] = changed;
    reply["diff"] = result.diff;
    return reply;
}

std::optional<std::vector<std::string>> evenflowd::refused_shift(const config::config& next,
                                                                 const control::actor& who,
                                                                 const std::string& path) {
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
    log_event("warning", "apply_refused",
              {{"reason", "distribution shift"},
               {"path", path},
               {"uid", std::to_string(who.uid)},
               {"pid", std::to_string(who.pid)},
               {"via", who.via},
               {"shift", join(review.lines, "; ")},
               {"version", std::to_string(m_manager.version())}});
    return review.lines;
}

json evenflowd::cmd_apply(const json& request, const control::actor& who) {
    if (!request.contains("config") || !request["config"].is_string()) {
        return control::error_reply("malformed request: apply needs \"config\" (the file's text)");
    }
    std::string path = request.value("path", "<apply>");
    config::load_result loaded = config::load_string(request["config"].get<std::string>(), path);
    if (!loaded.ok()) {
        ++m_refused["invalid"];
        log_event("warning", "apply_refused",
                  {{"reason", "invalid config"},
                   {"path", path},
                   {"uid", std::to_string(who.uid)},
                   {"pid", std::to_string(who.pid)},
                   {"errors", std::to_string(loaded.errors.size())}});
        json reply = control::error_reply(diagnostics_text(loaded), true);
        reply["version"] = m_manager.version();
        return reply;
    }
    if (!request.value("accept_shift", false)) {
        if (auto shift = refused_shift(*loaded.value, who, path)) {
            json reply = control::error_reply(
                "refused: this config shifts traffic too far (evenctl apply FILE "
                "--accept-shift to apply it anyway):\n  " +
                    join(*shift, "\n  "),
                true);
            reply["version"] = m_manager.version();
            reply["shift"] = *shift;
            return reply;
        }
    }
    control::change_result result =
        m_manager.apply(*loaded.value, who, fmt::format("apply {}", path));
    if (!result.ok) {
        ++m_refused["restart"];
        log_event("warning", "apply_refused",
                  {{"reason", result.error},
                   {"path", path},
                   {"uid", std::to_string(who.uid)},
                   {"pid", std::to_string(who.pid)},
                   {"version", std::to_string(m_manager.version())}});
    } else if (result.snap) {
        ++m_applies;
        m_last_apply = std::chrono::steady_clock::now();
        log_event("info", "apply",
                  {{"version", std::to_string(result.version)},
                   {"path", path},
                   {"uid", std::to_string(who.uid)},
                   {"pid", std::to_string(who.pid)},
                   {"via", who.via},
                   {"changes", std::to_string(result.diff.size())}});
        for (const std::string& line : result.diff) {
            log_event("info", "apply_change",
                      {{"version", std::to_string(result.version)}, {"change", line}});
        }
    }
    json reply = change_reply(result);
    if (reply["ok"] == true) {
        reply["version"] = m_manager.version();
    }
    return reply;
}

json evenflowd::cmd_history() {
    json rows = json::array();
    for (const control::history_entry& e : m_manager.history()) {
        rows.push_back({{"version", e.version},
                        {"at", iso_time(e.at)},
                        {"uid", e.who.uid},
                        {"pid", e.who.pid},
                        {"via", e.who.via},
                        {"origin", e.origin},
                        {"diff", e.diff},
                        {"running", e.version == m_manager.version()}});
    }
    json reply = control::ok_reply();
    reply["history"] = rows;
    return reply;
}

json evenflowd::cmd_rollback(const json& request, const control::actor& who) {
    std::optional<uint64_t> version;
    if (request.contains("version") && !request["version"].is_null()) {
        version = request["version"].get<uint64_t>();
    }
    control::change_result result = m_manager.rollback(version, who);
    if (result.ok) {
        ++m_rollbacks["operator"];
        log_event("info", "rollback",
                  {{"version", std::to_string(result.version)},
                   {"to", m_manager.history().back().origin},
                   {"uid", std::to_string(who.uid)},
                   {"pid", std::to_string(who.pid)}});
    } else {
        log_event("warning", "rollback_refused", {{"reason", result.error}});
    }
    return change_reply(result);
}

json evenflowd::cmd_admin(const json& request, const control::actor& who,
                          control::admin_state state) {
    if (!request.contains("service") || !request.contains("backend")) {
        return control::error_reply("malformed request: needs \"service\" and \"backend\"");
    }
    std::string service = request["service"];
    std::string backend = request["backend"];
    control::change_result result = m_manager.set_admin(service, backend, state, who);
    if (result.ok) {
        log_event("info", "backend_admin",
                  {{"service", service},
                   {"backend", backend},
                   {"state", std::string(control::to_string(state))},
                   {"version", std::to_string(m_manager.version())},
                   {"uid", std::to_string(who.uid)},
                   {"pid", std::to_string(who.pid)}});
    }
    return change_reply(result);
}

json evenflowd::cmd_stats() {
    json totals = json::object();
    json drops = json::object();
    uint64_t sums[32] = {};
    const char* names[] = {
        "rx_packets",           "rx_bytes",     "tx_packets",        "tx_bytes",
        "to_backend",           "to_client",    "new_flows",         "stateless_forward",
        "reverse_stateless",    "resets_sent",  "icmp_echo_replies", "to_control",
        "from_control",         "flows_active", "flow_capacity",     "flow_evictions",
        "flow_insert_failures", "flow_expired"};
    std::vector<uint64_t> drop_sums(size_t(net::drop_reason::count_), 0);
    for (const auto& w : m_workers) {
        const dataplane::worker_counters& c = w->stats().totals;
        const dataplane::counter* fields[] = {
            &c.rx_packets,           &c.rx_bytes,     &c.tx_packets,        &c.tx_bytes,
            &c.to_backend,           &c.to_client,    &c.new_flows,         &c.stateless_forward,
            &c.reverse_stateless,    &c.resets_sent,  &c.icmp_echo_replies, &c.to_control,
            &c.from_control,         &c.flows_active, &c.flow_capacity,     &c.flow_evictions,
            &c.flow_insert_failures, &c.flow_expired};
        for (size_t i = 0; i < std::size(fields); ++i) {
            sums[i] += fields[i]->get();
        }
        for (size_t r = 1; r < drop_sums.size(); ++r) {
            drop_sums[r] += c.drops[r].get();
        }
    }
    for (size_t i = 0; i < std::size(names); ++i) {
        totals[names[i]] = sums[i];
    }
    for (size_t r = 1; r < drop_sums.size(); ++r) {
        if (drop_sums[r] != 0) {
            drops[std::string(net::to_string(net::drop_reason(r)))] = drop_sums[r];
        }
    }
    json reply = control::ok_reply();
    reply["totals"] = totals;
    reply["drops"] = drops;
    reply["neighbors_waiting_dropped"] = m_slow_path->resolver().dropped_waiting();
    reply["arp_replies_sent"] = m_slow_path->arp_replies_sent();
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

json evenflowd::cmd_skew() {
    json rows = json::array();
    for (const auto& [service, since] : m_no_backend_since) {
        rows.push_back({{"service", service},
                        {"backend", "*"},
                        {"kind", "no_backend"},
                        {"basis", "health"},
                        {"observed_share", 0.0},
                        {"expected_share", 1.0},
                        {"flows", 0},
                        {"since", iso_time(since)}});
    }
    for (const auto& [id, a] : m_skew.alarms()) {
        rows.push_back({{"service", a.service},
                        {"backend", a.backend},
                        {"kind", control::to_string(a.kind)},
                        {"basis", control::to_string(a.basis)},
                        {"observed_share", a.observed_share},
                        {"expected_share", a.expected_share},
                        {"flows", a.flows},
                        {"since", iso_time(a.since)}});
    }
    json reply = control::ok_reply();
    reply["alarms"] = rows;
    return reply;
}

// ---- configuration ----

void evenflowd::stamp_runtime_state(snapshot& snap) {
    // A draining backend's clock starts when it is first seen draining and stops
    // when it leaves that state; the deadline is in the workers' clock.
    uint64_t now = dataplane::worker::now_ms();
    const config::skew_config& guard = m_manager.running().skew;
    bool in_probation =
        m_last_apply && std::chrono::steady_clock::now() - *m_last_apply <= guard.probation;
    for (snapshot_service& svc : snap.services) {
        uint64_t total = 0, down = 0;
        for (uint32_t i : svc.backend_indexes) {
            total += snap.backends[i].weight;
            down += snap.backends[i].state == backend_state::down ? snap.backends[i].weight : 0;
        }
        // In probation a health failure may be the new config's fault (a wrong health
        // port): new flows avoid down backends, established ones are not reset.
        svc.keep_pinned_flows = in_probation && down > 0;
        if (svc.keep_pinned_flows) {
            log_event("warning", "probation_keeps_flows",
                      {{"service", svc.name},
                       {"down_weight", std::to_string(down)},
                       {"total_weight", std::to_string(total)},
                       {"action", "established flows of down backends kept, not reset"},
                       {"version", std::to_string(m_manager.version())}});
        }
    }
    std::map<uint32_t, uint64_t> still_draining;
    for (snapshot_backend& b : snap.backends) {
        if (b.state != backend_state::draining) {
            continue;
        }
        auto it = m_draining_since.find(b.id);
        uint64_t since = it != m_draining_since.end() ? it->second : now;
        still_draining[b.id] = since;
        const config::pool_config* pool = snap.cfg.find_pool(snap.services[b.service_index].pool);
        uint64_t timeout = pool != nullptr ? uint64_t(pool->drain_timeout.count()) : 0;
        // 0 = no deadline: a zero drain_timeout means "drain until the flows end".
        b.drain_deadline_ms = timeout == 0 ? 0 : std::max<uint64_t>(since + timeout, 1);
    }
    m_draining_since = std::move(still_draining);
}

void evenflowd::publish(std::unique_ptr<snapshot> snap) {
    stamp_runtime_state(*snap);
    m_shared.snap.publish(std::move(snap), *m_qsbr);
    m_health.sync(*m_shared.snap.load(), std::chrono::steady_clock::now());
    check_no_backend_alarms();
    m_metrics.publish(render_metrics()); // scrapes see a change at once, not a second later
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

void evenflowd::check_no_backend_alarms() {
    const snapshot* snap = m_shared.snap.load();
    std::map<std::string, std::chrono::system_clock::time_point> now_alarmed;
    std::vector<std::string> raised;
    for (const snapshot_service& svc : snap->services) {
        if (svc.has_backend_up) {
            continue;
        }
        auto it = m_no_backend_since.find(svc.name);
        auto since = it != m_no_backend_since.end() ? it->second : std::chrono::system_clock::now();
        if (it == m_no_backend_since.end()) {
            log_event("warning", "no_backend_alarm",
                      {{"service", svc.name}, {"version", std::to_string(m_manager.version())}});
            raised.push_back(svc.name);
        }
        now_alarmed[svc.name] = since;
    }
    for (const auto& [name, since] : m_no_backend_since) {
        if (!now_alarmed.count(name)) {
            log_event("info", "no_backend_clear",
                      {{"service", name}, {"version", std::to_string(m_manager.version())}});
        }
    }
    m_no_backend_since = std::move(now_alarmed);
    if (!raised.empty()) {
        maybe_roll_back(fmt::format("no backend up for service {}", raised.front()));
    }
}

void evenflowd::after_config_change() {
    m_skew.reconfigure(m_manager.running().skew);
    m_slow_path->want_neighbors(m_manager.running());
    m_slow_path->announce_vips(*m_shared.snap.load());
}

void evenflowd::reload_from_file() {
    control::actor who{uint32_t(getuid()), int32_t(getpid()), "sighup"};
    config::load_result loaded = config::load_file(m_options.config_path);
    if (!loaded.ok()) {
        ++m_refused["invalid"];
        log_event("warning", "apply_refused",
                  {{"reason", "invalid config"},
                   {"via", "sighup"},
                   {"path", m_options.config_path},
                   {"errors", diagnostics_text(loaded)}});
        return;
    }
    // SIGHUP has no way to say "I accept the shift": a large one is refused and
    // logged; `evenctl apply FILE --accept-shift` is the deliberate path.
    if (refused_shift(*loaded.value, who, m_options.config_path)) {
        return;
    }
    control::change_result result =
        m_manager.apply(*loaded.value, who, fmt::format("reload {}", m_options.config_path));
    if (!result.ok) {
        ++m_refused["restart"];
        log_event("warning", "apply_refused", {{"reason", result.error}, {"via", "sighup"}});
        return;
    }
    if (result.snap) {
        ++m_applies;
        m_last_apply = std::chrono::steady_clock::now();
        log_event("info", "apply",
                  {{"version", std::to_string(result.version)},
                   {"via", "sighup"},
                   {"changes", std::to_string(result.diff.size())}});
    }
    change_reply(result);
}

// ---- figures ----

std::vector<control::backend_sample> evenflowd::sample_backends() const {
    std::vector<control::backend_sample> samples;
    const snapshot* snap = m_shared.snap.load();
    for (const snapshot_backend& b : snap->backends) {
        control::backend_sample s;
        s.id = b.id;
        s.service = snap->services[b.service_index].name;
        s.backend = b.key();
        s.expected_share = b.expected_share;
        for (const auto& w : m_workers) {
            s.new_flows += w->stats().backends[b.id].new_flows.get();
            s.active_flows += w->stats().backends[b.id].active_flows.get();
        }
        samples.push_back(std::move(s));
    }
    return samples;
}

void evenflowd::maybe_roll_back(const std::string& why) {
    const config::skew_config& guard = m_manager.running().skew;
    auto now = std::chrono::steady_clock::now();
    if (guard.action != config::skew_action::rollback || !m_last_apply ||
        now - *m_last_apply > guard.probation || m_manager.history().size() < 2) {
        return;
    }
    uint64_t bad = m_manager.version();
    // Verdicts reached under the bad config (a wrong health port, say) go with it,
    // before the rollback builds its snapshot.
    m_manager.forget_health();
    m_health.forget_verdicts();
    control::change_result r = m_manager.rollback(
        std::nullopt, control::actor{uint32_t(getuid()), int32_t(getpid()), "skew-guard"});
    if (!r.ok) {
        log_event("warning", "auto_rollback_failed", {{"reason", r.error}, {"why", why}});
        return;
    }
    ++m_rollbacks["automatic"];
    m_skew.reset_windows();
    double since_apply = std::chrono::duration<double>(now - *m_last_apply).count();
    m_last_apply.reset(); // probation ends with the rollback
    log_event("warning", "auto_rollback",
              {{"from", std::to_string(bad)},
               {"version", std::to_string(r.version)},
               {"to", m_manager.history().back().origin},
               {"why", why},
               {"since_apply_s", fmt::format("{:.1f}", since_apply)}});
    change_reply(r);
}

void evenflowd::stats_tick() {
    auto events = m_skew.tick(std::chrono::steady_clock::now(), std::chrono::system_clock::now(),
                              sample_backends());
    for (const auto& e : events) {
        log_event(e.raised ? "warning" : "info", e.raised ? "skew_alarm" : "skew_clear",
                  {{"service", e.alarm.service},
                   {"backend", e.alarm.backend},
                   {"kind", std::string(control::to_string(e.alarm.kind))},
                   {"basis", std::string(control::to_string(e.alarm.basis))},
                   {"observed", fmt::format("{:.3f}", e.alarm.observed_share)},
                   {"expected", fmt::format("{:.3f}", e.alarm.expected_share)},
                   {"flows", std::to_string(e.alarm.flows)},
                   {"version", std::to_string(m_manager.version())}});
    }
    m_metrics.publish(render_metrics());
    for (const auto& e : events) {
        if (e.raised) {
            maybe_roll_back(fmt::format("skew alarm: {} backend {} {} ({} observed, {} expected)",
                                        e.alarm.service, e.alarm.backend,
                                        control::to_string(e.alarm.kind),
                                        fmt::format("{:.1f}%", e.alarm.observed_share * 100),
                                        fmt::format("{:.1f}%", e.alarm.expected_share * 100)));
            break;
        }
    }
}

void evenflowd::loop() {
    m_next_stats_tick = std::chrono::steady_clock::now() + 1s;
    epoll_event events[16];
    while (!g_stop.load()) {
        // Short waits: the slow path (ARP, held packets) is polled between them.
        int n = epoll_wait(m_epoll_fd, events, 16, 2);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == m_listen_fd) {
                accept_clients();
            } else if (auto it = m_clients.find(fd); it != m_clients.end()) {
                serve(it->second);
            }
        }
        m_slow_path->drain();
        auto now = std::chrono::steady_clock::now();
        if (now >= m_next_neighbor_tick) {
            m_slow_path->tick(now);
            m_next_neighbor_tick = now + 100ms;
        }
        health_tick();
        if (now >= m_next_stats_tick) {
            stats_tick();
            m_next_stats_tick = now + 1s;
        }
        if (g_reload.exchange(false)) {
            reload_from_file();
        }
    }
    log_event("info", "stopping", {{"version", std::to_string(m_manager.version())}});
}

} // namespace evenflow::daemon
