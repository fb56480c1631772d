// The one path by which configurations and backend states reach the workers:
// evenctl apply and SIGHUP, rollbacks by an operator or by the guard, drain /
// enable / disable, and health verdicts. Every change waits its turn in one queue:
//   1. an apply is parsed and reviewed (guard, restart check, diff) on a thread of
//      its own: pure work on immutable inputs (lib/control/guard.hpp);
//   2. its snapshot is built a slice at a time between the control loop's other work
//      (snapshot_builder), sharing the tables of services it does not touch;
//   3. it is recorded as a version, stamped, published with RCU, logged in one format
//      (event, version, origin, uid, pid, via, one apply_change line per change), and
//      the client that asked gets its answer then.
// Health verdicts that arrive while a build runs are batched into one rebuild after it.
// Before a version, or an admin state, takes effect it is saved in [control] state_dir
// (lib/control/state_store.hpp); at start the saved version is resumed when the file
// is the one last read (first_version).
#include "daemon.hpp"
#include "low_priority.hpp"

#include "config/diff.hpp"
#include "config/load.hpp"
#include "config/settings.hpp"
#include "control/guard.hpp"
#include "control/log.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include <arpa/inet.h>
#include <unistd.h>

namespace evenflow::daemon {

using api::json;
using control::log_event;

namespace {

// The longest a build may hold the control loop in one go.
constexpr auto build_slice = std::chrono::milliseconds(4);

std::string join(const std::vector<std::string>& lines, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
        out += (i ? std::string(sep) : std::string()) + lines[i];
    }
    return out;
}

std::string diagnostics_text(const config::load_result& r) {
    std::vector<std::string> lines;
    for (const auto& d : r.errors) {
        lines.push_back(d.to_string());
    }
    return join(lines, "\n");
}

json refusal_reply(const std::string& message, uint64_t version) {
    json reply = api::error_reply(message, true);
    reply["version"] = version;
    return reply;
}

} // namespace

evenflowd::change& evenflowd::enqueue(change_kind what, const control::actor& who,
                                      std::optional<control_server::ticket> ticket) {
    auto c = std::make_unique<change>();
    c->what = what;
    c->who = who;
    c->ticket = ticket;
    m_changes.push_back(std::move(c));
    return *m_changes.back();
}

bool evenflowd::changes_pending() const {
    return !m_changes.empty() || !m_followups.empty();
}

void evenflowd::answer(change& c, const json& reply) {
    if (c.ticket) {
        m_server.reply(*c.ticket, reply);
    }
}

void evenflowd::log_change(const char* event, uint64_t version, const change& c,
                           std::initializer_list<control::log_field> extra) {
    std::vector<control::log_field> fields{{"version", std::to_string(version)},
                                           {"origin", c.origin},
                                           {"uid", std::to_string(c.who.uid)},
                                           {"pid", std::to_string(c.who.pid)},
                                           {"via", c.who.via},
                                           {"changes", std::to_string(c.diff.size())}};
    fields.insert(fields.end(), extra.begin(), extra.end());
    log_event(c.who.via == "skew-guard" ? "warning" : "info", event, fields);
    // The change lines in the next iteration: ten thousand of them take a while.
    m_followups.push_back([diff = c.diff, v = std::to_string(version)] {
        control::log_batch changes;
        for (const std::string& line : diff) {
            changes.add("info", "apply_change", {{"version", v}, {"change", line}});
        }
    });
}

void evenflowd::refuse(change& c, const std::string& counter, const std::string& reason, json reply,
                       std::initializer_list<control::log_field> extra) {
    ++m_refused[counter];
    std::vector<control::log_field> fields{{"reason", reason},
                                           {"origin", c.origin},
                                           {"uid", std::to_string(c.who.uid)},
                                           {"pid", std::to_string(c.who.pid)},
                                           {"via", c.who.via},
                                           {"version", std::to_string(m_manager.version())}};
    fields.insert(fields.end(), extra.begin(), extra.end());
    log_event("warning", "apply_refused", fields);
    answer(c, reply);
}

