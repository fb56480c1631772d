#include "bird.hpp"

#include "control/log.hpp"
#include "control/state_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <poll.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace evenflow::daemon {

using control::log_event;
using namespace std::chrono_literals;

namespace {

int64_t monotonic_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

} // namespace

bgp_speaker::~bgp_speaker() {
    stop();
}

bool bgp_speaker::prepare(const config::bgp_config& bgp, const std::vector<net::ip_addr>& vips,
                          const std::string& dir, std::string* error) {
    m_bgp = bgp;
    m_conf = dir + "/bird.conf";
    m_ctl = dir + "/bird.ctl";
    m_log = dir + "/bird.log";
    m_pidfile = dir + "/bird.pid";
    if (access(bgp.speaker.c_str(), X_OK) != 0) {
        *error = fmt::format("[bgp] speaker {} cannot be run: {} (Debian package bird2)",
                             bgp.speaker, std::strerror(errno));
        return false;
    }
    if (!make_directory(dir, error)) {
        return false;
    }
    std::vector<control::vip_announcement> withdrawn;
    for (const net::ip_addr& vip : vips) {
        withdrawn.push_back({vip, false, "starting"});
    }
    m_written = control::render_bird_config(bgp, withdrawn, m_log);
    for (const net::ip_addr& vip : vips) {
        m_written_state.emplace_back(vip, false);
    }
    if (!control::write_file_atomic(m_conf, m_written, error)) {
        return false;
    }
    m_vips = vips;
    std::string check = fmt::format("{} -p -c {} 2>&1", bgp.speaker, m_conf);
    if (FILE* p = popen(check.c_str(), "r")) {
        char buf[512];
        std::string out;
        while (fgets(buf, sizeof buf, p) != nullptr) {
            out += buf;
        }
        if (pclose(p) != 0) {
            *error = fmt::format("BIRD refuses the configuration written in {}: {}", m_conf, out);
            return false;
        }
    }
    void* mem = mmap(nullptr, sizeof(shared_page), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        *error = fmt::format("mmap: {}", std::strerror(errno));
        return false;
    }
    m_page = new (mem) shared_page;
    m_page->detection_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(bgp.detection).count();
    return start_watchdog(error);
}

bool bgp_speaker::make_directory(const std::string& dir, std::string* error) {
    if (mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
        *error = fmt::format("cannot create BIRD's directory {}: {}", dir, std::strerror(errno));
        return false;
    }
    struct stat st {};
    if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        *error = fmt::format("{} is not a directory (BIRD's files go there)", dir);
        return false;
    }
    // BIRD drops to its own user only when started by root; not root, it runs as us.
    m_drop_privileges = false;
    if (geteuid() != 0) {
        return true;
    }
    const passwd* user = getpwnam(bird_user);
    if (user == nullptr) {
        log_event("warning", "bgp_speaker_as_root",
                  {{"reason", fmt::format("no user {} (Debian bird2 creates it)", bird_user)}});
        return true;
    }
    // Its log, rotated, and its pid file are written after the drop: the directory is
    // the user's; setgid, so what evenflowd writes there (its configuration) is the
    // group's to read.
    if (chown(dir.c_str(), user->pw_uid, user->pw_gid) != 0 || chmod(dir.c_str(), 02750) != 0) {
        *error = fmt::format("cannot give {} to user {}: {}", dir, bird_user, std::strerror(errno));
        return false;
    }
    for (const std::string& left : {m_log, m_log + ".old", m_pidfile}) {
        (void)chown(left.c_str(), user->pw_uid, user->pw_gid); // a run as root left them
    }
    m_drop_privileges = true;
    return true;
}

bool bgp_speaker::start_watchdog(std::string* error) {
    pid_t parent = getpid();
    m_watchdog = fork();
    if (m_watchdog < 0) {
        *error = fmt::format("fork: {}", std::strerror(errno));
        return false;
    }
    if (m_watchdog == 0) {
        // The watchdog: a separate process, so that it runs while the daemon is
        // stopped. It only reads the heartbeat and kills BIRD. It also outlives the
        // daemon by one poll, to kill BIRD then: BIRD's own PR_SET_PDEATHSIG goes when
        // it drops to its user (the kernel clears it on a change of credentials).
        prctl(PR_SET_NAME, "evenflow-wdog");
        // Nothing of the daemon's (DPDK's files, the control socket) stays open in it.
        close_range(3, ~0U, 0);
        for (;;) {
            if (getppid() != parent) {
                if (int32_t bird = m_page->bird_pid.exchange(0); bird > 0) {
                    kill(bird, SIGKILL);
                }
                _exit(0);
            }
            int64_t hb = m_page->heartbeat_ms.load();
            int32_t bird = m_page->bird_pid.load();
            if (hb > 0 && bird > 0 && monotonic_ms() - hb > m_page->detection_ms.load()) {
                if (m_page->bird_pid.compare_exchange_strong(bird, 0)) {
                    kill(bird, SIGKILL);
                    m_page->kills.fetch_add(1);
                }
            }
            usleep(20 * 1000);
        }
    }
    return true;
}

