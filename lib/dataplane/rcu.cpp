#include "dataplane/rcu.hpp"

#include <rte_malloc.h>

namespace evenflow::dataplane {

std::unique_ptr<qsbr_domain> qsbr_domain::create(uint32_t max_readers) {
    size_t size = rte_rcu_qsbr_get_memsize(max_readers);
    auto* qsbr =
        static_cast<rte_rcu_qsbr*>(rte_zmalloc("evenflow_qsbr", size, RTE_CACHE_LINE_SIZE));
    if (qsbr == nullptr) {
        return nullptr;
    }
    if (rte_rcu_qsbr_init(qsbr, max_readers) != 0) {
        rte_free(qsbr);
        return nullptr;
    }
    std::unique_ptr<qsbr_domain> domain(new qsbr_domain);
    domain->m_qsbr = qsbr;
    return domain;
}

qsbr_domain::~qsbr_domain() {
    rte_free(m_qsbr);
}

} // namespace evenflow::dataplane
