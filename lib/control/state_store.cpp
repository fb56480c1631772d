#include "control/state_store.hpp"

#include "config/config.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace evenflow::control {

using json = nlohmann::json; // state.json's format

namespace {

constexpr int format_version = 1;

std::string errno_text(std::string_view what, const std::string& path) {
    return fmt::format("{} {}: {}", what, path, std::strerror(errno));
}

bool fsync_dir(const std::string& dir, std::string* error) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        *error = errno_text("cannot open", dir);
        return false;
    }
    bool ok = ::fsync(fd) == 0;
    if (!ok) {
        *error = errno_text("cannot fsync", dir);
    }
    ::close(fd);
    return ok;
}

std::optional<std::string> read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string hash_seed_file(const std::string& dir) {
    return dir + "/hash_seed";
}

std::string version_file(uint64_t version) {
    return fmt::format("v{}.toml", version);
}

std::optional<admin_state> admin_from(std::string_view s) {
    for (admin_state a : {admin_state::enabled, admin_state::draining, admin_state::disabled}) {
        if (to_string(a) == s) {
            return a;
        }
    }
    return std::nullopt;
}

} // namespace

std::string text_hash(std::string_view text) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return fmt::format("{:016x}", h);
}

bool write_file_atomic(const std::string& path, std::string_view data, std::string* error) {
    std::filesystem::path p(path);
    std::string dir = p.parent_path().string();
    std::string tmp = (p.parent_path() / (".tmp-" + p.filename().string())).string();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        *error = errno_text("cannot create", tmp);
        return false;
    }
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            *error = errno_text("cannot write", tmp);
            ::close(fd);
            ::unlink(tmp.c_str());
            return false;
        }
        done += size_t(n);
    }
    if (::fsync(fd) != 0) {
        *error = errno_text("cannot fsync", tmp);
        ::close(fd);
        ::unlink(tmp.c_str());
        return false;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        *error = errno_text("cannot rename to", path);
        ::unlink(tmp.c_str());
        return false;
    }
    return fsync_dir(dir.empty() ? "." : dir, error);
}

state_store::~state_store() {
    if (m_lock_fd >= 0) {
        ::close(m_lock_fd);
    }
}

bool state_store::open(const std::string& dir, std::string* error) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        *error = fmt::format("cannot create state_dir {}: {}", dir, ec.message());
        return false;
    }
    std::string lock = dir + "/lock";
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        *error = errno_text("cannot open", lock);
        return false;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        *error = fmt::format("state_dir {} is in use by another evenflowd (flock {})", dir, lock);
        ::close(fd);
        return false;
    }
    m_dir = dir;
    m_lock_fd = fd;
    return true;
}

std::optional<saved_state> state_store::load(std::string* why) const {
    std::string path = m_dir + "/state.json";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
        *why = fmt::format("no state saved in {} yet", m_dir);
        return std::nullopt;
    }
    auto text = read_text(path);
    if (!text) {
        *why = errno_text("cannot read", path);
        return std::nullopt;
    }
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        *why =
            fmt::format("{} is not valid JSON ({} bytes; torn or corrupted)", path, text->size());
        return std::nullopt;
    }
    try {
        if (j.at("format").get<int>() != format_version) {
            *why = fmt::format("{} has format {}, this evenflowd reads {}", path,
                               j.at("format").dump(), format_version);
            return std::nullopt;
        }
        saved_state s;
        s.next_version = j.at("next_version").get<uint64_t>();
        s.file_hash = j.at("file_hash").get<std::string>();
        for (const json& h : j.at("history")) {
            saved_version v;
            v.version = h.at("version").get<uint64_t>();
            v.at_ms = h.at("at_ms").get<int64_t>();
            v.who.uid = h.at("uid").get<uint32_t>();
            v.who.pid = h.at("pid").get<int32_t>();
            v.who.via = h.at("via").get<std::string>();
            v.origin = h.at("origin").get<std::string>();
            v.diff = h.at("diff").get<std::vector<std::string>>();
            v.accepted_shift = h.value("accepted_shift", false);
            v.accepted_from = h.value("accepted_from", uint64_t(0));
            v.rollback_of = h.value("rollback_of", uint64_t(0));
            v.baseline = h.value("baseline", uint64_t(0));
            std::string file = m_dir + "/" + version_file(v.version);
            auto vt = read_text(file);
            if (!vt) {
                *why = errno_text("cannot read", file);
                return std::nullopt;
            }
            std::string want = h.at("hash").get<std::string>();
            if (text_hash(*vt) != want) {
                *why = fmt::format("{} does not match its hash in state.json (has {}, saved {}; "
                                   "torn or altered)",
                                   file, text_hash(*vt), want);
                return std::nullopt;
            }
            v.text = std::move(*vt);
            s.history.push_back(std::move(v));
        }
        if (s.history.empty()) {
            *why = fmt::format("{} names no version", path);
            return std::nullopt;
        }
        for (const json& a : j.at("admin")) {
            auto state = admin_from(a.at("state").get<std::string>());
            if (!state) {
                *why = fmt::format("{}: unknown admin state {}", path, a.at("state").dump());
                return std::nullopt;
            }
            s.admin.push_back(saved_admin{a.at("service").get<std::string>(),
                                          a.at("backend").get<std::string>(), *state});
        }
        if (s.next_version <= s.history.back().version) {
            s.next_version = s.history.back().version + 1;
        }
        return s;
    } catch (const json::exception& e) {
        *why = fmt::format("{} is incomplete: {}", path, e.what());
        return std::nullopt;
    }
}