void evenflowd::request_apply(config::load_result (*load)(const std::string&, const std::string&),
                              std::string source, std::string path, const control::actor& who,
                              std::string origin, bool accept_shift,
                              std::optional<control_server::ticket> ticket, bool dry_run) {
    change& c = enqueue(change_kind::apply, who, ticket);
    c.origin = std::move(origin);
    c.dry_run = dry_run;
    std::shared_ptr<const config::config> running = m_manager.history().back().cfg;
    // The series baseline: the candidate is judged against it, not only the running one.
    control::series story;
    auto base = m_manager.baseline(std::chrono::system_clock::now());
    if (base.entry != nullptr && !base.since.empty()) {
        story.baseline_version = base.entry->version;
        story.baseline_at = base.entry->at;
        story.baseline = base.entry->cfg;
        for (const control::history_entry* e : base.since) {
            story.steps.push_back(fmt::format("v{} uid {}{}", e->version, e->who.uid,
                                              e->rollback_of != 0 ? " rollback" : ""));
        }
    }
    c.evaluation = std::async(
        std::launch::async, [load, source = std::move(source), path = std::move(path),
                             running = std::move(running), accept_shift, story = std::move(story)] {
            lower_this_thread_priority();
            return control::evaluate_apply(load(source, path), running, accept_shift, story);
        });
}

void evenflowd::answer_dry_run(change& c, const control::apply_evaluation& e) {
    json reply = api::ok_reply();
    reply["version"] = m_manager.version();
    reply["verdict"] = control::to_string(e.verdict);
    reply["diff"] = e.diff;
    reply["shift"] = e.shift_lines;
    if (e.verdict == control::apply_verdict::invalid) {
        reply["error"] = diagnostics_text(e.loaded);
    } else if (e.verdict == control::apply_verdict::restart) {
        reply["error"] = e.error;
    }
    answer(c, reply);
}

void evenflowd::request_rollback(std::optional<uint64_t> version, const control::actor& who,
                                 std::string why, std::optional<control_server::ticket> ticket) {
    change& c = enqueue(change_kind::rollback, who, ticket);
    c.target_version = version;
    c.why = std::move(why);
}

void evenflowd::request_admin(std::string service, std::string backend, control::admin_state state,
                              const control::actor& who, control_server::ticket ticket) {
    change& c = enqueue(change_kind::admin, who, ticket);
    c.service = std::move(service);
    c.backend = std::move(backend);
    c.admin = state;
}

void evenflowd::request_states_rebuild() {
    // One rebuild waiting is enough: it takes the states as they are when it starts.
    for (const auto& c : m_changes) {
        if (c->what == change_kind::states && !c->builder) {
            return;
        }
    }
    enqueue(change_kind::states, control::actor{uint32_t(getuid()), int32_t(getpid()), "health"},
            std::nullopt);
}

void evenflowd::reload_from_file() {
    control::actor who{uint32_t(getuid()), int32_t(getpid()), "sighup"};
    // SIGHUP has no way to say "I accept the shift": a large one is refused and
    // logged; `evenctl apply FILE --accept-shift` is the deliberate path.
    request_apply(
        [](const std::string& path, const std::string&) { return config::load_file(path); },
        m_options.config_path, m_options.config_path, who,
        fmt::format("reload {}", m_options.config_path), false, std::nullopt);
}

