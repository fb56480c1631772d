// The control socket's transport: a Unix stream socket, JSON lines in and out,
// peer credentials, and the limits that keep one client from holding up the
// control loop. It knows nothing of commands: every request goes to the handler.
#pragma once

#include "control/manager.hpp"
#include "control/protocol.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace evenflow::daemon {

class control_server {
public:
    using handler = std::function<control::json(const control::json&, const control::actor&)>;

    explicit control_server(handler h) : m_handler(std::move(h)) {}
    ~control_server();
    control_server(const control_server&) = delete;
    control_server& operator=(const control_server&) = delete;

    // Binds PATH (mode 0660; a stale socket file is replaced, a live daemon's is
    // not). False with *error phrased for the log.
    bool open(const std::string& path, std::string* error);
    void close();
    // Waits up to `timeout_ms` for socket activity and serves it.
    void poll(int timeout_ms);
    const std::string& path() const { return m_path; }

private:
    struct client {
        int fd = -1;
        control::actor who;
        std::unique_ptr<control::line_reader> reader;
    };
    void accept_clients();
    void serve(client& c);
    void close_client(int fd);

    handler m_handler;
    std::string m_path;
    int m_listen_fd = -1;
    int m_epoll_fd = -1;
    std::map<int, client> m_clients;
};

} // namespace evenflow::daemon
