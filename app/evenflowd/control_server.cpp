#include "control_server.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace evenflow::daemon {

using control::json;

control_server::~control_server() {
    close();
}

bool control_server::open(const std::string& path, std::string* error) {
    m_path = path;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);

    // A leftover socket file with nobody behind it is ours to replace; one that a live
    // daemon answers on was refused before EAL init (checked again here for races).
    std::string ignored;
    int probe = control::connect_socket(path, &ignored);
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
    if (rc != 0 || listen(m_listen_fd, 16) != 0) {
        *error = fmt::format("cannot listen on {}: {}", path, std::strerror(errno));
        ::close(m_listen_fd);
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

void control_server::close() {
    for (auto& [fd, c] : m_clients) {
        ::close(fd);
    }
    m_clients.clear();
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

void control_server::poll(int timeout_ms) {
    epoll_event events[16];
    int n = epoll_wait(m_epoll_fd, events, 16, timeout_ms);
    for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == m_listen_fd) {
            accept_clients();
        } else if (auto it = m_clients.find(fd); it != m_clients.end()) {
            serve(it->second);
        }
    }
}

void control_server::accept_clients() {
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

void control_server::close_client(int fd) {
    epoll_ctl(m_epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    m_clients.erase(fd);
}

void control_server::serve(client& c) {
    bool open = c.reader->fill();
    while (auto line = c.reader->next()) {
        json reply;
        json request = json::parse(*line, nullptr, false);
        if (request.is_discarded() || !request.is_object()) {
            reply = control::error_reply("malformed request: expected one JSON object per line");
        } else {
            try {
                reply = m_handler(request, c.who);
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

} // namespace evenflow::daemon
