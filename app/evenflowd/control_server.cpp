#include "control_server.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <grp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace evenflow::daemon {

using api::json;

namespace {

constexpr auto accept_pause = std::chrono::milliseconds(100);

} // namespace

control_server::~control_server() {
    close();
}

bool control_server::open(const std::string& path, const std::string& group, std::string* error) {
    m_path = path;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);

    // A leftover socket file with nobody behind it is ours to replace; one that a live
    // daemon answers on was refused before EAL init (checked again here for races).
    std::string ignored;
    int probe = api::connect_socket(path, &ignored);
    if (probe >= 0) {
        ::close(probe);
        *error = "another evenflowd answers on the control socket";
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
    if (rc != 0 || listen(m_listen_fd, SOMAXCONN) != 0) { // a connect flood fills no small backlog
        *error = fmt::format("cannot listen on {}: {}", path, std::strerror(errno));
        ::close(m_listen_fd);
        m_listen_fd = -1;
        return false;
    }
    chmod(path.c_str(), 0660);
    if (!group.empty()) {
        const ::group* g = getgrnam(group.c_str());
        if (g == nullptr || chown(path.c_str(), uid_t(-1), g->gr_gid) != 0) {
            *error = fmt::format("cannot give {} to group {}: {}", path, group,
                                 g == nullptr ? "no such group" : std::strerror(errno));
            ::close(m_listen_fd);
            m_listen_fd = -1;
            unlink(path.c_str());
            return false;
        }
    }
    m_epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = m_listen_fd;
    epoll_ctl(m_epoll_fd, EPOLL_CTL_ADD, m_listen_fd, &ev);
    return true;
}

void control_server::close() {
    for (auto& [fd, c] : m_clients) {
        ::close(fd);
    }
    m_clients.clear();
    m_pending.clear();
    if (m_listen_fd >= 0) {
        ::close(m_listen_fd);
        m_listen_fd = -1;
        unlink(m_path.c_str());
    }
    if (m_epoll_fd >= 0) {
        ::close(m_epoll_fd);
        m_epoll_fd = -1;
    }
}

control_server::figures control_server::stats() const {
    figures f = m_figures;
    f.clients = m_clients.size();
    return f;
}

void control_server::poll(int timeout_ms) {
    auto now = clock::now();
    if (m_accept_paused_until && now >= *m_accept_paused_until) {
        m_accept_paused_until.reset();
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = m_listen_fd;
        epoll_ctl(m_epoll_fd, EPOLL_CTL_MOD, m_listen_fd, &ev);
    }
    epoll_event events[256];
    int n = epoll_wait(m_epoll_fd, events, 256, timeout_ms);
    for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == m_listen_fd) {
            accept_clients();
            continue;
        }
        auto it = m_clients.find(fd);
        if (it == m_clients.end()) {
            continue;
        }
        client& c = it->second;
        if (events[i].events & EPOLLOUT) {
            flush(c);
            if (!m_clients.count(fd)) {
                continue;
            }
        }
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            serve(c);
        }
    }
    if (now >= m_next_idle_check) {
        expire_idle();
        m_next_idle_check = now + std::chrono::seconds(1);
    }
}

void control_server::accept_clients() {
    // At most a few dozen a call: the clients already connected (whose requests and
    // hang-ups are in this same poll) come first under a flood of connections.
    for (int accepted = 0; accepted < 64; ++accepted) {
        int fd = accept4(m_listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                // Out of descriptors: the pending connection stays in the backlog; stop
                // polling the listener for a moment rather than spin on it.
                epoll_event ev{};
                ev.events = 0;
                ev.data.fd = m_listen_fd;
                epoll_ctl(m_epoll_fd, EPOLL_CTL_MOD, m_listen_fd, &ev);
                m_accept_paused_until = clock::now() + accept_pause;
                ++m_figures.accept_paused;
            }
            return;
        }
        if (m_clients.size() >= m_limits.max_clients && !evict_one()) {
            ++m_figures.refused_full;
            std::string line =
                api::error_reply(
                    fmt::format("too many control connections (limit {})", m_limits.max_clients))
                    .dump() +
                "\n";
            (void)!send(fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            ::close(fd);
            continue;
        }
        ++m_figures.accepted;
        client c;
        c.fd = fd;
        ucred cred{};
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            c.who = control::actor{cred.uid, cred.pid, "socket"};
        }
        c.reader = std::make_unique<api::line_reader>(fd);
        c.last_progress = clock::now();
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(m_epoll_fd, EPOLL_CTL_ADD, fd, &ev);
        m_clients.emplace(fd, std::move(c));
    }
}

