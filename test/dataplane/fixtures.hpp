// The worker's packet path as a table: one frame in, the exact frames out on each
// side, and the counters that move (Katran tests its BPF program with fixtures of the
// same shape). A row names the drop reasons and worker counters it moves; every other
// drop reason, and every forwarding counter it does not name, must stay where it was.
#pragma once

#include "rig.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

namespace evenflow::testing {

struct packet_fixture {
    std::string name;
    uint16_t side = client_side; // where the frame enters
    bytes frame;
    std::vector<bytes> to_client, to_backend; // exactly these, in order
    std::map<std::string, uint64_t> counters; // worker_counter_list names: their deltas
    std::map<net::drop_reason, uint64_t> drops;
};

// Counters a row must name when it moves them: what the worker did with the frame.
inline const std::vector<std::string> fixture_checked_counters = {
    "to_backend",  "to_client",         "syns",        "new_flows",  "stateless_forward",
    "resets_sent", "icmp_echo_replies", "arp_replies", "to_control", "icmp_errors_translated"};

// The rig's worker's counter of that name (worker_counter_list).
inline uint64_t counter_named(ring_rig& rig, const std::string& name) {
    const dataplane::worker_counters& totals = rig.worker->stats().totals;
    for (const auto& c : dataplane::worker_counter_list) {
        if (c.name == name) {
            return (totals.*c.field).get();
        }
    }
    FAIL("no worker counter named " << name);
    return 0;
}

inline void run_fixtures(ring_rig& rig, const std::vector<packet_fixture>& rows) {
    const dataplane::worker_counters& totals = rig.worker->stats().totals;
    auto counter_value = [&](const std::string& name) {
        return counter_named(rig, name);
    };
    for (const packet_fixture& row : rows) {
        INFO("fixture: " << row.name);
        std::map<std::string, uint64_t> before;
        for (const std::string& name : fixture_checked_counters) {
            before[name] = counter_value(name);
        }
        for (const auto& [name, delta] : row.counters) {
            before[name] = counter_value(name);
        }
        std::vector<uint64_t> drops_before;
        for (size_t r = 0; r < size_t(net::drop_reason::count_); ++r) {
            drops_before.push_back(totals.drops[r].get());
        }

        auto out = rig.exchange(row.side, row.frame);

        CHECK(out.client == row.to_client);
        CHECK(out.backend == row.to_backend);
        for (const bytes& f : out.client) {
            if (f.size() > 14 + 20 && f[14 + 9] == 6) {
                CHECK(ipv4_tcp_checksums_ok(f));
            }
        }
        for (const auto& [name, old] : before) {
            auto want = row.counters.find(name);
            INFO("counter " << name);
            CHECK(counter_value(name) - old == (want == row.counters.end() ? 0 : want->second));
        }
        for (size_t r = 1; r < size_t(net::drop_reason::count_); ++r) {
            auto reason = net::drop_reason(r);
            auto want = row.drops.find(reason);
            INFO("drop reason " << net::to_string(reason));
            CHECK(totals.drops[r].get() - drops_before[r] ==
                  (want == row.drops.end() ? 0 : want->second));
        }
    }
}

} // namespace evenflow::testing
