#include "metrics.hpp"

#include <httplib.h>

#include <fmt/format.h>

#include <chrono>
#include <cmath>

namespace evenflow::daemon {

metrics_server::metrics_server() = default;

metrics_server::~metrics_server() {
    stop();
}

bool metrics_server::start(const std::string& listen, std::string* error) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
        *error = fmt::format("metrics address {} is not HOST:PORT", listen);
        return false;
    }
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    int port = std::atoi(listen.c_str() + colon + 1);
    m_server = std::make_unique<httplib::Server>();
    m_server->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        std::unique_lock lock(m_mutex);
        uint64_t seen = m_generation;
        m_wanted.store(true, std::memory_order_release);
        m_published.wait_for(lock, std::chrono::seconds(1), [&] { return m_generation != seen; });
        res.set_content(m_text, "text/plain; version=0.0.4; charset=utf-8");
    });
    if (!m_server->bind_to_port(host, port)) {
        *error = fmt::format("cannot listen for metrics on {} (in use, or not a local address?)",
                             listen);
        m_server.reset();
        return false;
    }
    m_listen_returned.store(false);
    m_thread = std::thread([this] {
        m_server->listen_after_bind();
        m_listen_returned.store(true);
    });
    return true;
}

void metrics_server::stop() {
    if (m_thread.joinable()) {
        // httplib's stop() does nothing until the thread has begun listening
        // (is_running): a stop right after start (a start refused by a later step)
        // would leave the thread in accept() for ever, and this join with it.
        while (!m_server->is_running() && !m_listen_returned.load()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        m_server->stop();
        m_thread.join();
    }
    m_server.reset();
}

void metrics_server::publish(std::string text) {
    {
        std::lock_guard lock(m_mutex);
        m_text = std::move(text);
        ++m_generation;
        m_wanted.store(false, std::memory_order_release);
    }
    m_published.notify_all();
}

size_t metrics_server::last_size() const {
    std::lock_guard lock(m_mutex);
    return m_text.size();
}

void exposition::help(const std::string& name, const std::string& type, const std::string& text) {
    m_out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, text, name, type);
}

std::string exposition::labels(std::initializer_list<std::pair<const char*, std::string>> labels) {
    std::string out;
    for (const auto& [key, raw] : labels) {
        if (!out.empty()) {
            out += ',';
        }
        out += key;
        out += "=\"";
        for (char c : raw) {
            if (c == '\\' || c == '"') {
                out += '\\';
            }
            out += c == '\n' ? 'n' : c;
        }
        out += '"';
    }
    return out;
}

void exposition::sample(const std::string& name,
                        std::initializer_list<std::pair<const char*, std::string>> labels,
                        double value) {
    sample(name, labels.size() == 0 ? std::string() : exposition::labels(labels), value);
}

void exposition::sample(const std::string& name, std::string_view rendered_labels, double value) {
    m_out += name;
    if (!rendered_labels.empty()) {
        m_out += '{';
        m_out += rendered_labels;
        m_out += '}';
    }
    if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
        fmt::format_to(std::back_inserter(m_out), " {}\n", int64_t(value));
    } else {
        fmt::format_to(std::back_inserter(m_out), " {}\n", value);
    }
}

} // namespace evenflow::daemon