uint64_t state_store::highest_version_file() const {
    uint64_t highest = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(m_dir, ec)) {
        std::string name = entry.path().filename().string();
        if (name.size() > 6 && name[0] == 'v' && name.ends_with(".toml")) {
            std::string digits = name.substr(1, name.size() - 6);
            if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos &&
                digits.size() < 20) {
                highest = std::max<uint64_t>(highest, std::stoull(digits));
            }
        }
    }
    return highest;
}

std::optional<net::hash_seed> state_store::load_hash_seed(std::string* error) const {
    std::optional<std::string> text = read_text(hash_seed_file(m_dir));
    if (!text) {
        return std::nullopt; // none kept yet
    }
    std::string_view hex = *text;
    while (!hex.empty() && (hex.back() == '\n' || hex.back() == ' ')) {
        hex.remove_suffix(1);
    }
    std::optional<net::hash_seed> seed = net::hash_seed::parse(hex);
    if (!seed) {
        *error = fmt::format("{}: not 32 hex digits", hash_seed_file(m_dir)); // never the text
    }
    return seed;
}

bool state_store::save_hash_seed(const net::hash_seed& seed, std::string* error) const {
    return write_file_atomic(hash_seed_file(m_dir), seed.to_hex() + "\n", error);
}

bool state_store::save(const saved_state& s, std::string* error) {
    json history = json::array();
    std::set<std::string> keep{"state.json", "lock"};
    for (const saved_version& v : s.history) {
        std::string hash = text_hash(v.text);
        std::string name = version_file(v.version);
        keep.insert(name);
        if (m_written.count({v.version, hash}) == 0) {
            if (!write_file_atomic(m_dir + "/" + name, v.text, error)) {
                return false;
            }
            m_written.insert({v.version, hash});
        }
        history.push_back({{"version", v.version},
                           {"at_ms", v.at_ms},
                           {"uid", v.who.uid},
                           {"pid", v.who.pid},
                           {"via", v.who.via},
                           {"origin", v.origin},
                           {"diff", v.diff},
                           {"accepted_shift", v.accepted_shift},
                           {"accepted_from", v.accepted_from},
                           {"rollback_of", v.rollback_of},
                           {"baseline", v.baseline},
                           {"hash", hash}});
    }
    json admin = json::array();
    for (const saved_admin& a : s.admin) {
        admin.push_back(
            {{"service", a.service}, {"backend", a.backend}, {"state", to_string(a.state)}});
    }
    json j = {{"format", format_version},
              {"next_version", s.next_version},
              {"running", s.history.empty() ? 0 : s.history.back().version},
              {"file_hash", s.file_hash},
              {"history", history},
              {"admin", admin}};
    if (!write_file_atomic(m_dir + "/state.json", j.dump(1) + "\n", error)) {
        return false;
    }
    // Version files the history no longer names (the oldest, or a discarded state's).
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(m_dir, ec)) {
        std::string name = entry.path().filename().string();
        if (name.size() > 6 && name[0] == 'v' && name.ends_with(".toml") && keep.count(name) == 0) {
            std::filesystem::remove(entry.path(), ec);
            for (auto it = m_written.begin(); it != m_written.end();) {
                it = version_file(it->first) == name ? m_written.erase(it) : std::next(it);
            }
        }
    }
    return true;
}

saved_state capture_state(const config_manager& manager, const std::string& file_hash,
                          const history_entry* pending) {
    saved_state s;
    s.next_version = manager.next_version() + (pending != nullptr ? 1 : 0);
    s.file_hash = file_hash;
    std::vector<const history_entry*> entries;
    for (const history_entry& e : manager.history()) {
        entries.push_back(&e);
    }
    if (pending != nullptr) {
        entries.push_back(pending);
    }
    while (entries.size() > manager.keep()) {
        entries.erase(entries.begin());
    }
    // The baseline's versions that left the kept history go first (they are older).
    std::vector<const history_entry*> pinned;
    for (const history_entry& e : manager.pinned()) {
        pinned.push_back(&e);
    }
    entries.insert(entries.begin(), pinned.begin(), pinned.end());
    for (const history_entry* ep : entries) {
        const history_entry& e = *ep;
        saved_version v;
        v.version = e.version;
        v.at_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(e.at.time_since_epoch()).count();
        v.who = e.who;
        v.origin = e.origin;
        v.diff = e.diff;
        v.text = e.cfg->source_text;
        v.accepted_shift = e.accepted_shift;
        v.accepted_from = e.accepted_from;
        v.rollback_of = e.rollback_of;
        v.baseline = e.baseline;
        s.history.push_back(std::move(v));
    }
    for (const auto& [service, backend, state] : manager.admin_states(*entries.back()->cfg)) {
        s.admin.push_back(saved_admin{service, backend, state});
    }
    return s;
}

} // namespace evenflow::control
