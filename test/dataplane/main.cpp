// Catch2 main for the in-process DPDK tier: EAL once, without hugepages or PCI.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <rte_eal.h>

#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

int main(int argc, char** argv) {
    std::string prefix = "--file-prefix=evenflow-dp-" + std::to_string(getpid());
    std::vector<std::string> eal = {
        "test_dataplane",       "--no-huge", "-m", "1024", "--no-pci", "-l", "0", prefix,
        "--log-level=*:warning"};
    std::vector<char*> eal_argv;
    for (auto& a : eal) {
        eal_argv.push_back(a.data());
    }
    if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
        fprintf(stderr, "FAIL: rte_eal_init failed (these tests need root)\n");
        return 1;
    }
    int rc = Catch::Session().run(argc, argv);
    rte_eal_cleanup();
    std::error_code ignored; // EAL's runtime directory for this prefix
    std::filesystem::remove_all("/var/run/dpdk/evenflow-dp-" + std::to_string(getpid()), ignored);
    return rc;
}
