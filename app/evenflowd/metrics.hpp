// The Prometheus endpoint: GET /metrics on [control] metrics, served by cpp-httplib
// on its own thread. The control thread renders the exposition text once a second;
// the HTTP thread only hands out the latest rendering, so it never reads daemon state.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace evenflow::daemon {

class metrics_server {
public:
    metrics_server();
    ~metrics_server();
    // "HOST:PORT" ("[v6]:PORT" for IPv6). False and *error when it cannot listen.
    bool start(const std::string& listen, std::string* error);
    void stop();
    void publish(std::string exposition);

private:
    std::unique_ptr<httplib::Server> m_server;
    std::thread m_thread;
    std::mutex m_mutex;
    std::string m_text; // guarded by m_mutex
};

// Appends one sample line: NAME{LABELS} VALUE, escaping label values.
class exposition {
public:
    void help(const std::string& name, const std::string& type, const std::string& text);
    void sample(const std::string& name,
                std::initializer_list<std::pair<const char*, std::string>> labels, double value);
    std::string take() { return std::move(m_out); }

private:
    std::string m_out;
};

} // namespace evenflow::daemon
