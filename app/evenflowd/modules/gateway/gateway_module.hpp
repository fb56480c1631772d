// The backends' moving gateways ([[interfaces]] vrrp) from the daemon: the slow path
// runs each election (lib/net/vrrp.hpp, lib/dataplane/slow_path_vrrp.cpp); this module
// says whether this host should hold them (live, not drained, not stopping: what the
// BGP module decides for announcing), logs each change of holder, holds SIGTERM until
// a hand-over is complete, and reports them. End to end: test/e2e/hosts.sh.
#pragma once

#include "module.hpp"
#include "modules/bgp/bgp_module.hpp"

#include <vector>

namespace evenflow::daemon {

class gateway_module final : public module {
public:
    gateway_module(module_context& ctx, const bgp_module& bgp) : m_ctx(ctx), m_bgp(bgp) {}
    const char* name() const override { return "gateway"; }
    bool start(std::string* error) override;
    void tick(clock::time_point now) override;
    void collect_metrics(exposition& out) override;
    void status(api::json& out) override;
    void on_stop_requested(clock::time_point) override { m_stopping = true; }
    bool holds_stop(clock::time_point now) override;
    void stop() override;

private:
    module_context& m_ctx;
    const bgp_module& m_bgp;
    bool m_stopping = false;
    bool m_stop_seen = false;    // a tick has run since the stop request (hand-over started)
    std::vector<bool> m_holding; // by gateway, as last logged
};

} // namespace evenflow::daemon
