// evenflowd's helper threads (apply reviews, baseline drift, the reclaimer) are
// started from the control thread and inherit its CPU: EAL pins it to the main lcore,
// so they share that one core with the control loop (ARP, probes, the socket). At the
// lowest priority they take only what the loop leaves: a review of a thousand
// services then stretches over more wall time instead of stalling `evenctl status`.
#pragma once

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace evenflow::control {

inline void lower_this_thread_priority() {
    setpriority(PRIO_PROCESS, id_t(syscall(SYS_gettid)), 19);
}

} // namespace evenflow::control
