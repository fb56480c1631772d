#include "file_status.hpp"

#include "config/diff.hpp"
#include "config/load.hpp"
#include "control/state_store.hpp"

#include <fmt/format.h>

#include <chrono>

namespace evenflow::daemon {

using api::json;

void config_file_status::seed(std::shared_ptr<const config::config> file, std::string hash) {
    key k;
    json ignored;
    if (stat_file(k, &ignored)) {
        m_file = std::move(file);
        m_hash = std::move(hash);
        m_file_key = k;
        m_file_read = true;
    }
}

bool config_file_status::stat_file(key& out, json* error) const {
    std::error_code ec;
    out.mtime = std::filesystem::last_write_time(m_path, ec);
    out.size = ec ? 0 : std::filesystem::file_size(m_path, ec);
    if (ec) {
        *error = {{"path", m_path},
                  {"error", fmt::format("cannot read {}: {}", m_path, ec.message())}};
        return false;
    }
    return true;
}

bool config_file_status::current(std::shared_ptr<const config::config> running, uint64_t version) {
    key now;
    json error;
    if (!stat_file(now, &error)) {
        m_answer = std::move(error);
        m_have_answer = false; // the next readable file is read again
        m_file_read = false;
        return true;
    }
    now.version = version;
    if (m_have_answer && m_answered == now) {
        return true;
    }
    if (m_job.valid()) {
        return false; // the read under way is taken first (finished())
    }
    if (m_file_read && m_file_key.mtime == now.mtime && m_file_key.size == now.size) {
        // Only the running version changed: a diff, ~9 ms at a thousand services with
        // every weight changed, done here so that the status is not kept waiting. (A
        // file that does not load keeps its answer.)
        if (m_file != nullptr) {
            m_answer = compare(m_path, *m_file, m_hash, *running);
        }
        m_answered = now;
        m_have_answer = true;
        return true;
    }
    m_job_key = now;
    m_job = std::async(std::launch::async, [path = m_path, running = std::move(running)] {
        // At normal priority, unlike the reviews: a status waits for it.
        outcome o;
        config::load_result loaded = config::load_file(path);
        if (!loaded.ok()) {
            o.answer = {
                {"path", path},
                {"error", fmt::format("{} does not load ({} errors)", path, loaded.errors.size())}};
            return o;
        }
        o.file = std::make_shared<const config::config>(std::move(*loaded.value));
        o.hash = control::text_hash(o.file->source_text);
        o.answer = compare(path, *o.file, o.hash, *running);
        return o;
    });
    return false;
}

json config_file_status::compare(const std::string& path, const config::config& file,
                                 const std::string& hash, const config::config& running) {
    size_t changes =
        file.source_text == running.source_text ? 0 : config::diff(running, file).size();
    return {{"path", path}, {"differs", changes != 0}, {"changes", changes}, {"hash", hash}};
}

bool config_file_status::finished() {
    if (m_job.valid() && m_job.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        outcome o = m_job.get();
        m_file = std::move(o.file);
        m_hash = std::move(o.hash);
        m_file_key = m_job_key;
        m_file_read = true;
        m_answer = std::move(o.answer);
        m_answered = m_job_key;
        m_have_answer = true;
    }
    return !m_job.valid();
}

} // namespace evenflow::daemon
