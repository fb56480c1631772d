// A feature of evenflowd seen from its control loop: what it does each iteration,
// after each publication and on an automatic rollback, and what it adds to /metrics,
// `evenctl status` and `evenctl stats`. The daemon keeps the features it runs in one
// list (modules.cpp) and calls them in turn; a feature's pure logic is in lib/ and its
// daemon side in app/evenflowd/modules/<name>/ (README "Adding a feature").
#pragma once

#include "api/commands.hpp"
#include "api/protocol.hpp"
#include "control/changes.hpp"
#include "control_server.hpp"
#include "dataplane/slow_path.hpp"
#include "dataplane/worker.hpp"
#include "metrics.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evenflow::daemon {

// What a module may use of the daemon; the daemon owns all of it and outlives modules.
struct module_context {
    control::change_pipeline& changes;   // configs and states (manager(), requests)
    dataplane::dataplane_shared& shared; // the running snapshot, what workers read
    // The control thread's packets (ARP, probes); set before start().
    dataplane::slow_path* slow_path = nullptr;
    control_server& server; // deferred answers (ticket), the socket's directory
    // Every worker's counters, for sums.
    std::function<std::vector<const dataplane::worker_stats*>()> worker_stats;
    // The workers, once they run (empty before): what a module asks of them (e.g. a
    // seal of their client sketches).
    std::function<std::vector<dataplane::worker*>()> workers;
    // Iterations of the control loop so far (is it alive?).
    std::function<uint64_t()> loop_iterations;

    uint64_t active_flows() const;
};

// What a command handler knows of its request besides the request itself.
struct request_context {
    control::actor who;
    control_server::ticket ticket; // to answer later (control_server::reply)
};
// An answer now, or nullopt when the handler answers later through the ticket.
using answer_t = std::optional<api::json>;

// A time in answers: "2026-12-07T15:17:12Z" (UTC).
std::string iso_time(std::chrono::system_clock::time_point t);

class module {
public:
    using clock = std::chrono::steady_clock;
    virtual ~module() = default;
    // Its name: the loop step it is timed as, its key in status and stats.
    virtual const char* name() const = 0;
    // Once, after the first publication, with the slow path and the workers running
    // (before them: the constructor, which may give workers what they read, e.g. the
    // probes in flight). False with *error: evenflowd refuses to start.
    virtual bool start(std::string* /*error*/) { return true; }
    // Every control-loop iteration.
    virtual void tick(clock::time_point) {}
    // As a snapshot replaces the running one (before the old one is freed): for what
    // is keyed by the old snapshot.
    virtual void on_replaced(const control::publication&) {}
    // After each publication, in an iteration of its own.
    virtual void on_publish(const snapshot&, const control::publication&) {}
    // Before an automatic rollback builds its snapshot: what was learnt under the bad
    // config goes with it.
    virtual void on_automatic_rollback() {}
    virtual void collect_metrics(exposition&) {}
    // Its part of `evenctl status` and `evenctl stats` (fields under its name).
    virtual void status(api::json&) {}
    virtual void stats(api::json&) {}
    // The commands of lib/api/commands.hpp it answers, and its answers.
    virtual std::vector<api::command> commands() const { return {}; }
    virtual answer_t handle(api::command, const api::json& /*request*/, const request_context&) {
        return std::nullopt;
    }
    // SIGTERM: asked once, then polled every iteration; the daemon stops when no module
    // holds it any more (e.g. BGP: withdraw, wait for routers, let connections drain).
    virtual void on_stop_requested(clock::time_point) {}
    virtual bool holds_stop(clock::time_point) { return false; }
    // Before the workers stop.
    virtual void stop() {}
};

// The modules evenflowd runs, in the order it calls them (modules.cpp).
std::vector<std::unique_ptr<module>> make_modules(module_context& ctx);

// The module of type T in `modules`, for the views that join several features' figures.
template <typename T>
T* find_module(const std::vector<std::unique_ptr<module>>& modules) {
    for (const auto& m : modules) {
        if (auto* found = dynamic_cast<T*>(m.get())) {
            return found;
        }
    }
    return nullptr;
}

} // namespace evenflow::daemon
