// evenctl [--socket PATH] [--json] COMMAND ...
// Talks JSON lines to evenflowd over its Unix socket; `check` works offline.
// Exit codes: 0 success, 1 negative answer (check found errors, apply refused),
// 2 usage or connection errors.
#include "config/load.hpp"
#include "control/commands.hpp"
#include "control/guard.hpp"
#include "control/protocol.hpp"
#include "snapshot/snapshot.hpp"
#include "table.hpp"
#include "top.hpp"

#include <fmt/format.h>

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

using evenflow::control::json;
using evenflow::evenctl::table;

constexpr int exit_ok = 0;
constexpr int exit_negative = 1;
constexpr int exit_usage = 2;

std::string usage_text() {
    std::string out = "usage: evenctl [--socket PATH] [--json] COMMAND [ARGS]\ncommands:\n";
    for (const evenflow::control::command_spec& spec : evenflow::control::all_commands()) {
        out += fmt::format("  {:<34} {}\n", evenflow::control::usage_line(spec), spec.summary);
    }
    out += "socket: --socket PATH, else $EVENFLOW_SOCKET, else /run/evenflow/evenflow.sock\n";
    return out;
}

int usage_error(const std::string& message) {
    std::fprintf(stderr, "evenctl: %s\n%s", message.c_str(), usage_text().c_str());
    return exit_usage;
}

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
            std::printf("service %s %s:%d (table %zu slots)\n",
                        svc["service"].get<std::string>().c_str(),
                        svc["vip"].get<std::string>().c_str(), svc["port"].get<int>(),
                        svc["table_size"].get<size_t>());
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
    table t({"SERVICE", "BACKEND", "STATE", "WEIGHT", "EXPECTED", "OBSERVED", "ACTIVE", "NEW/S",
             "SKEW"});
    for (const auto& b : r["backends"]) {
        t.add({b["service"], b["backend"], b["state"], std::to_string(b["weight"].get<uint32_t>()),
               percent(b["expected_share"]), percent(b["observed_share"]),
               std::to_string(b["active_flows"].get<uint64_t>()),
               fmt::format("{:.1f}", b["new_flows_per_s"].get<double>()),
               b["skew"].get<bool>() ? "SKEW" : "-"});
    }
    t.print(stdout);
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
}

void render_skew(const json& r) {
    if (r["alarms"].empty()) {
        std::printf("no alarms\n");
        return;
    }
    table t({"SERVICE", "BACKEND", "KIND", "BASIS", "OBSERVED", "EXPECTED", "FLOWS", "SINCE"});
    for (const auto& a : r["alarms"]) {
        t.add({a["service"], a["backend"], a["kind"], a["basis"], percent(a["observed_share"]),
               percent(a["expected_share"]), std::to_string(a["flows"].get<uint64_t>()),
               a["since"]});
    }
    t.print(stdout);
}

// Replies of the daemon, rendered for a human, by command.
using renderer = void (*)(const json&);
renderer renderer_for(const evenflow::control::command_spec& spec) {
    using evenflow::control::command;
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
    default:
        return nullptr;
    }
}

} // namespace

int main(int argc, char** argv) {
    std::string socket_path = evenflow::control::default_socket_path;
    if (const char* env = std::getenv("EVENFLOW_SOCKET"); env != nullptr && *env != '\0') {
        socket_path = env;
    }
    bool as_json = false;
    std::vector<std::string> words;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--socket" && i + 1 < argc) {
            socket_path = argv[++i];
        } else if (a.rfind("--socket=", 0) == 0) {
            socket_path = a.substr(9);
        } else if (a == "--json") {
            as_json = true;
        } else if (a == "-h" || a == "--help") {
            std::fputs(usage_text().c_str(), stdout);
            return exit_ok;
        } else if (a.size() > 1 && a[0] == '-' && words.empty()) {
            return usage_error(fmt::format("unknown option {}", a));
        } else {
            words.push_back(a);
        }
    }
    if (words.empty()) {
        return usage_error("no command given");
    }
    const evenflow::control::command_spec* spec = evenflow::control::find_command(words[0]);
    if (spec == nullptr) {
        return usage_error(fmt::format("unknown command {:?}", words[0]));
    }
    auto parsed =
        evenflow::control::parse_arguments(*spec, std::span<const std::string>(words).subspan(1));
    if (auto* why = std::get_if<std::string>(&parsed)) {
        return usage_error(*why);
    }
    json request = std::get<json>(parsed);

    using evenflow::control::command;
    if (spec->id == command::check) {
        return cmd_check(request["config"].get<std::string>(), as_json);
    }
    if (spec->id == command::top) {
        return evenflow::evenctl::run_top(socket_path, request.value("iterations", 0));
    }
    // A file argument travels as its text; the path names it in messages.
    for (const auto& p : spec->args) {
        if (p.kind == evenflow::control::value_kind::file && request.contains(p.key)) {
            std::string path = request[std::string(p.key)];
            std::string error;
            auto text = read_file(path, &error);
            if (!text) {
                std::fprintf(stderr, "evenctl: %s\n", error.c_str());
                return exit_usage;
            }
            if (!evenflow::control::valid_utf8(*text)) {
                std::fprintf(stderr, "evenctl: %s is not UTF-8 text (TOML files are UTF-8)\n",
                             path.c_str());
                return exit_usage;
            }
            request[std::string(p.key)] = *text;
            request["path"] = path;
        }
    }

    std::string error;
    std::optional<json> reply = evenflow::control::call(socket_path, request, &error);
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
    if (!as_json) {
        if (renderer render = renderer_for(*spec)) {
            render(*reply);
        }
    }
    return exit_ok;
}