void control_server::close_client(int fd) {
    epoll_ctl(m_epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    for (auto it = m_pending.begin(); it != m_pending.end();) {
        it = it->second == fd ? m_pending.erase(it) : std::next(it);
    }
    m_clients.erase(fd);
}

void control_server::update_interest(client& c) {
    // Read only when no reply is owed or waiting for the kernel: one request at a time.
    bool want_read = !c.pending && c.out.empty();
    uint32_t events =
        (want_read ? uint32_t(EPOLLIN) : 0u) | (c.out.empty() ? 0u : uint32_t(EPOLLOUT));
    c.reading = want_read;
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = c.fd;
    epoll_ctl(m_epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
}

void control_server::flush(client& c) {
    while (!c.out.empty()) {
        ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            c.out.erase(0, size_t(n));
            c.last_progress = clock::now();
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        close_client(c.fd);
        return;
    }
    bool was_reading = c.reading;
    update_interest(c);
    if (!was_reading && c.reading) {
        serve(c); // requests already buffered are served now
    }
}

void control_server::serve(client& c) {
    int fd = c.fd;
    bool open = true;
    if (c.reading) {
        open = c.reader->fill();
        c.last_progress = clock::now();
    }
    for (size_t served = 0; served < m_limits.requests_per_poll && !c.pending && c.out.empty();
         ++served) {
        auto line = c.reader->next();
        if (!line) {
            break;
        }
        std::optional<json> reply;
        json request = json::parse(*line, nullptr, false);
        if (request.is_discarded() || !request.is_object()) {
            reply = api::error_reply("malformed request: expected one JSON object per line");
        } else {
            ticket t = m_next_ticket++;
            try {
                reply = m_handler(request, c.who, t);
            } catch (const std::exception& e) {
                // A request with fields of the wrong type: answer, keep serving.
                reply = api::error_reply(fmt::format("malformed request: {}", e.what()));
            }
            if (!reply) {
                c.pending = true;
                m_pending[t] = fd;
            }
        }
        if (reply) {
            c.out += reply->dump();
            c.out += '\n';
            flush(c);
            if (!m_clients.count(fd)) {
                return;
            }
        }
    }
    if (c.reader->overflowed()) {
        c.out += api::error_reply("request too large").dump() + "\n";
        flush(c);
        if (m_clients.count(fd)) {
            close_client(fd);
        }
        return;
    }
    if (!open && !c.pending && c.out.empty()) {
        close_client(fd);
        return;
    }
    update_interest(c);
}

void control_server::reply(ticket t, const json& answer) {
    auto it = m_pending.find(t);
    if (it == m_pending.end()) {
        return; // the client left
    }
    int fd = it->second;
    m_pending.erase(it);
    auto c = m_clients.find(fd);
    if (c == m_clients.end()) {
        return;
    }
    c->second.pending = false;
    c->second.out += answer.dump();
    c->second.out += '\n';
    flush(c->second);
}

bool control_server::evict_one() {
    // A client that connected a moment ago has not had the time to send its request:
    // never evicted, or a connection flood would evict every newcomer.
    const auto young = clock::now() - std::chrono::milliseconds(100);
    int oldest = -1;
    clock::time_point when = clock::time_point::max();
    for (const auto& [fd, c] : m_clients) {
        if (!c.pending && c.out.empty() && c.last_progress < when && c.last_progress < young) {
            oldest = fd;
            when = c.last_progress;
        }
    }
    if (oldest < 0) {
        return false;
    }
    ++m_figures.evicted;
    close_client(oldest);
    return true;
}

void control_server::expire_idle() {
    auto now = clock::now();
    std::vector<int> idle;
    for (const auto& [fd, c] : m_clients) {
        if (!c.pending && now - c.last_progress > m_limits.idle_timeout) {
            idle.push_back(fd);
        }
    }
    for (int fd : idle) {
        ++m_figures.closed_idle;
        close_client(fd);
    }
}

} // namespace evenflow::daemon
