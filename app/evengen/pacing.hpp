// evengen's pacing, as pure arithmetic on TSC cycles: how many packets may be built
// now. Never more than `window` packets in flight, at a fixed rate too: more would
// overrun the rings between evengen and the device (ours included, when this core
// is taken away for a moment), and that loss would be the harness's. With a rate,
// sends follow the schedule; when the core was busy elsewhere and fell behind, the
// missed sends are written off as `deficit` rather than caught up in one line-rate
// burst, as a hardware packet generator keeps its rate.
#pragma once

#include <algorithm>
#include <cstdint>

namespace evenflow::gen {

class pacer {
public:
    // rate: packets/s (0: as fast as the window allows); hz: TSC cycles per second;
    // per_send: packets one send may put in flight (a lifecycle: its whole exchange);
    // max_burst: the most sends one call may allow.
    pacer(double rate, uint64_t hz, uint64_t start, uint64_t window, uint64_t per_send,
          uint64_t max_burst)
        : m_rate(rate), m_hz(hz), m_start(start), m_window(window), m_per_send(per_send),
          m_max_burst(max_burst), m_max_debt(2 * max_burst) {}

    bool window_full(uint64_t in_flight) const { return in_flight + m_per_send > m_window; }

    // Sends allowed at `now` with `in_flight` packets outstanding; each one made must
    // be reported with sent().
    uint64_t budget(uint64_t now, uint64_t in_flight) {
        if (window_full(in_flight)) {
            return 0;
        }
        uint64_t allowed = std::min((m_window - in_flight) / m_per_send, m_max_burst);
        if (m_rate <= 0) {
            return allowed;
        }
        auto due = uint64_t(double(now - m_start) / double(m_hz) * m_rate);
        if (due > m_scheduled + m_max_debt) {
            m_deficit += due - m_scheduled - m_max_debt;
            m_scheduled = due - m_max_debt;
        }
        return due > m_scheduled ? std::min(due - m_scheduled, allowed) : 0;
    }
    void sent() { ++m_scheduled; }

    // Sends skipped to stay on schedule.
    uint64_t deficit() const { return m_deficit; }

private:
    double m_rate;
    uint64_t m_hz, m_start, m_window, m_per_send, m_max_burst, m_max_debt;
    uint64_t m_scheduled = 0; // sends accounted for (made or written off)
    uint64_t m_deficit = 0;
};

} // namespace evenflow::gen
