// evenctl [--socket PATH] [--json] COMMAND ...
// Talks JSON lines to evenflowd over its Unix socket; `check` works offline.
// Exit codes: 0 success, 1 negative answer (check found errors, apply refused),
// 2 usage or connection errors.
//
// The command line is CLI11's, built from the shared vocabulary (all_commands() in
// lib/api/commands.cpp): one subcommand per command, its positionals and options
// as the vocabulary lists them, and the request made by parse_arguments from the same
// words; the bash completion is generated from that same CLI11 definition.
#include "api/commands.hpp"
#include "api/protocol.hpp"
#include "cli.hpp"
#include "completion.hpp"
#include "config/load.hpp"
#include "control/guard.hpp"
#include "snapshot/snapshot.hpp"
#include "table.hpp"
#include "top.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

namespace {

using evenflow::api::json;
using evenflow::evenctl::table;

constexpr int exit_ok = 0;
constexpr int exit_negative = 1;
constexpr int exit_usage = 2;

std::string percent(double share) {
    return fmt::format("{:.1f}%", share * 100.0);
}

std::optional<std::string> read_file(const std::string& path, std::string* error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        *error = fmt::format("cannot read {}", path);
        return std::nullopt;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void print_json(const json& j) {
    std::printf("%s\n", j.dump(2).c_str());
}

// ---- check (offline) ----

int cmd_check(const std::string& path, bool as_json) {
    evenflow::config::load_result loaded = evenflow::config::load_file(path);
    json out{{"ok", loaded.ok()}, {"file", path}};
    json errors = json::array(), warnings = json::array(), services = json::array();
    for (const auto& d : loaded.errors) {
        errors.push_back(d.to_string());
    }
    for (const auto& d : loaded.warnings) {
        warnings.push_back(d.to_string());
    }
    if (loaded.ok() && !loaded.value->dataplane.hash_seed) {
        evenflow::config::diagnostic d;
        d.level = evenflow::config::severity::warning;
        d.file = path;
        d.key = "dataplane.hash_seed";
        d.message = "unset: each host generates its own (kept in state_dir), so hosts behind "
                    "one ECMP group pick different backends for the same connection and a "
                    "failover moves connections; set the same value on every host "
                    "(openssl rand -hex 16)";
        warnings.push_back(d.to_string());
    }
    std::unique_ptr<evenflow::snapshot> snap;
    if (loaded.ok()) {
        evenflow::backend_registry registry;
        evenflow::build_result built = evenflow::build_snapshot(*loaded.value, registry, {}, 0);
        if (!built.value) {
            errors.push_back(built.error);
            out["ok"] = false;
        } else {
            snap = std::move(built.value);
            for (const auto& d : evenflow::control::lint(*loaded.value, *snap)) {
                if (d.level == evenflow::config::severity::error) {
                    errors.push_back(d.to_string());
                    out["ok"] = false;
                } else {
                    warnings.push_back(d.to_string());
                }
            }
            for (const auto& svc : snap->services) {
                json rows = json::array();
                for (uint32_t i : svc.backend_indexes) {
                    const auto& b = snap->backends[i];
                    rows.push_back({{"backend", b.key()},
                                    {"weight", b.weight},
                                    {"expected_share", b.expected_share},
                                    {"predicted_share", b.predicted_share},
                                    {"slots", b.slots}});
                }
                services.push_back({{"service", svc.name},
                                    {"vip", svc.vip.to_string()},
                                    {"port", svc.port},
                                    {"table_size", svc.table_size()},
                                    {"mode", evenflow::config::to_string(svc.mode)},
                                    {"hash", evenflow::config::to_string(svc.hash)},
                                    {"backends", rows}});
            }
        }
    }
    out["errors"] = errors;
    out["warnings"] = warnings;
    out["services"] = services;
    if (as_json) {
        print_json(out);
    } else {
        for (const auto& e : errors) {
            std::fprintf(stderr, "%s\n", e.get<std::string>().c_str());
        }
        for (const auto& w : warnings) {
            std::fprintf(stderr, "%s\n", w.get<std::string>().c_str());
        }
        for (const auto& svc : services) {
            std::printf("service %s %s:%d (table %zu slots, mode %s, hash %s)\n",
                        svc["service"].get<std::string>().c_str(),
                        svc["vip"].get<std::string>().c_str(), svc["port"].get<int>(),
                        svc["table_size"].get<size_t>(), svc["mode"].get<std::string>().c_str(),
                        svc["hash"].get<std::string>().c_str());
            table t({"BACKEND", "WEIGHT", "WEIGHT SHARE", "PREDICTED SHARE", "SLOTS"});
            for (const auto& b : svc["backends"]) {
                t.add({b["backend"], std::to_string(b["weight"].get<uint32_t>()),
                       percent(b["expected_share"]), percent(b["predicted_share"]),
                       std::to_string(b["slots"].get<uint32_t>())});
            }
            t.print(stdout, "  ");
        }
        if (out["ok"] == true) {
            std::printf("%s: ok (%zu warning%s)\n", path.c_str(), warnings.size(),
                        warnings.size() == 1 ? "" : "s");
        } else {
            std::printf("%s: %zu error%s\n", path.c_str(), errors.size(),
                        errors.size() == 1 ? "" : "s");
        }
    }
    return out["ok"] == true ? exit_ok : exit_negative;
}

// ---- human renderings of daemon replies ----

void render_status(const json& r) {
    std::printf("version %llu  uptime %.0fs  services %zu  backends %zu  alarms %zu  pid %d\n",
                r["version"].get<unsigned long long>(), r["uptime_s"].get<double>(),
                r["services"].get<size_t>(), r["backends"].get<size_t>(), r["alarms"].get<size_t>(),
                r["pid"].get<int>());
    // The software running, and a warning when it is not this evenctl's (a package
    // upgrade does not restart the daemon: systemctl restart evenflowd does).
    if (r.contains("evenflow_version") && r["evenflow_version"].is_string()) {
        std::string running = r["evenflow_version"];
        if (running == EVENFLOW_VERSION) {
            std::printf("evenflow %s\n", running.c_str());
        } else {
            std::printf("evenflow %s (evenctl is %s: the daemon runs other software than the "
                        "installed one until it is restarted)\n",
                        running.c_str(), EVENFLOW_VERSION);
        }
    }
    // The series baseline the guard judges applies against, and what moved since.
    if (r.contains("baseline") && r["baseline"].is_object()) {
        const json& b = r["baseline"];
        std::printf("baseline v%llu since %s (%s uid %u%s)", b["version"].get<unsigned long long>(),
                    b["at"].get<std::string>().c_str(), b["origin"].get<std::string>().c_str(),
                    b["uid"].get<uint32_t>(),
                    b["accepted_shift"].get<bool>() ? ", accepted shift" : "");
        std::string moved;
        for (const auto& d : b["drift"]) {
            double drift = d["drift"].get<double>();
            if (std::abs(drift) >= 0.0005) {
                moved += fmt::format("{}{} {} {:+.1f} points", moved.empty() ? "" : ", ",
                                     d["service"].get<std::string>(),
                                     d["backend"].get<std::string>(), drift * 100.0);
            }
        }
        std::printf("; drift: %s\n", moved.empty() ? "none" : moved.c_str());
    }
    // Where the running version came from at start (state_dir or the file), and
    // whether the running config is still the file's.
    if (r.contains("state") && r["state"].is_object()) {
        const json& s = r["state"];
        std::string dir = s.value("dir", "");
        if (s.value("start", "") == "resumed") {
            std::printf("started from state_dir %s: resumed version %llu\n", dir.c_str(),
                        s.value("version", 0ull));
        } else {
            std::printf("started from the file as version %llu (%s)\n", s.value("version", 0ull),
                        s.value("reason", "").c_str());
        }
        if (!s.value("saved", true)) {
            std::printf("WARNING: the last change could not be saved in state_dir: %s\n",
                        s.value("save_error", "").c_str());
        }
    }
    if (r.contains("file") && r["file"].is_object()) {
        const json& f = r["file"];
        std::string path = f.value("path", "");
        if (f.contains("error")) {
            std::printf("config file: %s\n", f["error"].get<std::string>().c_str());
        } else if (f.value("differs", false)) {
            std::printf("running config differs from %s (%zu changes; evenctl diff %s)\n",
                        path.c_str(), f.value("changes", size_t(0)), path.c_str());
        } else {
            std::printf("running config is %s\n", path.c_str());
        }
    }
    // The backends' vrrp gateways: who holds each, and the last peer heard.
    if (r.contains("gateways") && r["gateways"].is_array()) {
        for (const auto& g : r["gateways"]) {
            std::string peer = "no peer heard";
            if (g["peer"].is_string()) {
                peer = fmt::format("peer {} (priority {}) heard {:.1f}s ago",
                                   g["peer"].get<std::string>(), g["peer_priority"].get<int>(),
                                   g["peer_heard_s_ago"].get<double>());
            }
            std::printf("gateway %s on %s: %s for %.0fs (priority %d%s); %s\n",
                        g["address"].get<std::string>().c_str(),
                        g["interface"].get<std::string>().c_str(),
                        g["held"].get<bool>() ? "held" : "backup", g["since_s"].get<double>(),
                        g["priority"].get<int>(),
                        g["in_service"].get<bool>() ? "" : ", out of service", peer.c_str());
        }
    }
    table t({"WORKER", "LCORE", "RX PKTS", "TX PKTS", "DROPPED", "FLOWS", "CAPACITY"});
    for (const auto& w : r["workers"]) {
        t.add({std::to_string(w["worker"].get<int>()), std::to_string(w["lcore"].get<int>()),
               std::to_string(w["rx_packets"].get<uint64_t>()),
               std::to_string(w["tx_packets"].get<uint64_t>()),
               std::to_string(w["dropped"].get<uint64_t>()),
               std::to_string(w["flows_active"].get<uint64_t>()),
               std::to_string(w["flow_capacity"].get<uint64_t>())});
    }
    t.print(stdout);
}

void render_services(const json& r) {
    table t({"SERVICE", "VIP:PORT", "POOL", "HASH", "BACKENDS", "UP", "TABLE"});
    for (const auto& s : r["services"]) {
        t.add({s["name"], fmt::format("{}:{}", s["vip"].get<std::string>(), s["port"].get<int>()),
               s["pool"], s["hash"], std::to_string(s["backends"].get<size_t>()),
               std::to_string(s["backends_up"].get<size_t>()),
               std::to_string(s["table_size"].get<size_t>())});
    }
    t.print(stdout);
}

void render_backends(const json& r) {
    // OBSERVED and NEW/S count verified connections; UNVERIFIED the SYNs that opened a
    // flow and never completed a handshake here (spoofed, or still opening).
    table t({"SERVICE", "BACKEND", "STATE", "WEIGHT", "EXPECTED", "OBSERVED", "ACTIVE", "NEW/S",
             "UNVERIFIED", "SKEW"});
    bool one_way = false;
    for (const auto& b : r["backends"]) {
        const bool tunnel = b.value("verified_by", "handshake") == "one_way";
        one_way |= tunnel;
        t.add({b["service"], b["backend"], b["state"], std::to_string(b["weight"].get<uint32_t>()),
               percent(b["expected_share"]), percent(b["observed_share"]) + (tunnel ? "*" : ""),
               std::to_string(b["active_flows"].get<uint64_t>()),
               fmt::format("{:.1f}", b["new_flows_per_s"].get<double>()),
               std::to_string(b.value("syn_unverified", uint64_t(0))),
               b["skew"].get<bool>() ? "SKEW" : "-"});
    }
    t.print(stdout);
    if (one_way) {
        std::printf("* tunnel mode: a connection counts at the client's first packet after its "
                    "SYN (one way; a blind spoofer can fake it)\n");
    }
}

void render_change(const json& r) {
    if (!r.value("changed", false)) {
        std::printf("no changes; version %llu still running\n",
                    r["version"].get<unsigned long long>());
        return;
    }
    std::printf("version %llu running\n", r["version"].get<unsigned long long>());
    for (const auto& line : r["diff"]) {
        std::printf("  %s\n", line.get<std::string>().c_str());
    }
}

void render_history(const json& r) {
    for (const auto& e : r["history"]) {
        std::printf("%s%llu  %s  uid=%u pid=%d via=%s  %s\n",
                    e["running"].get<bool>() ? "* " : "  ", e["version"].get<unsigned long long>(),
                    e["at"].get<std::string>().c_str(), e["uid"].get<uint32_t>(),
                    e["pid"].get<int>(), e["via"].get<std::string>().c_str(),
                    e["origin"].get<std::string>().c_str());
        if (e.value("accepted_shift", false)) {
            std::printf("      (--accept-shift: the series baseline from here)\n");
        }
        for (const auto& line : e["diff"]) {
            std::printf("      %s\n", line.get<std::string>().c_str());
        }
    }
}

void render_stats(const json& r) {
    table t({"COUNTER", "VALUE"});
    for (const auto& [k, v] : r["totals"].items()) {
        t.add({k, std::to_string(v.get<uint64_t>())});
    }
    t.print(stdout);
    if (!r["drops"].empty()) {
        std::printf("\n");
        table d({"DROP REASON", "PACKETS"});
        for (const auto& [k, v] : r["drops"].items()) {
            d.add({k, std::to_string(v.get<uint64_t>())});
        }
        d.print(stdout);
    }
    if (!r["neighbors"].empty()) {
        std::printf("\n");
        table n({"INTERFACE", "NEIGHBOR", "MAC", "WAITING"});
        for (const auto& e : r["neighbors"]) {
            n.add({e["interface"], e["address"],
                   e["resolved"].get<bool>() ? e["mac"].get<std::string>() : "(incomplete)",
                   std::to_string(e["waiting"].get<size_t>())});
        }
        n.print(stdout);
    }
    if (r.contains("kernel_interfaces") && !r["kernel_interfaces"].empty()) {
        std::printf("\n");
        table k({"INTERFACE", "KERNEL", "TO KERNEL", "FROM KERNEL", "DROPPED"});
        for (const auto& e : r["kernel_interfaces"]) {
            k.add({e["interface"], e["kernel_interface"],
                   std::to_string(e["to_kernel"].get<uint64_t>()),
                   std::to_string(e["from_kernel"].get<uint64_t>()),
                   std::to_string(e["to_kernel_dropped"].get<uint64_t>())});
        }
        k.print(stdout);
    }
}

void render_skew(const json& r) {
    if (r["alarms"].empty()) {
        std::printf("no alarms\n");
        return;
    }
    table t({"SERVICE", "BACKEND", "KIND", "BASIS", "OBSERVED", "EXPECTED", "OF", "SINCE"});
    for (const auto& a : r["alarms"]) {
        const std::string basis = a["basis"];
        const uint64_t of = a["flows"].get<uint64_t>();
        t.add({a["service"], a["backend"], a["kind"], basis, percent(a["observed_share"]),
               percent(a["expected_share"]),
               basis == "bytes"     ? fmt::format("{:.1f} MB", double(of) / 1e6)
               : basis == "packets" ? fmt::format("{} pkts", of)
               : basis == "syns"    ? fmt::format("{} SYNs", of)
                                    : fmt::format("{} flows", of),
               a["since"]});
    }
    t.print(stdout);
    for (const auto& a : r["alarms"]) {
        if (a.contains("explanation") && a["explanation"].is_string()) {
            std::printf("%s: %s\n", a["service"].get<std::string>().c_str(),
                        a["explanation"].get<std::string>().c_str());
        }
    }
}

// clients: who opened the service's connections in the skew window. Counts are
// lower bounds (the sketches never overstate); "+N" when the sketch allows N more.
void render_clients(const json& r) {
    std::printf("%s: %llu verified connections, %llu SYNs in the last %.0f s\n",
                r["service"].get<std::string>().c_str(), r["verified"].get<unsigned long long>(),
                r["syns"].get<unsigned long long>(), r["window_s"].get<double>());
    auto count = [](const json& row, const char* key, const std::string& at_most) {
        uint64_t n = row[key].get<uint64_t>(), m = row[at_most].get<uint64_t>();
        return m > n ? fmt::format("{} (+{})", n, m - n) : std::to_string(n);
    };
    for (const char* kind : {"addresses", "networks"}) {
        std::printf("\n");
        table t({kind == std::string("addresses") ? "CLIENT" : "NETWORK", "VERIFIED", "SHARE",
                 "SYNS", "SYN SHARE", "TOP BACKEND"});
        for (const auto& row : r[kind]) {
            std::string top = "-";
            if (!row["backends"].empty()) {
                const auto& b = row["backends"][0];
                top = fmt::format("{} ({} verified, {} SYNs)", b["backend"].get<std::string>(),
                                  b["verified"].get<uint64_t>(), b["syns"].get<uint64_t>());
            }
            t.add({row["client"], count(row, "verified", "verified_at_most"),
                   percent(row["verified_share"]), count(row, "syns", "syns_at_most"),
                   percent(row["syn_share"]), top});
        }
        t.print(stdout);
    }
}

// diff: what an apply of the file would change, in apply's review format, and the
// verdict apply would reach. Exit 0 when apply would accept the file (or find
// nothing to change), 1 when it would refuse it.
int render_diff(const json& r, bool as_json) {
    std::string verdict = r.value("verdict", std::string());
    bool would_apply = verdict == "accept" || verdict == "unchanged";
    if (as_json) {
        return would_apply ? exit_ok : exit_negative;
    }
    std::string against = r.contains("version") && r["version"].is_number_unsigned()
                              ? fmt::format("version {}", r["version"].get<unsigned long long>())
                              : std::string("the running version");
    auto lines = [&](const char* key) {
        std::vector<std::string> out;
        if (r.contains(key) && r[key].is_array()) {
            for (const auto& line : r[key]) {
                out.push_back(line.is_string() ? line.get<std::string>() : line.dump());
            }
        }
        return out;
    };
    std::vector<std::string> diff = lines("diff");
    std::string error = r.contains("error") && r["error"].is_string()
                            ? r["error"].get<std::string>()
                            : std::string();
    if (verdict == "unchanged" || (verdict == "accept" && diff.empty())) {
        std::printf("no changes against %s\n", against.c_str());
        return exit_ok;
    }
    if (!diff.empty()) {
        std::printf("changes against %s:\n", against.c_str());
        for (const std::string& line : diff) {
            std::printf("  %s\n", line.c_str());
        }
    }
    if (verdict == "accept") {
        std::printf("apply would accept this config\n");
        return exit_ok;
    }
    if (verdict == "shift") {
        std::printf("apply would refuse it: this config shifts traffic too far (evenctl apply "
                    "FILE --accept-shift to apply it anyway):\n");
        for (const std::string& line : lines("shift")) {
            std::printf("  %s\n", line.c_str());
        }
    } else if (verdict == "invalid") {
        std::printf("apply would refuse it: invalid config\n");
        if (!error.empty()) {
            std::printf("%s\n", error.c_str());
        }
    } else if (verdict == "restart") {
        std::printf("apply would refuse it: %s\n",
                    error.empty() ? "it needs a restart" : error.c_str());
    } else {
        std::printf("apply's verdict unknown (%s)\n", verdict.empty() ? "none" : verdict.c_str());
    }
    return exit_negative;
}

// Replies of the daemon, rendered for a human, by command.
using renderer = void (*)(const json&);
void render_host(const json& r) {
    std::printf("host %s: %s\n", r.value("drained", false) ? "drained" : "announcing",
                r.value("message", std::string()).c_str());
    if (r.contains("warning")) {
        std::printf("warning: %s\n", r.value("warning", std::string()).c_str());
    }
}

renderer renderer_for(const evenflow::api::command_spec& spec) {
    using evenflow::api::command;
    if (spec.id == command::drain_host || spec.id == command::undrain_host) {
        return render_host;
    }
    if (spec.changes_state) {
        return render_change;
    }
    switch (spec.id) {
    case command::status:
        return render_status;
    case command::services:
        return render_services;
    case command::backends:
        return render_backends;
    case command::history:
        return render_history;
    case command::stats:
        return render_stats;
    case command::skew:
        return render_skew;
    case command::clients:
        return render_clients;
    default:
        return nullptr;
    }
}

// One CLI11 subcommand per command of the vocabulary; its values land here.
struct command_words {
    const evenflow::api::command_spec* spec = nullptr;
    CLI::App* app = nullptr;
    std::vector<std::string> positionals; // one per spec->args, in order
    std::vector<CLI::Option*> positional_options;
    std::vector<std::string> option_values; // one per spec->options ("" for flags)
    std::vector<CLI::Option*> option_options;

    // The words as typed, for parse_arguments (the vocabulary's one request builder).
    std::vector<std::string> words() const {
        std::vector<std::string> out;
        for (size_t i = 0; i < positionals.size(); ++i) {
            if (positional_options[i]->count() > 0) {
                out.push_back(positionals[i]);
            }
        }
        for (size_t i = 0; i < option_values.size(); ++i) {
            if (option_options[i]->count() == 0) {
                continue;
            }
            out.emplace_back(spec->options[i].flag);
            if (!spec->options[i].metavar.empty()) {
                out.push_back(option_values[i]);
            }
        }
        return out;
    }
};

std::string describe(const evenflow::api::positional& p) {
    if (!p.help.empty()) {
        return std::string(p.help);
    }
    switch (p.kind) {
    case evenflow::api::value_kind::file:
        return "a file";
    case evenflow::api::value_kind::positive_integer:
        return "a positive integer";
    case evenflow::api::value_kind::text:
        break;
    }
    return std::string(p.metavar);
}

const char* const exit_codes_footer =
    "Exit status: 0 success, 1 a negative answer (check found errors, apply refused), "
    "2 usage or connection errors.";

} // namespace

int main(int argc, char** argv) {
    namespace api = evenflow::api;
    CLI::App app{"evenctl: the command line of evenflowd, the evenflow load balancer. "
                 "Talks to the daemon over its control socket; check works offline.",
                 "evenctl"};
    app.footer(exit_codes_footer);
    app.set_version_flag("--version", evenflow::cli::version_line("evenctl"),
                         "print evenctl's version and exit");
    std::string socket_path = api::default_socket_path;
    app.add_option("--socket", socket_path,
                   "the daemon's control socket (else $EVENFLOW_SOCKET, else " +
                       std::string(api::default_socket_path) + ")")
        ->envname("EVENFLOW_SOCKET")
        ->type_name("PATH");
    bool as_json = false;
    app.add_flag("--json", as_json, "print the daemon's reply as JSON");
    bool completion = false;
    app.add_flag("--bash-completion", completion,
                 "print the bash completion script for evenctl and exit")
        ->group(""); // generated into the package at build time; not for every day
    bool man = false;
    app.add_flag("--man-commands", man, "print the COMMANDS section of the man page and exit")
        ->group("");
    app.require_subcommand(0, 1);
    app.fallthrough(); // --json and --socket after the command as well
    auto formatter = std::make_shared<CLI::Formatter>();
    formatter->column_width(34);
    app.formatter(formatter);

    std::vector<std::unique_ptr<command_words>> commands;
    for (const api::command_spec& spec : api::all_commands()) {
        auto c = std::make_unique<command_words>();
        c->spec = &spec;
        c->app = app.add_subcommand(std::string(spec.name), std::string(spec.summary));
        c->app->footer(
            fmt::format("usage: evenctl {}\n{}", api::usage_line(spec), exit_codes_footer));
        c->positionals.resize(spec.args.size());
        c->option_values.resize(spec.options.size());
        for (size_t i = 0; i < spec.args.size(); ++i) {
            const api::positional& p = spec.args[i];
            CLI::Option* o =
                c->app->add_option(std::string(p.metavar), c->positionals[i], describe(p))
                    ->type_name("");
            if (p.required) {
                o->required();
            }
            c->positional_options.push_back(o);
        }
        for (size_t i = 0; i < spec.options.size(); ++i) {
            const api::option& opt = spec.options[i];
            CLI::Option* o =
                opt.metavar.empty()
                    ? c->app->add_flag(std::string(opt.flag))->description(std::string(opt.help))
                    : c->app
                          ->add_option(std::string(opt.flag), c->option_values[i],
                                       std::string(opt.help))
                          ->type_name(std::string(opt.metavar));
            c->option_options.push_back(o);
        }
        commands.push_back(std::move(c));
    }

    std::vector<std::string> args(argv + 1, argv + argc);
    auto phrase = [&](const CLI::ParseError& e, std::string* hint) -> std::string {
        // Name the command an error belongs to, and the first word that is not one.
        const command_words* in = nullptr;
        for (const auto& c : commands) {
            if (c->app->parsed()) {
                in = c.get();
            }
        }
        if (in == nullptr) {
            if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
                return "no command given";
            }
            std::vector<std::string> rest = app.remaining();
            if (!rest.empty() && rest[0].rfind('-', 0) != 0) {
                return fmt::format("unknown command {:?}", rest[0]);
            }
            return {};
        }
        *hint = fmt::format("evenctl {} --help", in->spec->name);
        std::string what = evenflow::cli::default_phrase(app, e);
        return fmt::format("{}: {} (usage: evenctl {})", in->spec->name, what,
                           api::usage_line(*in->spec));
    };
    if (auto code =
            evenflow::cli::parse(app, args, "evenctl --help, evenctl COMMAND --help", phrase)) {
        return *code;
    }
    if (completion || man) {
        std::string text = completion ? evenflow::evenctl::bash_completion(app)
                                      : evenflow::evenctl::man_commands(app);
        std::fputs(text.c_str(), stdout);
        return exit_ok;
    }
    const command_words* chosen = nullptr;
    for (const auto& c : commands) {
        if (c->app->parsed()) {
            chosen = c.get();
        }
    }
    if (chosen == nullptr) {
        return evenflow::cli::usage_error("evenctl", "no command given",
                                          "evenctl --help, evenctl COMMAND --help");
    }
    const api::command_spec* spec = chosen->spec;
    std::vector<std::string> words = chosen->words();
    auto parsed = api::parse_arguments(*spec, words);
    if (auto* why = std::get_if<std::string>(&parsed)) {
        return evenflow::cli::usage_error("evenctl", *why,
                                          fmt::format("evenctl {} --help", spec->name));
    }
    json request = std::get<json>(parsed);

