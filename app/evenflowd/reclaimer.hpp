// Frees what the control thread is done with on a thread of its own: an old snapshot
// of a thousand services is a thousand Maglev tables to unmap, tens of milliseconds
// the control loop (ARP, probes, the socket) should not spend.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "control/low_priority.hpp"

namespace evenflow::daemon {

class reclaimer {
public:
    reclaimer() : m_thread([this] { run(); }) {}
    ~reclaimer() {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_wake.notify_one();
        m_thread.join();
    }
    reclaimer(const reclaimer&) = delete;
    reclaimer& operator=(const reclaimer&) = delete;

    // Takes ownership of `object` (anything movable, typically a unique_ptr) and
    // destroys it later on the reclaimer's thread.
    template <typename T>
    void retire(T object) {
        auto holder = std::make_shared<T>(std::move(object));
        {
            std::lock_guard lock(m_mutex);
            m_queue.emplace_back([holder]() mutable { holder.reset(); });
        }
        m_wake.notify_one();
    }

private:
    void run() {
        control::lower_this_thread_priority();
        std::unique_lock lock(m_mutex);
        for (;;) {
            m_wake.wait(lock, [this] { return m_stop || !m_queue.empty(); });
            while (!m_queue.empty()) {
                auto job = std::move(m_queue.front());
                m_queue.pop_front();
                lock.unlock();
                job();
                job = nullptr;
                lock.lock();
            }
            if (m_stop) {
                return;
            }
        }
    }

    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::deque<std::function<void()>> m_queue; // guarded by m_mutex
    bool m_stop = false;                       // guarded by m_mutex
    std::thread m_thread;
};

} // namespace evenflow::daemon
