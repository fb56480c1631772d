// The Prometheus endpoint: GET /metrics on [control] metrics, served by cpp-httplib
// on its own thread. A scrape asks the control thread for a rendering (wanted()) and
// waits up to a second for it, then serves the latest one: the HTTP thread never
// reads daemon state, and nothing is rendered while nobody scrapes.
#pragma once

#include <atomic>
#include <condition_variable>
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
    // A scrape is waiting for a fresh rendering (control thread: poll, then publish).
    bool wanted() const { return m_wanted.load(std::memory_order_acquire); }
    size_t last_size() const;

private:
    std::unique_ptr<httplib::Server> m_server;
    std::thread m_thread;
    mutable std::mutex m_mutex;
    std::condition_variable m_published;
    std::string m_text;                         // guarded by m_mutex
    uint64_t m_generation = 0;                  // guarded by m_mutex: renderings published so far
    std::atomic<bool> m_wanted{false};          // http: set, ctlplane: clear by publishing
    std::atomic<bool> m_listen_returned{false}; // the HTTP thread is done
};

// Appends one sample line: NAME{LABELS} VALUE, escaping label values.
class exposition {
public:
    void help(const std::string& name, const std::string& type, const std::string& text);
    void sample(const std::string& name,
                std::initializer_list<std::pair<const char*, std::string>> labels, double value);
    // The same with labels already rendered by labels() (kept per snapshot at scale).
    void sample(const std::string& name, std::string_view rendered_labels, double value);
    static std::string labels(std::initializer_list<std::pair<const char*, std::string>> labels);
    // Sample lines rendered beforehand by another exposition (e.g. off the loop).
    void raw(std::string_view lines) { m_out += lines; }
    void reserve(size_t bytes) { m_out.reserve(bytes); }
    std::string take() { return std::move(m_out); }

private:
    std::string m_out;
};

} // namespace evenflow::daemon