// Prepares the front change for its build; false when it was answered and dropped
// (or must wait: an apply still under review).
bool evenflowd::prepare(change& c, bool* wait) {
    *wait = false;
    switch (c.what) {
    case change_kind::apply: {
        if (c.evaluation.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
            *wait = true;
            return false;
        }
        control::apply_evaluation e = c.evaluation.get();
        if (c.dry_run) {
            answer_dry_run(c, e);
            return false;
        }
        switch (e.verdict) {
        case control::apply_verdict::invalid:
            refuse(
                c, "invalid", "invalid config",
                refusal_reply(diagnostics_text(e.loaded), m_manager.version()),
                {{"errors", std::to_string(e.loaded.errors.size())},
                 {"first_error", e.loaded.errors.empty() ? "" : e.loaded.errors[0].to_string()}});
            return false;
        case control::apply_verdict::shift: {
            json reply = refusal_reply("refused: this config shifts traffic too far (evenctl "
                                       "apply FILE --accept-shift to apply it anyway):\n  " +
                                           join(e.shift_lines, "\n  "),
                                       m_manager.version());
            reply["shift"] = e.shift_lines;
            refuse(c, "shift", "distribution shift", reply, {{"shift", join(e.shift_lines, "; ")}});
            return false;
        }
        case control::apply_verdict::restart:
            refuse(c, "restart", e.error, refusal_reply(e.error, m_manager.version()));
            return false;
        case control::apply_verdict::unchanged: {
            if (e.cfg && note_file_text(e.cfg->source_text, c.who.via == "sighup")) {
                if (std::string error; !save_state(nullptr, &error)) {
                    log_event("warning", "state_not_saved", {{"reason", error}});
                }
            }
            json reply = api::ok_reply();
            reply["version"] = m_manager.version();
            reply["changed"] = false;
            reply["diff"] = json::array();
            answer(c, reply);
            return false;
        }
        case control::apply_verdict::accept:
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
        bool automatic = c.who.via == "skew-guard";
        std::string error;
        uint64_t target = 0;
        c.cfg = m_manager.rollback_target(c.target_version, &target, &error);
        if (!c.cfg) {
            log_event("warning", automatic ? "auto_rollback_failed" : "rollback_refused",
                      {{"reason", error}, {"why", c.why}});
            answer(c, api::error_reply(error, true));
            return false;
        }
        if (automatic) {
            // Verdicts reached under the bad config (a wrong health port, say) go with
            // it, before the rollback builds its snapshot.
            m_manager.forget_health();
            m_health.forget_verdicts();
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
        c.admin_before = control::admin_state::enabled;
        for (const auto& [service, backend, state] : m_manager.admin_states(m_manager.running())) {
            if (service == c.service && backend == c.backend) {
                c.admin_before = state;
            }
        }
        if (!m_manager.set_admin_state(c.service, c.backend, c.admin, &error)) {
            answer(c, api::error_reply(error, true));
            return false;
        }
        c.diff.push_back(
            fmt::format("~ backend {} {}: {}", c.service, c.backend, control::to_string(c.admin)));
        c.cfg = m_manager.history().back().cfg;
        return true;
    }
    case change_kind::states:
        c.cfg = m_manager.history().back().cfg;
        return true;
    }
    return false;
}

void evenflowd::advance_changes() {
    if (!m_followups.empty()) {
        auto next = std::move(m_followups.front());
        m_followups.pop_front();
        next();
        return;
    }
    while (!m_changes.empty()) {
        change& c = *m_changes.front();
        if (!c.builder) {
            bool wait = false;
            if (!prepare(c, &wait)) {
                if (wait) {
                    return;
                }
                m_changes.pop_front();
                continue;
            }
            if (m_manager.registry().assigned() > backend_registry::max_ids * 3 / 4) {
                // Backends come and go faster than ids run out: free those nothing
                // refers to any more (no kept version, no live flow for a minute).
                auto workers = worker_stats();
                size_t freed = m_manager.reclaim_ids(
                    std::chrono::steady_clock::now(), std::chrono::minutes(1), [&](uint32_t id) {
                        return sum(workers, id, &dataplane::backend_counters::active_flows) != 0;
                    });
                log_event("info", "backend_ids_reclaimed",
                          {{"freed", std::to_string(freed)},
                           {"in_use", std::to_string(m_manager.registry().assigned())}});
            }
            uint64_t version = c.new_version ? m_manager.next_version() : m_manager.version();
            c.states_generation = m_manager.states_generation();
            c.builder = m_manager.builder_for(c.cfg, version, m_shared.snap.load());
        }
        if (!c.builder->step(build_slice)) {
            return; // more in the next iteration of the loop
        }
        finish_change(c);
        bool stale = m_manager.states_generation() != c.states_generation;
        m_changes.pop_front();
        if (stale) {
            request_states_rebuild(); // verdicts arrived during the build
        }
        return; // one publication per iteration: the loop's other work comes first
    }
}

void evenflowd::finish_change(change& c) {
    build_result built = c.builder->finish();
    if (!built.value) {
        log_event("warning", "build_failed", {{"reason", built.error}, {"origin", c.origin}});
        answer(c, refusal_reply(built.error, m_manager.version()));
        return;
    }
    // Durable before it takes effect: a crash after this point resumes it.
    if (c.what != change_kind::states) {
        control::history_entry pending;
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
                std::string ignored;
                m_manager.set_admin_state(c.service, c.backend, c.admin_before, &ignored);
            }
            ++m_refused["state"];
            log_event("warning", "change_not_saved",
                      {{"reason", error}, {"origin", c.origin}, {"via", c.who.via}});
            answer(c, refusal_reply("refused: cannot save it in state_dir: " + error,
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
        ++m_applies;
        m_probation.on_apply(now);
        if (c.shift_accepted) {
            // The history says who moved the baseline, and the log says past what.
            log_change("apply", version, c,
                       {{"accepted_shift", join(c.shift_lines, "; ")},
                        {"baseline", std::to_string(version)}});
        } else {
            log_change("apply", version, c);
        }
        break;
    case change_kind::rollback:
        if (c.who.via == "skew-guard") {
            ++m_rollbacks["automatic"];
            m_skew.reset_windows();
            auto since_apply = m_probation.since_apply(now);
            m_probation.on_rollback(); // probation ends with the rollback
            log_change("auto_rollback", version, c,
                       {{"from", std::to_string(c.from)},
                        {"why", c.why},
                        {"since_apply_s", fmt::format("{:.1f}", since_apply.value_or(0))}});
        } else {
            ++m_rollbacks["operator"];
            log_change("rollback", version, c);
        }
        break;
    case change_kind::admin:
        log_event("info", "backend_admin",
                  {{"service", c.service},
                   {"backend", c.backend},
                   {"state", std::string(control::to_string(c.admin))},
                   {"version", std::to_string(version)},
                   {"uid", std::to_string(c.who.uid)},
                   {"pid", std::to_string(c.who.pid)},
                   {"via", c.who.via}});
        break;
    case change_kind::states:
        break;
    }
    publish(std::move(built.value));
    if (c.new_version) {
        m_followups.push_back([this] { after_config_change(); });
        // Shares against the series baseline (status, /metrics), in an iteration of
        // their own: at ten thousand backends they take a few milliseconds.
        m_followups.push_back([this] { drift(); });
    }
    json reply = api::ok_reply();
    reply["version"] = m_manager.version();
    reply["changed"] = true;
    reply["diff"] = c.diff;
    answer(c, reply);
}

void evenflowd::publish(std::unique_ptr<snapshot> snap) {
    auto now = std::chrono::steady_clock::now();
    bool in_probation = m_probation.active(now, m_manager.running().skew);
    for (const auto& kept : m_stamper.stamp(*snap, dataplane::worker::now_ms(), in_probation)) {
        log_event("warning", "probation_keeps_flows",
                  {{"service", kept.service},
                   {"down_weight", std::to_string(kept.down_weight)},
                   {"total_weight", std::to_string(kept.total_weight)},
                   {"action", "established flows of down backends kept, not reset"},
                   {"version", std::to_string(m_manager.version())}});
    }
    m_reclaimer.retire(m_shared.snap.replace(std::move(snap), *m_qsbr));
    m_samples_of = nullptr; // the old snapshot is gone; its address may come back
    m_labels_of = nullptr;
    // What follows the snapshot runs in the next iterations, each on its own, so that
    // a publication at ten thousand backends does not hold the loop in one piece.
    m_followups.push_back(
        [this] { m_health.sync(*m_shared.snap.load(), std::chrono::steady_clock::now()); });
    m_followups.push_back([this] { update_no_backend_alarms(); });
}

void evenflowd::after_config_change() {
    m_skew.reconfigure(m_manager.running().skew);
    m_slow_path->want_neighbors(m_manager.running());
    m_slow_path->announce_vips(*m_shared.snap.load());
}

bool evenflowd::on_probe_reply(const net::packet_meta& meta, uint32_t ack) {
    namespace flag = net::tcp_flag;
    bool syn_ack = (meta.tcp_flags & (flag::syn | flag::ack)) == (flag::syn | flag::ack);
    return m_health.on_reply(meta.key.src, ntohs(meta.key.src_port), ntohs(meta.key.dst_port),
                             syn_ack ? control::health_checker::reply_kind::syn_ack
                                     : control::health_checker::reply_kind::rst,
                             ack, std::chrono::steady_clock::now());
}

void evenflowd::health_tick() {
    auto now = std::chrono::steady_clock::now();
    for (const auto& p : m_health.due(now)) {
        m_slow_path->send_tcp_syn(p.address, p.port, p.src_port, p.seq);
    }
    bool changed = false;
    control::log_batch lines; // a rack failing is thousands of verdicts: one write
    for (const auto& t : m_health.take_transitions(now)) {
        lines.add(t.to == control::health_verdict::down ? "warning" : "info", "health",
                  {{"service", t.service},
                   {"backend", t.backend},
                   {"from", std::string(control::to_string(t.from))},
                   {"to", std::string(control::to_string(t.to))},
                   {"reason", t.reason},
                   {"version", std::to_string(m_manager.version())}});
        changed |= m_manager.record_health(t.backend_id, t.to);
    }
    if (changed) {
        request_states_rebuild(); // all of this tick's verdicts, one publication
    }
}

void evenflowd::update_no_backend_alarms() {
    std::string first_raised;
    control::log_batch lines;
    for (const auto& c :
         m_no_backend.update(*m_shared.snap.load(), std::chrono::system_clock::now())) {
        lines.add(c.raised ? "warning" : "info", c.raised ? "no_backend_alarm" : "no_backend_clear",
                  {{"service", c.service}, {"version", std::to_string(m_manager.version())}});
        if (c.raised && first_raised.empty()) {
            first_raised = c.service;
        }
    }
    if (!first_raised.empty()) {
        maybe_roll_back(fmt::format("no backend up for service {}", first_raised));
    }
}

void evenflowd::maybe_roll_back(const std::string& why) {
    if (!m_probation.should_roll_back(std::chrono::steady_clock::now(), m_manager.running().skew,
                                      m_manager.history().size())) {
        return;
    }
    for (const auto& c : m_changes) {
        if (c->what == change_kind::rollback && c->who.via == "skew-guard") {
            return; // one is on its way
        }
    }
    request_rollback(std::nullopt,
                     control::actor{uint32_t(getuid()), int32_t(getpid()), "skew-guard"}, why,
                     std::nullopt);
}

} // namespace evenflow::daemon

namespace evenflow::daemon {

bool evenflowd::note_file_text(const std::string& text, bool from_file) {
    std::string hash = control::text_hash(text);
    if (hash == m_file_hash) {
        return false;
    }
    if (!from_file) {
        // `evenctl apply FILE` (systemctl reload) of the file's own text counts as
        // having read the file.
        std::ifstream in(m_options.config_path, std::ios::binary);
        std::ostringstream file;
        file << in.rdbuf();
        if (!in || control::text_hash(file.str()) != hash) {
            return false;
        }
    }
    m_file_hash = hash;
    return true;
}

bool evenflowd::save_state(const control::history_entry* pending, std::string* error) {
    if (!m_state.is_open()) {
        return true;
    }
    if (!m_state.save(control::capture_state(m_manager, m_file_hash, pending), error)) {
        m_state_error = *error;
        return false;
    }
    m_state_error.clear();
    return true;
}

control::change_result evenflowd::first_version(const config::config& file_cfg) {
    control::actor who{uint32_t(getuid()), int32_t(getpid()), "startup"};
    m_file_hash = control::text_hash(file_cfg.source_text);
    // The file as just read, for `status` (file_status): no second load on the loop.
    std::error_code ec;
    auto mtime = std::filesystem::last_write_time(m_options.config_path, ec);
    uintmax_t size = ec ? 0 : std::filesystem::file_size(m_options.config_path, ec);
    if (!ec) {
        m_file_check.file = std::make_unique<const config::config>(file_cfg);
        m_file_check.hash = m_file_hash;
        m_file_check.mtime = mtime;
        m_file_check.size = size;
        m_file_check.loaded = true;
    }
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
                                 m_options.config_path, saved->history.back().version);
        } else {
            std::vector<control::history_entry> entries;
            for (control::saved_version& v : saved->history) {
                std::string name = fmt::format("{}/v{}.toml", dir, v.version);
                config::load_result loaded = config::load_string(v.text, name);
                if (!loaded.ok()) {
                    reason = fmt::format("saved version {} does not load: {}", v.version,
                                         loaded.errors.empty() ? "" : loaded.errors[0].to_string());
                    break;
                }
                control::history_entry e;
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
                std::vector<control::config_manager::named_admin> admin;
                for (const control::saved_admin& a : saved->admin) {
                    admin.emplace_back(a.service, a.backend, a.state);
                }
                std::vector<std::string> skipped;
                control::change_result r =
                    m_manager.resume(std::move(entries), saved->next_version, admin, &skipped);
                if (r.ok) {
                    m_start_origin = {"resumed", r.version,
                                      fmt::format("resumed version {} from {}", r.version, dir)};
                    log_event("info", "state_resumed",
                              {{"version", std::to_string(r.version)},
                               {"dir", dir},
                               {"versions", std::to_string(m_manager.history().size())},
                               {"admin_states", std::to_string(admin.size() - skipped.size())},
                               {"file", m_options.config_path}});
                    for (const std::string& s : skipped) {
                        log_event("warning", "state_admin_skipped", {{"state", s}});
                    }
                    return r;
                }
                reason = r.error;
            }
            reason = "the saved state cannot be resumed: " + reason;
            trouble = true;
        }
    }
    control::change_result r =
        m_manager.start(file_cfg, who, fmt::format("start {}", m_options.config_path));
    if (r.ok) {
        m_start_origin = {"file", r.version, reason};
        log_event(trouble ? "warning" : "info", "state_not_resumed",
                  {{"version", std::to_string(r.version)},
                   {"file", m_options.config_path},
                   {"dir", dir},
                   {"reason", reason}});
    }
    return r;
}

