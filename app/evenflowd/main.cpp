// evenflowd --config FILE [-- EXTRA_EAL_ARGS...]
#include "daemon.hpp"

#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

void usage(FILE* out) {
    std::fputs("usage: evenflowd --config FILE [-- EXTRA_EAL_ARGS...]\n"
               "  Runs the balancer until SIGTERM/SIGINT; SIGHUP re-reads FILE and applies it.\n",
               out);
}

} // namespace

int main(int argc, char** argv) {
    evenflow::daemon::options opts;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--") {
            for (++i; i < argc; ++i) {
                opts.extra_eal_args.emplace_back(argv[i]);
            }
            break;
        }
        if ((arg == "--config" || arg == "-c") && i + 1 < argc) {
            opts.config_path = argv[++i];
        } else if (arg.rfind("--config=", 0) == 0) {
            opts.config_path = arg.substr(9);
        } else if (arg == "--help" || arg == "-h") {
            usage(stdout);
            return 0;
        } else {
            std::fprintf(stderr, "evenflowd: unexpected argument %s\n", arg.c_str());
            usage(stderr);
            return 2;
        }
    }
    if (opts.config_path.empty()) {
        std::fputs("evenflowd: --config FILE is required\n", stderr);
        usage(stderr);
        return 2;
    }
    // Maglev tables are 256 KiB each (65537 slots): a fixed mmap threshold keeps each
    // in its own mapping, so the tables an apply replaces go back to the system at once
    // instead of staying in the heap (glibc raises a dynamic threshold after the first
    // free, and an edge host with 1,000 services would keep a second set for good).
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    evenflow::daemon::evenflowd daemon(std::move(opts));
    return daemon.run();
}
