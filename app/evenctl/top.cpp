#include "top.hpp"

#include "api/protocol.hpp"

#include <fmt/format.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <map>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

namespace evenflow::evenctl {

namespace {

using api::json;

termios g_saved_termios;
bool g_raw = false;

void restore_terminal() {
    if (g_raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_termios);
        std::fputs("\x1b[?25h", stdout); // cursor back
        std::fflush(stdout);
        g_raw = false;
    }
}

void on_interrupt(int) {
    restore_terminal();
    _exit(0);
}

void enter_raw_mode() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &g_saved_termios) != 0) {
        return;
    }
    termios raw = g_saved_termios;
    raw.c_lflag &= tcflag_t(~(ICANON | ECHO));
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    g_raw = true;
    std::atexit(restore_terminal);
    std::signal(SIGINT, on_interrupt);
    std::signal(SIGTERM, on_interrupt);
    std::fputs("\x1b[?25l", stdout); // hide the cursor
}

// Observed share as a bar, the expected share as a '|' marker on it.
std::string share_bar(double observed, double expected, int width) {
    std::string bar;
    int filled = int(std::lround(std::clamp(observed, 0.0, 1.0) * width));
    int marker = std::min(width - 1, int(std::lround(std::clamp(expected, 0.0, 1.0) * width)));
    for (int i = 0; i < width; ++i) {
        if (i == marker) {
            bar += "|";
        } else {
            bar += i < filled ? "#" : ".";
        }
    }
    return bar;
}

std::string render(const json& status, const json& backends, const json& skew) {
    std::string out =
        fmt::format("evenflow top  version {}  uptime {:.0f}s  alarms {}  pid {}    (q quits)\n",
                    status.value("version", 0), status.value("uptime_s", 0.0),
                    status.value("alarms", 0), status.value("pid", 0));
    uint64_t rx = 0, tx = 0, dropped = 0;
    for (const auto& w : status["workers"]) {
        rx += w.value("rx_packets", uint64_t(0));
        tx += w.value("tx_packets", uint64_t(0));
        dropped += w.value("dropped", uint64_t(0));
    }
    out += fmt::format("packets rx {}  tx {}  dropped {}\n", rx, tx, dropped);
    std::map<std::string, std::vector<json>> by_service;
    for (const auto& b : backends["backends"]) {
        by_service[b["service"].get<std::string>()].push_back(b);
    }
    constexpr int bar_width = 40;
    for (const auto& [service, rows] : by_service) {
        out += fmt::format("\nservice {}   (# observed share of new flows, | expected share)\n",
                           service);
        out += fmt::format("  {:<22} {:<9} {:>6}  {:<{}}  {:>6} {:>6} {:>8} {:>8}  {}\n", "BACKEND",
                           "STATE", "WEIGHT", "SHARE", bar_width, "OBS", "EXP", "NEW/S", "ACTIVE",
                           "SKEW");
        for (const auto& b : rows) {
            double observed = b.value("observed_share", 0.0);
            double expected = b.value("expected_share", 0.0);
            out += fmt::format("  {:<22} {:<9} {:>6}  {}  {:>5.1f}% {:>5.1f}% {:>8.1f} {:>8}  {}\n",
                               b["backend"].get<std::string>(), b["state"].get<std::string>(),
                               b.value("weight", 0), share_bar(observed, expected, bar_width),
                               observed * 100, expected * 100, b.value("new_flows_per_s", 0.0),
                               b.value("active_flows", 0), b.value("skew", false) ? "SKEW" : "-");
        }
    }
    out += "\n";
    if (skew["alarms"].empty()) {
        out += "no alarms\n";
    } else {
        for (const auto& a : skew["alarms"]) {
            out += fmt::format("ALARM {} {} {} ({}): observed {:.1f}% expected {:.1f}% since {}\n",
                               a["service"].get<std::string>(), a["backend"].get<std::string>(),
                               a["kind"].get<std::string>(), a["basis"].get<std::string>(),
                               a.value("observed_share", 0.0) * 100,
                               a.value("expected_share", 0.0) * 100, a["since"].get<std::string>());
        }
    }
    return out;
}

} // namespace

int run_top(const std::string& socket_path, int iterations) {
    enter_raw_mode();
    for (int i = 0; iterations <= 0 || i < iterations; ++i) {
        std::string error;
        auto status = api::call(socket_path, json{{"cmd", "status"}}, &error);
        auto backends =
            status ? api::call(socket_path, json{{"cmd", "backends"}}, &error) : std::nullopt;
        auto skew = backends ? api::call(socket_path, json{{"cmd", "skew"}}, &error) : std::nullopt;
        if (!skew) {
            restore_terminal();
            std::fprintf(stderr, "evenctl: %s\n", error.c_str());
            return 2;
        }
        std::string screen = render(*status, *backends, *skew);
        if (g_raw) {
            std::fputs("\x1b[H\x1b[2J", stdout); // home, clear
        }
        std::fputs(screen.c_str(), stdout);
        std::fflush(stdout);
        if (iterations > 0 && i + 1 == iterations) {
            break;
        }
        // Wait a second, or less if a key arrives.
        pollfd p{STDIN_FILENO, POLLIN, 0};
        if (g_raw && poll(&p, 1, 1000) > 0) {
            char c = 0;
            if (read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q')) {
                break;
            }
        } else if (!g_raw) {
            usleep(1'000'000);
        }
    }
    restore_terminal();
    return 0;
}

} // namespace evenflow::evenctl
