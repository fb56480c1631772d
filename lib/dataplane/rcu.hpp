// Publishing immutable objects to poll-mode workers with DPDK's QSBR RCU.
// The control thread swaps a pointer; readers load it once per burst and report a
// quiescent state after the burst; the old object is freed after every registered
// reader has passed one (rte_rcu_qsbr_synchronize).
#pragma once

#include <rte_rcu_qsbr.h>

#include <atomic>
#include <cstdint>
#include <memory>

namespace evenflow::dataplane {

class qsbr_domain {
public:
    // One reader slot per worker (thread ids 0..max_readers-1). nullptr on failure.
    static std::unique_ptr<qsbr_domain> create(uint32_t max_readers);
    ~qsbr_domain();
    qsbr_domain(const qsbr_domain&) = delete;
    qsbr_domain& operator=(const qsbr_domain&) = delete;

    // Reader side (worker): register once, go online, then quiescent() after each burst.
    void register_reader(uint32_t reader) { rte_rcu_qsbr_thread_register(m_qsbr, reader); }
    void online(uint32_t reader) { rte_rcu_qsbr_thread_online(m_qsbr, reader); }
    void offline(uint32_t reader) { rte_rcu_qsbr_thread_offline(m_qsbr, reader); }
    void unregister_reader(uint32_t reader) { rte_rcu_qsbr_thread_unregister(m_qsbr, reader); }
    void quiescent(uint32_t reader) { rte_rcu_qsbr_quiescent(m_qsbr, reader); }

    // Writer side (control thread): blocks until every online reader has reported a
    // quiescent state after this call began. Readers that are offline do not hold it up.
    void synchronize() { rte_rcu_qsbr_synchronize(m_qsbr, RTE_QSBR_THRID_INVALID); }

private:
    qsbr_domain() = default;
    rte_rcu_qsbr* m_qsbr = nullptr;
};

// A pointer to an immutable T that the control thread replaces and workers read.
template <typename T>
class published {
public:
    published() = default;
    ~published() { delete m_current.load(std::memory_order_relaxed); }
    published(const published&) = delete;
    published& operator=(const published&) = delete;

    // dataplane: ro. Acquire pairs with the release in publish(), so everything the
    // control thread wrote into *T before publishing is visible to the reader.
    const T* load() const { return m_current.load(std::memory_order_acquire); }

    // ctlplane: rw. Publishes `next`, waits for a grace period, and returns the old
    // object, which no worker can be reading any more: the caller frees it, now or on
    // another thread (a large snapshot takes a while to free).
    [[nodiscard]] std::unique_ptr<const T> replace(std::unique_ptr<T> next, qsbr_domain& domain) {
        const T* old = m_current.exchange(next.release(), std::memory_order_acq_rel);
        if (old != nullptr) {
            domain.synchronize();
        }
        return std::unique_ptr<const T>(old);
    }
    // The same, freeing the old object at once.
    void publish(std::unique_ptr<T> next, qsbr_domain& domain) {
        replace(std::move(next), domain).reset();
    }

private:
    std::atomic<const T*> m_current{nullptr};
    static_assert(std::atomic<const T*>::is_always_lock_free);
};

} // namespace evenflow::dataplane