    using api::command;
    if (spec->id == command::check) {
        return cmd_check(request["config"].get<std::string>(), as_json);
    }
    if (spec->id == command::top) {
        return evenflow::evenctl::run_top(socket_path, request.value("iterations", 0));
    }
    // A file argument travels as its text; the path names it in messages.
    for (const auto& p : spec->args) {
        if (p.kind == api::value_kind::file && request.contains(p.key)) {
            std::string path = request[std::string(p.key)];
            std::string error;
            auto text = read_file(path, &error);
            if (!text) {
                std::fprintf(stderr, "evenctl: %s\n", error.c_str());
                return exit_usage;
            }
            if (!evenflow::api::valid_utf8(*text)) {
                std::fprintf(stderr, "evenctl: %s is not UTF-8 text (TOML files are UTF-8)\n",
                             path.c_str());
                return exit_usage;
            }
            request[std::string(p.key)] = *text;
            request["path"] = path;
        }
    }

    std::string error;
    std::optional<json> reply = api::call(socket_path, request, &error);
    if (!reply) {
        std::fprintf(stderr, "evenctl: %s\n", error.c_str());
        return exit_usage;
    }
    if (as_json) {
        print_json(*reply);
    }
    if (reply->value("ok", false) != true) {
        if (!as_json) {
            fmt::print(stderr, "evenctl: {}: {}\n", spec->name,
                       reply->value("error", std::string("failed")));
        }
        return reply->value("refused", false) ? exit_negative : exit_usage;
    }
    if (spec->id == command::diff) {
        return render_diff(*reply, as_json);
    }
    if (!as_json) {
        if (renderer render = renderer_for(*spec)) {
            render(*reply);
        }
    }
    return exit_ok;
}
