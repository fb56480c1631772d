// The control socket's transport: a Unix stream socket, JSON lines in and out,
// peer credentials, and the limits that keep any client (slow, hostile or just
// many) from holding up the control loop. It knows nothing of commands: each
// request goes to the handler, which answers at once or later (reply()).
//
// Limits: at most `max_clients` connections (at the cap, the longest idle one makes
// room for a new one; when none is idle, the new one is told so and closed); one
// request at a time per client (the next is read once the reply has been handed to
// the kernel, so a client that never reads stops being served instead of filling
// our memory); replies are written without blocking; a client with no request in
// progress and nothing read for `idle_timeout`, or whose reply has made no progress
// for as long, is closed; at the file-descriptor limit, accepting pauses briefly.
#pragma once

#include "api/protocol.hpp"
#include "control/manager.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace evenflow::daemon {

class control_server {
public:
    using clock = std::chrono::steady_clock;
    // Identifies a request answered later (the handler returned nullopt).
    using ticket = uint64_t;
    using handler = std::function<std::optional<api::json>(const api::json& request,
                                                           const control::actor& who, ticket t)>;

    struct limits {
        size_t max_clients = 512;
        std::chrono::milliseconds idle_timeout{30'000};
        size_t requests_per_poll = 8; // per client, so one client cannot hog a poll
    };

    explicit control_server(handler h) : m_handler(std::move(h)) {}
    control_server(handler h, limits l) : m_handler(std::move(h)), m_limits(l) {}
    ~control_server();
    control_server(const control_server&) = delete;
    control_server& operator=(const control_server&) = delete;

    // Binds PATH (mode 0660, group `group` when not empty: that group may read; a
    // stale socket file is replaced, a live daemon's is not). False with *error
    // phrased for the log.
    bool open(const std::string& path, const std::string& group, std::string* error);
    void close();
    // Waits up to `timeout_ms` for socket activity and serves it.
    void poll(int timeout_ms);
    // Answers a request the handler left pending; a client gone meanwhile is ignored.
    void reply(ticket t, const api::json& answer);
    const std::string& path() const { return m_path; }

    struct figures {
        uint64_t accepted = 0, refused_full = 0, closed_idle = 0, evicted = 0, accept_paused = 0;
        size_t clients = 0;
    };
    figures stats() const;

private:
    struct client {
        int fd = -1;
        control::actor who;
        std::unique_ptr<api::line_reader> reader;
        std::string out;      // reply bytes the kernel has not taken yet
        bool pending = false; // a reply is owed (handler answers later)
        bool reading = true;  // registered for EPOLLIN
        clock::time_point last_progress;
    };
    void accept_clients();
    void serve(client& c);
    void flush(client& c);
    void update_interest(client& c);
    void close_client(int fd);
    void expire_idle();
    // At the cap: closes the client idle the longest (no request in progress, nothing
    // owed); false when every client is busy.
    bool evict_one();

    handler m_handler;
    limits m_limits;
    std::string m_path;
    int m_listen_fd = -1;
    int m_epoll_fd = -1;
    std::map<int, client> m_clients;
    std::map<ticket, int> m_pending; // ticket -> fd
    ticket m_next_ticket = 1;
    std::optional<clock::time_point> m_accept_paused_until;
    clock::time_point m_next_idle_check{};
    figures m_figures;
};

} // namespace evenflow::daemon