bool bgp_speaker::start_bird(std::string* error) {
    unlink(m_ctl.c_str());
    std::vector<std::string> args{m_bgp.speaker, "-f", "-c", m_conf, "-s", m_ctl, "-P", m_pidfile};
    if (m_drop_privileges) {
        args.insert(args.end(), {"-u", bird_user, "-g", bird_user});
    }
    std::vector<char*> argv;
    for (std::string& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    pid_t pid = vfork();
    if (pid < 0) {
        *error = fmt::format("vfork: {}", std::strerror(errno));
        return false;
    }
    if (pid == 0) {
        // Dies with the thread that started it (the control thread, i.e. the daemon),
        // and at once if the daemon died before the line above ran.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(0);
        }
        // BIRD gets none of the daemon's descriptors (DPDK's hugepage and device files,
        // the control socket, the metrics listener): only stdin, stdout and stderr.
        close_range(3, ~0U, 0);
        execv(argv[0], argv.data());
        _exit(127);
    }
    m_bird_pid = pid;
    m_page->bird_pid = pid;
    m_applied.clear();
    ++m_starts;
    log_event("info", "bgp_speaker_started",
              {{"pid", std::to_string(pid)}, {"config", m_conf}, {"socket", m_ctl}});
    return true;
}

void bgp_speaker::reap() {
    if (m_watchdog > 0 && waitpid(m_watchdog, nullptr, WNOHANG) == m_watchdog) {
        // Without it a frozen daemon would stay announced: a new one at once (an error
        // only if that fails).
        log_event("warning", "bgp_watchdog_died", {{"pid", std::to_string(m_watchdog)}});
        m_watchdog = -1;
        if (std::string error; !start_watchdog(&error)) {
            log_event("error", "bgp_watchdog_start_failed", {{"reason", error}});
        }
    }
    if (m_bird_pid <= 0) {
        return;
    }
    int status = 0;
    pid_t r = waitpid(m_bird_pid, &status, WNOHANG);
    if (r == m_bird_pid) {
        bool by_watchdog = m_page->bird_pid.load() == 0;
        log_event("warning", "bgp_speaker_exited",
                  {{"pid", std::to_string(m_bird_pid)},
                   {"status", WIFSIGNALED(status) ? fmt::format("signal {}", WTERMSIG(status))
                                                  : fmt::format("exit {}", WEXITSTATUS(status))},
                   {"by", by_watchdog ? "watchdog (daemon not live: withdrawn)" : "itself"}});
        m_bird_pid = -1;
        m_page->bird_pid = 0;
        m_applied.clear();
    }
}

bool bgp_speaker::birdc(const std::string& command, std::string* reply) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", m_ctl.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(fd);
        return false;
    }
    // BIRD's protocol: lines "NNNN-text" (more follow) and "NNNN text" (the last);
    // the greeting is 0001, answers 0xxx are fine, 8xxx/9xxx errors.
    auto read_answer = [&](std::string* last) {
        std::string buf;
        int64_t until = monotonic_ms() + 300;
        for (;;) {
            size_t nl;
            while ((nl = buf.find('\n')) != std::string::npos) {
                std::string line = buf.substr(0, nl);
                buf.erase(0, nl + 1);
                if (line.size() >= 5 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                    line[4] == ' ') {
                    *last = line;
                    return true;
                }
            }
            int64_t left = until - monotonic_ms();
            pollfd p{fd, POLLIN, 0};
            if (left <= 0 || poll(&p, 1, int(left)) <= 0) {
                return false;
            }
            char chunk[1024];
            ssize_t n = read(fd, chunk, sizeof chunk);
            if (n <= 0) {
                return false;
            }
            buf.append(chunk, size_t(n));
        }
    };
    std::string line;
    bool ok = read_answer(&line);
    std::string cmd = command + "\n";
    ok = ok && write(fd, cmd.data(), cmd.size()) == ssize_t(cmd.size()) && read_answer(&line);
    close(fd);
    *reply = line;
    return ok && line[0] == '0';
}

