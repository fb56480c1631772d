// Alarms from the daemon: every second the workers' counters and client sketches are
// sampled into the skew detector (lib/control/skew.*, clients.*), a rising alarm that
// points at the config rolls it back in probation ([skew] action), and after each
// publication services with no backend up raise a no_backend alarm (control/policy.hpp).
// `evenctl skew` lists the alarms, `evenctl clients` who sends a service's traffic.
// Tests: the module in-process, test_skew_module.cpp beside it; the logic in
// test/unit/test_control.cpp, test_clients.cpp, test_policy.cpp; end to end:
// test/e2e/skew.sh, replay.sh.
#pragma once

#include "control/policy.hpp"
#include "control/skew.hpp"
#include "module.hpp"

namespace evenflow::daemon {

class skew_module final : public module {
public:
    explicit skew_module(module_context& ctx) : m_ctx(ctx) {}
    const char* name() const override { return "skew"; }
    bool start(std::string* error) override;
    void tick(clock::time_point now) override;
    void on_replaced(const control::publication& what) override;
    void on_publish(const snapshot& snap, const control::publication& what) override;
    void collect_metrics(exposition& out) override;
    void status(api::json& out) override;
    std::vector<api::command> commands() const override {
        return {api::command::skew, api::command::clients};
    }
    answer_t handle(api::command id, const api::json& request, const request_context& ctx) override;

    // For the views that join every feature's figures (backends, /metrics per backend).
    const control::skew_detector& detector() const { return m_detector; }
    const control::no_backend_alarms& no_backend() const { return m_no_backend; }
    size_t alarm_count() const { return m_detector.alarms().size() + m_no_backend.active().size(); }
    // Seconds the judgement waited for a worker's sketches, since start.
    uint64_t ticks_held() const { return m_ticks_held; }

private:
    void judge(clock::time_point now);
    std::vector<control::backend_sample> sample_backends();
    bool collect_clients(clock::time_point now);
    answer_t list_alarms() const;
    answer_t top_clients(const api::json& request) const;

    module_context& m_ctx;
    control::skew_detector m_detector;
    control::no_backend_alarms m_no_backend;
    clock::time_point m_next_tick;
    // The samples' names and expected shares, kept for the snapshot they were read from.
    std::vector<control::backend_sample> m_samples;
    const snapshot* m_samples_of = nullptr;
    static constexpr int max_ticks_without_clients = 5;
    int m_ticks_without_clients = 0; // ticks held back for a worker's sketches, in a row
    uint64_t m_ticks_held = 0;       // and since start
};

} // namespace evenflow::daemon
