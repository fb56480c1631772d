#include "control/changes.hpp"

#include "config/diff.hpp"
#include "config/settings.hpp"
#include "control/low_priority.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include <unistd.h>

namespace evenflow::control {

using api::json;

namespace {

std::string diagnostics_text(const config::load_result& r) {
    std::vector<std::string> lines;
    for (const auto& d : r.errors) {
        lines.push_back(d.to_string());
    }
    return fmt::format("{}", fmt::join(lines, "\n"));
}

json refusal_reply(const std::string& message, uint64_t version) {
    json reply = api::error_reply(message, true);
    reply["version"] = version;
    return reply;
}

actor daemon_actor(const char* via) {
    return actor{uint32_t(getuid()), int32_t(getpid()), via};
}

} // namespace

// One queued change, from the request to its publication.
struct change_pipeline::change {
    change_kind what = change_kind::states;
    reply_fn reply; // who waits for the answer
    actor who;
    std::string origin;
    // apply: the review running off the loop, then its verdict
    std::future<apply_evaluation> evaluation;
    bool dry_run = false;                 // evenctl diff: the verdict, nothing applied
    bool shift_accepted = false;          // --accept-shift let a refusal through
    std::vector<std::string> shift_lines; // ...this one
    // rollback
    std::optional<uint64_t> target_version;
    std::string why;          // an automatic rollback's reason
    uint64_t from = 0;        // the version it rolls back from
    uint64_t rollback_of = 0; // the version it rolls back to
    // admin
    std::string service, backend;
    admin_state admin = admin_state::enabled;
    admin_state admin_before = admin_state::enabled; // undone if not saved
    // the build
    std::shared_ptr<const config::config> cfg;
    std::vector<std::string> diff;
    bool new_version = false;
    uint64_t states_generation = 0;
    std::unique_ptr<snapshot_builder> builder;

