// The host-wide settings ([eal], [control], [dataplane], [skew], [bgp]) in one table:
// the keys each section's reader accepts, the lines `evenctl diff` and history show,
// and which of them only a restart can change all come from it. A field added to a
// section without a row is an unknown key to the reader (and the example config,
// which documents every key, stops loading in the tests); a row is what puts it in
// the diff and in the restart rule. The named lists (interfaces, pools, services,
// backends) are paired by name in diff.cpp instead.
#pragma once

#include "config/config.hpp"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace evenflow::config {

struct setting_row {
    std::string_view section; // "dataplane"
    std::string_view key;     // "flow_capacity"; nested: "timeouts.syn"; "": the table itself
    // The value as a diff shows it; `before` is set when `self` is the newer config of
    // the two compared (a secret says only whether it differs from the one before).
    std::string (*text)(const config& self, const config* before);
    // Non-empty: evenflowd reads it once at start, and an apply or rollback that changes
    // it is refused under this name (rows may share one: "bgp", "dataplane.timeouts").
    std::string_view restart_as;
    // A valid value other than the default, as a TOML line (for the tests).
    std::string_view example;

    // "dataplane.flow_capacity"
    std::string name() const;
};

std::span<const setting_row> settings();

// The keys a table may hold: "dataplane" -> workers, flow_capacity, timeouts, hash_seed;
// "dataplane.timeouts" -> syn, established, closing.
std::vector<std::string_view> keys_of(std::string_view table);

// "~ skew.threshold: 2 -> 3" for each setting that differs.
void diff_settings(const config& before, const config& after, std::vector<std::string>& out);
// The restart names of the settings that differ, each once, in table order.
std::vector<std::string> settings_needing_restart(const config& running, const config& next);
// Why `next` cannot be applied to a daemon running `running` (those settings, the
// interfaces, a service's mode), or "" when it can.
std::string restart_required(const config& running, const config& next);

} // namespace evenflow::config