net::hash_seed evenflowd::host_hash_seed() {
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

json evenflowd::file_status() {
    json out = {{"path", m_options.config_path}};
    std::error_code ec;
    auto mtime = std::filesystem::last_write_time(m_options.config_path, ec);
    uintmax_t size = ec ? 0 : std::filesystem::file_size(m_options.config_path, ec);
    if (ec) {
        out["error"] = fmt::format("cannot read {}: {}", m_options.config_path, ec.message());
        return out;
    }
    file_check& fc = m_file_check;
    const bool file_known = fc.loaded && fc.mtime == mtime && fc.size == size;
    if (file_known && fc.version == m_manager.version()) {
        return fc.result;
    }
    if (!file_known) {
        // The file is read and loaded once per change of it (at a thousand services a
        // load is ~70 ms of the control loop); a new version only diffs again.
        config::load_result loaded = config::load_file(m_options.config_path);
        fc.file = loaded.ok() ? std::make_unique<const config::config>(std::move(*loaded.value))
                              : nullptr;
        fc.error = loaded.ok() ? ""
                               : fmt::format("{} does not load ({} errors)", m_options.config_path,
                                             loaded.errors.size());
        fc.hash = loaded.ok() ? control::text_hash(fc.file->source_text) : "";
        fc.mtime = mtime;
        fc.size = size;
        fc.loaded = true;
    }
    if (fc.file == nullptr) {
        out["error"] = fc.error;
    } else {
        const config::config& running = m_manager.running();
        size_t changes = fc.file->source_text == running.source_text
                             ? 0
                             : config::diff(running, *fc.file).size();
        out["differs"] = changes != 0;
        out["changes"] = changes;
        out["hash"] = fc.hash;
    }
    fc.version = m_manager.version();
    fc.result = out;
    return out;
}

} // namespace evenflow::daemon
