// Drives the change pipeline (control/changes.hpp) as evenflowd's control loop does:
// a request, then advance() until it is answered and the queue is empty. Tests use it
// for every config or state change, so they take the path production takes.
#pragma once

#include "control/changes.hpp"
#include "support/configs.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace evenflow::testing {

class pipeline_driver {
public:
    // Where a publication goes; by default the driver keeps the snapshot itself.
    using publish_fn = std::function<void(std::unique_ptr<snapshot>, const control::publication&)>;

    struct outcome {
        api::json reply;         // what the client that asked was told
        size_t publications = 0; // snapshots published on the way
        bool ok() const { return reply.value("ok", false); }
        bool changed() const { return reply.value("changed", false); }
        std::string error() const { return reply.value("error", ""); }
        uint64_t version() const { return reply.value("version", uint64_t(0)); }
    };

    explicit pipeline_driver(
        publish_fn publish = {}, std::function<const snapshot*()> running = {},
        std::string config_path = "", size_t keep_versions = 32,
        std::chrono::steady_clock::duration build_slice = std::chrono::milliseconds(4))
        : m_publish(std::move(publish)), m_running(std::move(running)),
          pipeline(host(), std::move(config_path), build_slice, keep_versions) {}

    // The first version; its snapshot is published like any other.
    control::change_result start(const config::config& cfg) {
        control::change_result r = pipeline.start(cfg);
        if (r.ok) {
            deliver(std::move(r.snap), {});
        }
        return r;
    }

    outcome apply(const config::config& cfg, bool accept_shift = false,
                  const control::actor& who = {0, 0, "test"}, bool dry_run = false) {
        return run([&](control::change_pipeline::reply_fn reply) {
            pipeline.request_apply([cfg] { return loaded(cfg); }, who, "apply test.toml",
                                   accept_shift, std::move(reply), dry_run);
        });
    }
    outcome apply_text(const std::string& text, bool accept_shift = false,
                       const control::actor& who = {0, 0, "test"}, bool dry_run = false) {
        return run([&](control::change_pipeline::reply_fn reply) {
            pipeline.request_apply([text] { return config::load_string(text, "test.toml"); }, who,
                                   "apply test.toml", accept_shift, std::move(reply), dry_run);
        });
    }
    outcome rollback(std::optional<uint64_t> version, const control::actor& who = {0, 0, "test"}) {
        return run([&](control::change_pipeline::reply_fn reply) {
            pipeline.request_rollback(version, who, "operator", std::move(reply));
        });
    }
    outcome set_admin(const std::string& service, const std::string& backend,
                      control::admin_state state, const control::actor& who = {0, 0, "test"}) {
        return run([&](control::change_pipeline::reply_fn reply) {
            pipeline.request_admin(service, backend, state, who, std::move(reply));
        });
    }
    // A health verdict as the daemon's health tick hands it over: recorded, and one
    // rebuild when it changed. Returns the publications it caused.
    size_t set_health(uint32_t backend_id, control::health_verdict verdict) {
        size_t before = m_publications;
        if (pipeline.manager().record_health(backend_id, verdict)) {
            pipeline.request_states_rebuild();
        }
        settle();
        return m_publications - before;
    }

    // advance() until the queue and its follow-ups are done (bounded: a review runs on a
    // thread of its own).
    void settle() {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (pipeline.pending()) {
            pipeline.advance();
            if (std::chrono::steady_clock::now() > deadline) {
                FAIL("the change pipeline did not settle in 60 s");
            }
            if (pipeline.pending()) {
                std::this_thread::yield();
            }
        }
    }

    // The snapshot running now (the driver's own, or the host's).
    const snapshot* running() const { return m_running ? m_running() : m_current.get(); }
    // The driver's own snapshot, to stamp as the daemon would (no publish callback).
    snapshot& latest() { return *m_current; }
    control::config_manager& manager() { return pipeline.manager(); }
    size_t publications() const { return m_publications; }
    const std::vector<control::publication>& published() const { return m_published; }

private:
    static config::load_result loaded(const config::config& cfg) {
        config::load_result r;
        r.value = cfg;
        return r;
    }

    control::change_pipeline::host host() {
        control::change_pipeline::host h;
        h.publish = [this](std::unique_ptr<snapshot> snap, const control::publication& what) {
            deliver(std::move(snap), what);
        };
        h.running_snapshot = [this] {
            return running();
        };
        h.backend_in_use = [](uint32_t) {
            return false;
        };
        h.on_automatic_rollback = [this] {
            ++forgotten;
        };
        return h;
    }

    void deliver(std::unique_ptr<snapshot> snap, const control::publication& what) {
        ++m_publications;
        m_published.push_back(what);
        if (m_publish) {
            m_publish(std::move(snap), what);
        } else {
            m_current = std::move(snap);
        }
    }

    template <typename Request>
    outcome run(Request request) {
        outcome out;
        bool answered = false;
        size_t before = m_publications;
        request([&](const api::json& reply) {
            out.reply = reply;
            answered = true;
        });
        settle();
        REQUIRE(answered);
        out.publications = m_publications - before;
        return out;
    }

    publish_fn m_publish;
    std::function<const snapshot*()> m_running;
    std::unique_ptr<snapshot> m_current;
    size_t m_publications = 0;
    std::vector<control::publication> m_published;

public:
    control::change_pipeline pipeline;
    size_t forgotten = 0; // automatic rollbacks the host was told of before their build
};

} // namespace evenflow::testing