void bgp_speaker::tick(const std::vector<control::vip_announcement>& wanted, bool live,
                       std::chrono::steady_clock::time_point progress,
                       std::chrono::steady_clock::time_point now) {
    if (m_page == nullptr) {
        return;
    }
    m_wanted = wanted;
    m_live = live;
    // steady_clock is CLOCK_MONOTONIC: the watchdog compares in the same clock.
    m_page->heartbeat_ms = std::max<int64_t>(
        1,
        std::chrono::duration_cast<std::chrono::milliseconds>(progress.time_since_epoch()).count());
    // The file is rendered again only when what it says changed (a VIP, or whether it
    // is announced), not every iteration.
    std::vector<std::pair<net::ip_addr, bool>> said;
    for (const auto& w : wanted) {
        said.emplace_back(w.vip, w.announce);
    }
    if (said != m_written_state && now >= m_next_configure) {
        write_config(wanted, std::move(said), now);
    }
    reap();
    if (m_bird_pid <= 0 && live && now >= m_next_start) {
        std::string error;
        if (!start_bird(&error)) {
            log_event("warning", "bgp_speaker_start_failed", {{"reason", error}});
        }
        m_next_start = now + 1s;
        m_socket_ready = now + 200ms; // its socket comes up first
        m_next_reassert = m_socket_ready;
        return;
    }
    if (m_bird_pid <= 0 || now < m_socket_ready) {
        return;
    }
    bool reassert = now >= m_next_reassert;
    for (const auto& w : wanted) {
        auto it = m_applied.find(w.vip);
        auto failed = m_failed.find(w.vip);
        if (!reassert &&
            ((it != m_applied.end() && it->second == w.announce) ||
             (it == m_applied.end() && failed != m_failed.end() && failed->second == w.announce))) {
            continue; // in line, or this very command failed: again at the next reassert
        }
        std::string reply;
        std::string proto = control::bird_protocol(w.vip);
        // "already enabled/disabled" is an 0xxx answer too.
        if (birdc(fmt::format("{} {}", w.announce ? "enable" : "disable", proto), &reply)) {
            if (it == m_applied.end() || it->second != w.announce) {
                log_event("info", w.announce ? "vip_announced" : "vip_withdrawn",
                          {{"vip", w.vip.to_string()}, {"why", w.why}});
            }
            m_applied[w.vip] = w.announce;
            m_failed.erase(w.vip);
        } else {
            m_applied.erase(w.vip);
            if (m_failed.insert_or_assign(w.vip, w.announce).second) {
                log_event("warning", "bgp_command_failed",
                          {{"vip", w.vip.to_string()}, {"reply", reply}});
            }
        }
    }
    if (reassert) {
        m_next_reassert = now + 1s;
    }
}

void bgp_speaker::write_config(const std::vector<control::vip_announcement>& wanted,
                               std::vector<std::pair<net::ip_addr, bool>> said,
                               std::chrono::steady_clock::time_point now) {
    std::vector<net::ip_addr> vips;
    for (const auto& [vip, announced] : said) {
        vips.push_back(vip);
    }
    const std::string text = control::render_bird_config(m_bgp, wanted, m_log);
    std::string error, reply;
    if (!control::write_file_atomic(m_conf, text, &error)) {
        log_event("warning", "bgp_reconfigure_failed", {{"reason", error}});
        m_next_configure = now + 1s;
        return;
    }
    if (vips != m_vips && m_bird_pid > 0 && !birdc("configure", &reply)) {
        // BIRD goes on with the configuration it has; the file says so again, so that
        // a restart of BIRD does not fail on what it refused.
        log_event("warning", "bgp_reconfigure_failed", {{"reply", reply}});
        control::write_file_atomic(m_conf, m_written, &error);
        m_next_configure = now + 1s;
        return;
    }
    m_written = text;
    m_written_state = std::move(said);
    if (vips != m_vips) {
        for (auto it = m_applied.begin(); it != m_applied.end();) {
            it = std::find(vips.begin(), vips.end(), it->first) == vips.end() ? m_applied.erase(it)
                                                                              : std::next(it);
        }
        m_vips = vips;
    }
}

void bgp_speaker::withdraw_all() {
    if (m_bird_pid <= 0) {
        return;
    }
    for (auto& w : m_wanted) {
        w.announce = false;
        w.why = "stopping";
    }
    auto now = std::chrono::steady_clock::now();
    tick(m_wanted, m_live, now, now);
}

void bgp_speaker::stop() {
    if (m_bird_pid > 0) {
        kill(m_bird_pid, SIGTERM);
        for (int i = 0; i < 50 && waitpid(m_bird_pid, nullptr, WNOHANG) == 0; ++i) {
            usleep(20 * 1000);
        }
        kill(m_bird_pid, SIGKILL);
        waitpid(m_bird_pid, nullptr, 0);
        m_bird_pid = -1;
    }
    if (m_watchdog > 0) {
        kill(m_watchdog, SIGKILL);
        waitpid(m_watchdog, nullptr, 0);
        m_watchdog = -1;
    }
    if (m_page != nullptr) {
        m_page->~shared_page();
        munmap(m_page, sizeof(shared_page));
        m_page = nullptr;
    }
}

api::json bgp_speaker::status() const {
    api::json vips = api::json::array();
    for (const auto& w : m_wanted) {
        auto it = m_applied.find(w.vip);
        vips.push_back({{"vip", w.vip.to_string()},
                        {"wanted", w.announce},
                        {"announced", it != m_applied.end() && it->second},
                        {"why", w.why}});
    }
    return {{"speaker", m_bgp.speaker},
            {"pid", m_bird_pid},
            {"starts", m_starts},
            {"watchdog_kills", m_page != nullptr ? m_page->kills.load() : 0},
            {"watchdog_pid", m_watchdog},
            {"live", m_live},
            {"vips", vips}};
}

} // namespace evenflow::daemon
