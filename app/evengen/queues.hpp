// How many queues evengen configures on a port. A device under test with N workers
// has N queue pairs on each port; on memif, queue i of one end is ring i of the
// other, and a ring exists only if both ends configure it, so evengen configures as
// many pairs as the device has workers, sends on queue 0 and receives on all of them
// (every worker transmits on its own queue). Pure, for the unit tier.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace evenflow::gen {

inline constexpr uint16_t max_queues = 16;

struct queue_plan {
    uint16_t rx = 0; // queues configured and polled, 0..rx-1
    uint16_t tx = 0; // queues configured; packets leave by queue 0
};

// `wanted` queue pairs on a port that offers at most max_rx/max_tx (rte_eth_dev_info).
// A port without RX (the pcap writer) gets one TX queue and no RX. nullopt and
// *error when the port has fewer queues than wanted.
inline std::optional<queue_plan> plan_queues(uint16_t wanted, uint16_t max_rx, uint16_t max_tx,
                                             std::string* error) {
    if (wanted == 0 || wanted > max_queues) {
        *error = "between 1 and " + std::to_string(max_queues) + " queues";
        return std::nullopt;
    }
    if (max_rx == 0) {
        if (wanted > 1) {
            *error = "the port cannot receive, so it has no queues to poll";
            return std::nullopt;
        }
        return queue_plan{0, 1};
    }
    if (max_rx < wanted || max_tx < wanted) {
        *error = std::to_string(wanted) + " queue pairs wanted, the port has " +
                 std::to_string(max_rx) + " RX and " + std::to_string(max_tx) + " TX queues";
        return std::nullopt;
    }
    return queue_plan{wanted, wanted};
}

} // namespace evenflow::gen