    bool automatic() const { return who.via == "skew-guard"; }
    void answer(const json& r) const {
        if (reply) {
            reply(r);
        }
    }
};

change_pipeline::change_pipeline(host h, std::string config_path,
                                 std::chrono::steady_clock::duration build_slice,
                                 size_t keep_versions)
    : m_host(std::move(h)), m_config_path(std::move(config_path)), m_build_slice(build_slice),
      m_manager(keep_versions) {}

change_pipeline::~change_pipeline() = default;

change_pipeline::change& change_pipeline::enqueue(change_kind what, const actor& who,
                                                  reply_fn reply) {
    auto c = std::make_unique<change>();
    c->what = what;
    c->who = who;
    c->reply = std::move(reply);
    m_queue.push_back(std::move(c));
    return *m_queue.back();
}

void change_pipeline::log_change(const char* event, uint64_t version, const change& c,
                                 std::initializer_list<log_field> extra) {
    std::vector<log_field> fields{{"version", std::to_string(version)},
                                  {"origin", c.origin},
                                  {"uid", std::to_string(c.who.uid)},
                                  {"pid", std::to_string(c.who.pid)},
                                  {"via", c.who.via},
                                  {"changes", std::to_string(c.diff.size())}};
    fields.insert(fields.end(), extra.begin(), extra.end());
    log_event(c.automatic() ? "warning" : "info", event, fields);
    // The change lines in the next iteration: ten thousand of them take a while.
    defer([diff = c.diff, v = std::to_string(version)] {
        log_batch changes;
        for (const std::string& line : diff) {
            changes.add("info", "apply_change", {{"version", v}, {"change", line}});
        }
    });
}

void change_pipeline::refuse(change& c, const std::string& counter, const std::string& reason,
                             json reply, std::initializer_list<log_field> extra) {
    ++m_counters.refused[counter];
    std::vector<log_field> fields{{"reason", reason},
                                  {"origin", c.origin},
                                  {"uid", std::to_string(c.who.uid)},
                                  {"pid", std::to_string(c.who.pid)},
                                  {"via", c.who.via},
                                  {"version", std::to_string(m_manager.version())}};
    fields.insert(fields.end(), extra.begin(), extra.end());
    log_event("warning", "apply_refused", fields);
    c.answer(reply);
}

void change_pipeline::request_apply(loader load, const actor& who, std::string origin,
                                    bool accept_shift, reply_fn reply, bool dry_run) {
    change& c = enqueue(change_kind::apply, who, std::move(reply));
    c.origin = std::move(origin);
    c.dry_run = dry_run;
    std::shared_ptr<const config::config> running = m_manager.history().back().cfg;
    // The series baseline: the candidate is judged against it, not only the running one.
    series story;
    auto base = m_manager.baseline(std::chrono::system_clock::now());
    if (base.entry != nullptr && !base.since.empty()) {
        story.baseline_version = base.entry->version;
        story.baseline_at = base.entry->at;
        story.baseline = base.entry->cfg;
        for (const history_entry* e : base.since) {
            story.steps.push_back(fmt::format("v{} uid {}{}", e->version, e->who.uid,
                                              e->rollback_of != 0 ? " rollback" : ""));
        }
    }
    c.evaluation =
        std::async(std::launch::async, [load = std::move(load), running = std::move(running),
                                        accept_shift, story = std::move(story)] {
            lower_this_thread_priority();
            return evaluate_apply(load(), running, accept_shift, story);
        });
}

void change_pipeline::request_reload() {
    // SIGHUP has no way to say "I accept the shift": a large one is refused and
    // logged; `evenctl apply FILE --accept-shift` is the deliberate path.
    request_apply([path = m_config_path] { return config::load_file(path); },
                  daemon_actor("sighup"), fmt::format("reload {}", m_config_path), false, {});
}

void change_pipeline::request_rollback(std::optional<uint64_t> version, const actor& who,
                                       std::string why, reply_fn reply) {
    change& c = enqueue(change_kind::rollback, who, std::move(reply));
    c.target_version = version;
    c.why = std::move(why);
}

void change_pipeline::request_admin(std::string service, std::string backend, admin_state state,
                                    const actor& who, reply_fn reply) {
    change& c = enqueue(change_kind::admin, who, std::move(reply));
    c.service = std::move(service);
    c.backend = std::move(backend);
    c.admin = state;
}

void change_pipeline::request_states_rebuild() {
    // One rebuild waiting is enough: it takes the states as they are when it starts.
    for (const auto& c : m_queue) {
        if (c->what == change_kind::states && !c->builder) {
            return;
        }
    }
    enqueue(change_kind::states, daemon_actor("health"), {});
}

bool change_pipeline::roll_back_automatically(const std::string& why) {
    if (!m_probation.should_roll_back(std::chrono::steady_clock::now(), m_manager.running().skew,
                                      m_manager.history().size())) {
        return false;
    }
    for (const auto& c : m_queue) {
        if (c->what == change_kind::rollback && c->automatic()) {
            return false; // one is on its way
        }
    }
    request_rollback(std::nullopt, daemon_actor("skew-guard"), why, {});
    return true;
}

void change_pipeline::answer_dry_run(change& c, const apply_evaluation& e) {
    json reply = api::ok_reply();
    reply["version"] = m_manager.version();
    reply["verdict"] = to_string(e.verdict);
    reply["diff"] = e.diff;
    reply["shift"] = e.shift_lines;
    if (e.verdict == apply_verdict::invalid) {
        reply["error"] = diagnostics_text(e.loaded);
    } else if (e.verdict == apply_verdict::restart) {
        reply["error"] = e.error;
    }
    c.answer(reply);
}

// Reviews the front change for its build; false when it was answered and dropped (or
// must wait: an apply still under review).
bool change_pipeline::prepare(change& c, bool* wait) {
    *wait = false;
    switch (c.what) {
    case change_kind::apply: {
        if (c.evaluation.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
            *wait = true;
            return false;
        }
        apply_evaluation e = c.evaluation.get();
        if (c.dry_run) {
            answer_dry_run(c, e);
            return false;
        }
        switch (e.verdict) {
        case apply_verdict::invalid:
            refuse(
                c, "invalid", "invalid config",
                refusal_reply(diagnostics_text(e.loaded), m_manager.version()),
                {{"errors", std::to_string(e.loaded.errors.size())},
                 {"first_error", e.loaded.errors.empty() ? "" : e.loaded.errors[0].to_string()}});
            return false;
        case apply_verdict::shift: {
            json reply = refusal_reply("refused: this config shifts traffic too far (evenctl "
                                       "apply FILE --accept-shift to apply it anyway):\n  " +
                                           fmt::format("{}", fmt::join(e.shift_lines, "\n  ")),
                                       m_manager.version());
            reply["shift"] = e.shift_lines;
            refuse(c, "shift", "distribution shift", reply,
                   {{"shift", fmt::format("{}", fmt::join(e.shift_lines, "; "))}});
            return false;
        }
        case apply_verdict::restart:
            refuse(c, "restart", e.error, refusal_reply(e.error, m_manager.version()));
            return false;
        case apply_verdict::unchanged: {
            if (e.cfg && note_file_text(e.cfg->source_text, c.who.via == "sighup")) {
                if (std::string error; !save_state(nullptr, &error)) {
                    log_event("warning", "state_not_saved", {{"reason", error}});
                }
            }
            json reply = api::ok_reply();
            reply["version"] = m_manager.version();
            reply["changed"] = false;
            reply["diff"] = json::array();
            c.answer(reply);
            return false;
        }
        case apply_verdict::accept:
            c.shift_accepted = e.shift_accepted;
            c.shift_lines = std::move(e.shift_lines);
            c.cfg = std::move(e.cfg);
            c.diff = std::move(e.diff);
            c.new_version = true;
            return true;
        }
        return false;
    }
    case change_kind::rollback: {
        std::string error;
        uint64_t target = 0;
        c.cfg = m_manager.rollback_target(c.target_version, &target, &error);
        if (!c.cfg) {
            log_event("warning", c.automatic() ? "auto_rollback_failed" : "rollback_refused",
                      {{"reason", error}, {"why", c.why}});
            c.answer(api::error_reply(error, true));
            return false;
        }
        if (c.automatic()) {
            // Verdicts reached under the bad config (a wrong health port, say) go with
            // it, before the rollback builds its snapshot.
            m_manager.forget_health();
            if (m_host.on_automatic_rollback) {
                m_host.on_automatic_rollback();
            }
        }
        c.origin = fmt::format("rollback to {}", target);
        c.rollback_of = target;
        c.from = m_manager.version();
        c.diff = config::diff(m_manager.running(), *c.cfg);
        c.new_version = true;
        return true;
    }
    case change_kind::admin: {
        std::string error;
        c.admin_before = admin_state::enabled;
        for (const auto& [service, backend, state] : m_manager.admin_states(m_manager.running())) {
            if (service == c.service && backend == c.backend) {
                c.admin_before = state;
            }
        }
        if (!m_manager.set_admin_state(c.service, c.backend, c.admin, &error)) {
            c.answer(api::error_reply(error, true));
            return false;
        }
        c.diff.push_back(
            fmt::format("~ backend {} {}: {}", c.service, c.backend, to_string(c.admin)));
        c.cfg = m_manager.history().back().cfg;
        return true;
    }
    case change_kind::states:
        c.cfg = m_manager.history().back().cfg;
        return true;
    }
    return false;
}

void change_pipeline::reclaim_ids_if_short() {
    if (m_manager.registry().assigned() <= backend_registry::max_ids * 3 / 4) {
        return;
    }
    // Backends come and go faster than ids run out: free those nothing refers to any
    // more (no kept version, no live flow for a minute).
    size_t freed = m_manager.reclaim_ids(
        std::chrono::steady_clock::now(), std::chrono::minutes(1),
        [&](uint32_t id) { return m_host.backend_in_use ? m_host.backend_in_use(id) : false; });
    log_event("info", "backend_ids_reclaimed",
              {{"freed", std::to_string(freed)},
               {"in_use", std::to_string(m_manager.registry().assigned())}});
}

void change_pipeline::advance() {
    if (!m_deferred.empty()) {
        auto next = std::move(m_deferred.front());
        m_deferred.pop_front();
        next();
        return;
    }
    while (!m_queue.empty()) {
        change& c = *m_queue.front();
        if (!c.builder) {
            bool wait = false;
            if (!prepare(c, &wait)) {
                if (wait) {
                    return;
                }
                m_queue.pop_front();
                continue;
            }
            reclaim_ids_if_short();
            uint64_t version = c.new_version ? m_manager.next_version() : m_manager.version();
            c.states_generation = m_manager.states_generation();
            c.builder = m_manager.builder_for(
                c.cfg, version, m_host.running_snapshot ? m_host.running_snapshot() : nullptr);
        }
        if (!c.builder->step(m_build_slice)) {
            return; // more in the next call
        }
        finish(c);
        bool stale = m_manager.states_generation() != c.states_generation;
        m_queue.pop_front();
        if (stale) {
            request_states_rebuild(); // verdicts arrived during the build
        }
        return; // one publication per call: the host's other work comes first
    }
}

void change_pipeline::finish(change& c) {
    build_result built = c.builder->finish();
    if (!built.value) {
        log_event("warning", "build_failed", {{"reason", built.error}, {"origin", c.origin}});
        c.answer(refusal_reply(built.error, m_manager.version()));
        return;
    }
    // Durable before it takes effect: a crash after this point resumes it.
    if (c.what != change_kind::states) {
        history_entry pending;
        if (c.new_version) {
            pending.version = m_manager.next_version();
            pending.at = std::chrono::system_clock::now();
            pending.who = c.who;
            pending.origin = c.origin;
            pending.diff = c.diff;
            pending.cfg = c.cfg;
            note_file_text(c.cfg->source_text, c.who.via == "sighup");
        }
        if (std::string error; !save_state(c.new_version ? &pending : nullptr, &error)) {
            if (c.what == change_kind::admin) {
                // Undone; unless verdicts came during the build, the states are the
                // published ones again and need no rebuild.
                bool untouched = m_manager.states_generation() == c.states_generation;
                std::string ignored;
                m_manager.set_admin_state(c.service, c.backend, c.admin_before, &ignored);
                if (untouched) {
                    c.states_generation = m_manager.states_generation();
                }
            }
            ++m_counters.refused["state"];
            log_event("warning", "change_not_saved",
                      {{"reason", error}, {"origin", c.origin}, {"via", c.who.via}});
            c.answer(refusal_reply("refused: cannot save it in state_dir: " + error,
                                   m_manager.version()));
            return;
        }
    }
    uint64_t version = m_manager.version();
    if (c.new_version) {
        version =
            m_manager.record(c.cfg, c.who, c.origin, c.diff, {c.shift_accepted, c.rollback_of});
    }
    auto now = std::chrono::steady_clock::now();
    switch (c.what) {
    case change_kind::apply:
        ++m_counters.applies;
        m_probation.on_apply(now);
        if (c.shift_accepted) {
            // The history says who moved the baseline, and the log says past what.
            log_change("apply", version, c,
                       {{"accepted_shift", fmt::format("{}", fmt::join(c.shift_lines, "; "))},
                        {"baseline", std::to_string(version)}});
        } else {
            log_change("apply", version, c);
        }
        break;
    case change_kind::rollback:
        if (c.automatic()) {
            ++m_counters.rollbacks["automatic"];
            auto since_apply = m_probation.since_apply(now);
            m_probation.on_rollback(); // probation ends with the rollback
            log_change("auto_rollback", version, c,
                       {{"from", std::to_string(c.from)},
                        {"why", c.why},
                        {"since_apply_s", fmt::format("{:.1f}", since_apply.value_or(0))}});
        } else {
            ++m_counters.rollbacks["operator"];
            log_change("rollback", version, c);
        }
        break;
    case change_kind::admin:
        log_event("info", "backend_admin",
                  {{"service", c.service},
                   {"backend", c.backend},
                   {"state", std::string(to_string(c.admin))},
                   {"version", std::to_string(version)},
                   {"uid", std::to_string(c.who.uid)},
                   {"pid", std::to_string(c.who.pid)},
                   {"via", c.who.via}});
        break;
    case change_kind::states:
        break;
    }
    m_host.publish(
        std::move(built.value),
        publication{c.what, c.new_version, c.what == change_kind::rollback && c.automatic()});
    json reply = api::ok_reply();
    reply["version"] = m_manager.version();
    reply["changed"] = true;
    reply["diff"] = c.diff;
    c.answer(reply);
}

// ---- the state directory

bool change_pipeline::note_file_text(const std::string& text, bool from_file) {
    std::string hash = text_hash(text);
    if (hash == m_file_hash) {
        return false;
    }
    if (!from_file) {
        // `evenctl apply FILE` (systemctl reload) of the file's own text counts as
        // having read the file.
        std::ifstream in(m_config_path, std::ios::binary);
        std::ostringstream file;
        file << in.rdbuf();
        if (!in || text_hash(file.str()) != hash) {
            return false;
        }
    }
    m_file_hash = hash;
    return true;
}

bool change_pipeline::save_state(const history_entry* pending, std::string* error) {
    if (!m_state.is_open()) {
        return true;
    }
    if (!m_state.save(capture_state(m_manager, m_file_hash, pending), error)) {
        m_state_error = *error;
        return false;
    }
    m_state_error.clear();
    return true;
}

// The saved version when it may be resumed, else the file's; says which in the log.
change_result change_pipeline::first_version(const config::config& file_cfg) {
    actor who = daemon_actor("startup");
    m_file_hash = text_hash(file_cfg.source_text);
    const std::string& dir = file_cfg.control.state_dir;
    std::string reason;
    bool trouble = false; // a state that should have been usable and was not
    if (dir.empty()) {
        reason = "state_dir is \"\": no state is kept";
    } else if (std::string error; !m_state.open(dir, &error)) {
        reason = error;
        trouble = true;
    }
    if (!file_cfg.dataplane.hash_seed) {
        m_manager.set_fallback_seed(host_hash_seed()); // before any snapshot is built
    }
    if (!m_state.is_open()) {
        // nothing to resume (reason says why)
    } else if (auto saved = m_state.load(&reason); !saved) {
        trouble = reason.rfind("no state saved", 0) != 0;
        m_manager.continue_numbering(m_state.highest_version_file() + 1);
    } else {
        m_manager.continue_numbering(saved->next_version);
        if (saved->file_hash != m_file_hash) {
            reason = fmt::format("{} changed since version {} was saved: the file is the "
                                 "desired state",
                                 m_config_path, saved->history.back().version);
        } else {
            std::vector<history_entry> entries;
            for (saved_version& v : saved->history) {
                std::string name = fmt::format("{}/v{}.toml", dir, v.version);
                config::load_result loaded = config::load_string(v.text, name);
                if (!loaded.ok()) {
                    reason = fmt::format("saved version {} does not load: {}", v.version,
                                         loaded.errors.empty() ? "" : loaded.errors[0].to_string());
                    break;
                }
                history_entry e;
                e.version = v.version;
                e.at = std::chrono::system_clock::time_point(std::chrono::milliseconds(v.at_ms));
                e.who = v.who;
                e.origin = v.origin;
                e.diff = v.diff;
                e.accepted_shift = v.accepted_shift;
                e.accepted_from = v.accepted_from;
                e.rollback_of = v.rollback_of;
                e.baseline = v.baseline;
                e.cfg = std::make_shared<const config::config>(std::move(*loaded.value));
                entries.push_back(std::move(e));
            }
            if (reason.empty()) {
                reason = config::restart_required(file_cfg, *entries.back().cfg);
            }
            if (reason.empty()) {
                std::vector<config_manager::named_admin> admin;
                for (const saved_admin& a : saved->admin) {
                    admin.emplace_back(a.service, a.backend, a.state);
                }
                std::vector<std::string> skipped;
                change_result resumed =
                    m_manager.resume(std::move(entries), saved->next_version, admin, &skipped);
                if (resumed.ok) {
                    m_start_origin = {
                        "resumed", resumed.version,
                        fmt::format("resumed version {} from {}", resumed.version, dir)};
                    log_event("info", "state_resumed",
                              {{"version", std::to_string(resumed.version)},
                               {"dir", dir},
                               {"versions", std::to_string(m_manager.history().size())},
                               {"admin_states", std::to_string(admin.size() - skipped.size())},
                               {"file", m_config_path}});
                    for (const std::string& s : skipped) {
                        log_event("warning", "state_admin_skipped", {{"state", s}});
                    }
                    return resumed;
                }
                reason = resumed.error;
            }
            reason = "the saved state cannot be resumed: " + reason;
            trouble = true;
        }
    }
    change_result first = m_manager.start(file_cfg, who, fmt::format("start {}", m_config_path));
    if (first.ok) {
        m_start_origin = {"file", first.version, reason};
        log_event(trouble ? "warning" : "info", "state_not_resumed",
                  {{"version", std::to_string(first.version)},
                   {"file", m_config_path},
                   {"dir", dir},
                   {"reason", reason}});
    }
    return first;
}

change_result change_pipeline::start(const config::config& file_cfg) {
    change_result r = first_version(file_cfg);
    // What runs is saved at once, with the file's hash, so that a crash from here on
    // resumes it.
    if (std::string error; r.ok && !save_state(nullptr, &error)) {
        log_event("warning", "state_not_saved", {{"reason", error}});
    }
    return r;
}

net::hash_seed change_pipeline::host_hash_seed() {
    // The file sets no [dataplane] hash_seed: this host's own, generated once and kept
    // in state_dir so that a restart picks as before. Other hosts pick otherwise
    // (evenctl check warns). Never logged: the file's path is.
    if (m_state.is_open()) {
        std::string error;
        if (auto kept = m_state.load_hash_seed(&error)) {
            return *kept;
        }
        if (!error.empty()) {
            log_event("warning", "hash_seed_unreadable", {{"reason", error}});
        }
        net::hash_seed seed = net::hash_seed::random();
        if (!m_state.save_hash_seed(seed, &error)) {
            log_event("warning", "hash_seed_not_kept", {{"reason", error}});
        } else {
            log_event("info", "hash_seed_generated", {{"kept_in", m_state.dir()}});
        }
        return seed;
    }
    log_event("warning", "hash_seed_generated",
              {{"kept_in", ""},
               {"reason", "no hash_seed in the file and no state_dir: picks change at restart"}});
    return net::hash_seed::random();
}

} // namespace evenflow::control
