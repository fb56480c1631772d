// evenflowd --config FILE [-- EXTRA_EAL_ARGS...]
#include "cli.hpp"
#include "daemon.hpp"

#include <malloc.h>

#include <string>
#include <vector>

int main(int argc, char** argv) {
    CLI::App app{"evenflowd: the evenflow L4 TCP load balancer (DPDK). Runs until SIGTERM or "
                 "SIGINT; SIGHUP re-reads FILE and applies it like `evenctl apply`. Arguments "
                 "after -- go to DPDK's EAL after the config's [eal] args.",
                 "evenflowd"};
    app.footer("usage: evenflowd --config FILE [-- EXTRA_EAL_ARGS...]\n"
               "Exit status: 0 after a clean stop, 1 when it cannot start (invalid config, "
               "EAL or port set-up), 2 on a usage error.\n"
               "Control it with evenctl; capture its ports with dpdk-dumpcap --file-prefix "
               "PREFIX -i PORT (PREFIX: its --file-prefix in [eal] args).");
    app.set_version_flag("--version", evenflow::cli::version_line("evenflowd"),
                         "print evenflowd's version and exit");
    evenflow::daemon::options opts;
    app.add_option("-c,--config", opts.config_path,
                   "the config file (TOML; see /etc/evenflow/evenflow.toml.example)")
        ->type_name("FILE")
        ->required();

    std::vector<std::string> words =
        evenflow::cli::split_at_double_dash(argc, argv, &opts.extra_eal_args);
    if (auto code = evenflow::cli::parse(app, words, "evenflowd --help")) {
        return *code;
    }
    // Maglev tables are 256 KiB each (65537 slots): a fixed mmap threshold keeps each
    // in its own mapping, so the tables an apply replaces go back to the system at once
    // instead of staying in the heap (glibc raises a dynamic threshold after the first
    // free, and an edge host with 1,000 services would keep a second set for good).
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    evenflow::daemon::evenflowd daemon(std::move(opts));
    return daemon.run();
}
