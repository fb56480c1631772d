// Crash recovery for the control plane ([control] state_dir): every committed version,
// the operator's admin states and the history, written atomically and fsync'd before
// the change they record takes effect, read back at start.
//
// The rule (README "Restarts and the state directory"): the config file is the desired
// state, state_dir is crash recovery. At start the daemon resumes the saved version
// only when the file is the one it last read (same text hash); a changed file wins. A
// state that cannot be read, parsed or checked never stops a start: the daemon starts
// from the file and says why.
//
// Layout: DIR/state.json (what runs, the history, admin states, the file's hash) and
// DIR/v<N>.toml (the text of each kept version, written once), DIR/lock (flock: one
// daemon per directory), DIR/hash_seed (the pick hash's seed evenflowd generated when
// the config sets none: evenflowd::host_hash_seed). Every file is written as
// DIR/.tmp-NAME, fsync'd, renamed over NAME, then the directory is fsync'd.
#pragma once

#include "control/manager.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace evenflow::control {

struct saved_version {
    uint64_t version = 0;
    int64_t at_ms = 0; // wall clock, ms since the epoch
    actor who;
    std::string origin;
    std::vector<std::string> diff;
    std::string text; // the config's TOML
    // The series baseline's fields (history_entry), so a restart judges applies
    // against the same baseline.
    bool accepted_shift = false;
    uint64_t accepted_from = 0;
    uint64_t rollback_of = 0;
    uint64_t baseline = 0;
};

struct saved_admin {
    std::string service;
    std::string backend; // "ADDR:PORT"
    admin_state state = admin_state::enabled;
};

struct saved_state {
    uint64_t next_version = 1;
    std::string file_hash;              // text_hash() of the config file as last read
    std::vector<saved_version> history; // oldest first; back() is the running version
    std::vector<saved_admin> admin;
};

// 16 hex digits (FNV-1a 64) of a text: a file's identity, a version's check.
std::string text_hash(std::string_view text);

// Writes `data` to `path` atomically and durably (temp file, fsync, rename, fsync of
// the directory). False with *error.
bool write_file_atomic(const std::string& path, std::string_view data, std::string* error);

class state_store {
public:
    state_store() = default;
    state_store(const state_store&) = delete;
    state_store& operator=(const state_store&) = delete;
    ~state_store();

    // Creates the directory if needed and locks it. False with *error (another daemon
    // holds it, no permission, ...).
    bool open(const std::string& dir, std::string* error);
    bool is_open() const { return m_lock_fd >= 0; }
    const std::string& dir() const { return m_dir; }

    // The saved state, or nullopt with *why: "none saved yet", or what is wrong with it
    // (unreadable, not JSON, a missing or altered version file).
    std::optional<saved_state> load(std::string* why) const;

    // The highest version number with a file in the directory (0 when none): numbers
    // keep growing across restarts even when the state cannot be read.
    uint64_t highest_version_file() const;

    // Writes the version files not yet written by this process, then state.json, then
    // removes version files the history no longer names. False with *error; what was
    // saved before stays valid.
    bool save(const saved_state& state, std::string* error);

    // DIR/hash_seed: the pick hash's seed kept for the next start. nullopt when there
    // is none, or *error says what is wrong with the file.
    std::optional<net::hash_seed> load_hash_seed(std::string* error) const;
    bool save_hash_seed(const net::hash_seed& seed, std::string* error) const;

private:
    std::string m_dir;
    int m_lock_fd = -1;
    std::set<std::pair<uint64_t, std::string>> m_written; // (version, hash) on disk
};

// What to save for `manager` as it runs, plus `pending` (a version about to be
// recorded, as number manager.next_version()) when given. file_hash: the config
// file's, as last read.
saved_state capture_state(const config_manager& manager, const std::string& file_hash,
                          const history_entry* pending = nullptr);

} // namespace evenflow::control
