// Health checks from the daemon: probes sent through the slow path at the rate the
// checker allows, replies the workers matched handed to it, and its verdicts handed to
// the change pipeline (one states rebuild per tick). Tests: the module in-process,
// test_health_module.cpp beside it; the checker itself, pure, is lib/control/health.*
// (test/unit/test_control.cpp); end to end: test/e2e/health.sh.
#pragma once

#include "control/health.hpp"
#include "module.hpp"

namespace evenflow::daemon {

class health_module final : public module {
public:
    // Gives the workers the probes in flight they match replies against.
    explicit health_module(module_context& ctx);
    const char* name() const override { return "health"; }
    bool start(std::string* error) override;
    void tick(clock::time_point now) override;
    void on_publish(const snapshot& snap, const control::publication& what) override;
    void on_automatic_rollback() override { m_checker.forget_verdicts(); }
    void collect_metrics(exposition& out) override;
    void status(api::json& out) override;
    void stats(api::json& out) override;

private:
    bool on_reply(const net::packet_meta& meta, uint32_t ack);
    uint64_t forged_replies() const;

    module_context& m_ctx;
    control::health_checker m_checker;
};

} // namespace evenflow::daemon
