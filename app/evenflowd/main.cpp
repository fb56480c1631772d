// evenflowd --config FILE [-- EXTRA_EAL_ARGS...]
#include "daemon.hpp"

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
    evenflow::daemon::evenflowd daemon(std::move(opts));
    return daemon.run();
}
