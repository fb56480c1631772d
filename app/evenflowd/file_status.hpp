// `evenctl status`'s "file": does the running config differ from the config file, and
// how? Reading the file takes ~80-110 ms of one core at a thousand services, so it is
// read off the control loop (which goes on serving ARP, probes and other clients),
// once per change of the file (mtime and size); a status asked meanwhile waits for it
// (the daemon answers it later). A new running version is only diffed again.
#pragma once

#include "api/protocol.hpp"
#include "config/config.hpp"

#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

namespace evenflow::daemon {

class config_file_status {
public:
    explicit config_file_status(std::string path) : m_path(std::move(path)) {}
    // The file as read at start, with its text_hash: the first status only diffs.
    void seed(std::shared_ptr<const config::config> file, std::string hash);
    // True when answer() describes the file as it is now against `running` (number
    // `version`); otherwise a read of it starts (if none runs) and finished() says when
    // it is done.
    bool current(std::shared_ptr<const config::config> running, uint64_t version);
    // A read started by current() has finished (its answer is taken).
    bool finished();
    // The last answer: {"path", "differs", "changes", "hash"} or {"path", "error"}.
    const api::json& answer() const { return m_answer; }

private:
    struct key {
        std::filesystem::file_time_type mtime{};
        uintmax_t size = 0;
        uint64_t version = 0;
        bool operator==(const key&) const = default;
    };
    struct outcome {
        std::shared_ptr<const config::config> file; // null: it does not load
        std::string hash;
        api::json answer;
    };
    static api::json compare(const std::string& path, const config::config& file,
                             const std::string& hash, const config::config& running);
    // The file's mtime and size now; false with answer set when it can't be read.
    bool stat_file(key& out, api::json* error) const;

    std::string m_path;
    std::shared_ptr<const config::config> m_file; // the file as last read
    std::string m_hash;
    key m_file_key; // what m_file was read at (mtime, size)
    bool m_file_read = false;
    key m_answered; // what m_answer describes
    bool m_have_answer = false;
    api::json m_answer;
    std::future<outcome> m_job;
    key m_job_key;
};

} // namespace evenflow::daemon
