// [bgp] from the daemon: BIRD driven as the announcement policy decides
// (lib/control/announce.hpp, test/unit/test_announce.cpp), liveness from the loop and
// worker counters (a stuck host withdraws), `evenctl drain-host` / `undrain-host`, and
// the SIGTERM drain. The BIRD child and its watchdog: bird.*; end to end:
// test/e2e/bgp.sh.
#pragma once

#include "bird.hpp"
#include "control/policy.hpp"
#include "module.hpp"

#include <memory>
#include <optional>

namespace evenflow::daemon {

class bgp_module final : public module {
public:
    explicit bgp_module(module_context& ctx) : m_ctx(ctx) {}
    const char* name() const override { return "bgp"; }
    bool start(std::string* error) override;
    void tick(clock::time_point now) override;
    void collect_metrics(exposition& out) override;
    void status(api::json& out) override;
    std::vector<api::command> commands() const override {
        return {api::command::drain_host, api::command::undrain_host};
    }
    answer_t handle(api::command id, const api::json& request, const request_context& ctx) override;
    void on_stop_requested(clock::time_point now) override;
    bool holds_stop(clock::time_point now) override;
    void stop() override;
    // Whether this host should carry traffic: live (with [bgp]), not drained, not
    // stopping. What it announces follows this; so does holding the backends' gateway.
    bool in_service() const { return !m_host_drained && !m_stop_asked && m_live; }

private:
    answer_t drain_host(const api::json& request, const request_context& ctx);
    answer_t undrain_host(const request_context& ctx);
    uint64_t forwarded() const;
    // state_dir/host-drained while an operator's drain-host holds ("" without
    // state_dir): read at start, so that a restart does not announce a drained host.
    std::string drain_marker() const;
    // Saves or clears it; what an operator should know when that failed ("" when not).
    std::string remember_drain(bool drained, const control::actor& who);

    module_context& m_ctx;
    std::unique_ptr<bgp_speaker> m_speaker; // null without [bgp]
    control::liveness m_liveness;
    bool m_host_drained = false;
    struct host_drain {
        control_server::ticket ticket;
        clock::time_point started, deadline;
    };
    std::optional<host_drain> m_host_drain; // a drain-host --timeout waiting for flows
    // SIGTERM with [bgp]: withdrawn at stop_asked, then waiting for routers and flows.
    std::optional<clock::time_point> m_stop_asked;
    uint64_t m_last_forwarded = 0;
    bool m_live = true; // as of the last tick (always, without [bgp])
    clock::time_point m_quiet_since;
};

} // namespace evenflow::daemon
