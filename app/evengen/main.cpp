// evengen: a pktgen-style DPDK traffic generator that plays both the clients and the
// backends of a load balancer, and checks everything that comes back.
//
//   evengen [OPTIONS] [-- EAL_ARGS...]
#include "cli.hpp"
#include "generator.hpp"
#include "queues.hpp"

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_version.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace gen = evenflow::gen;
using nlohmann::json;

namespace {

const char* const description =
    R"(evengen: sends TCP traffic for N flows through a load balancer and receives it on
the other side: the clients on --client-port toward the VIP, the backends on
--backend-port answering. Every received packet is checked (checksums, the flow
stays on one backend, no reordering); results are JSON.)";

const char* const footer = R"(usage: evengen [OPTIONS] [-- EAL_ARGS...]
Modes: established: a warm-up creates the flows, then data both ways; syn: one SYN
per new flow (new-flow rate); lifecycle: SYN, SYN-ACK, ACK, data, FIN, FIN-ACK, ACK.
Exit status: 0 when every packet came back intact, 1 on loss or damage, 2 on a
usage or set-up error. Without EAL arguments: -l 0 --no-huge -m 512 --no-pci.)";

[[noreturn]] void usage_error(const std::string& message) {
    std::exit(evenflow::cli::usage_error("evengen", message, "evengen --help"));
}

template <class T>
T number(const std::string& option, const std::string& text, T lo, T hi) {
    T value{};
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || value < lo || value > hi) {
        usage_error(
            fmt::format("{}: expected a number from {} to {}, got '{}'", option, lo, hi, text));
    }
    return value;
}

uint32_t address(const std::string& option, const std::string& text) {
    std::optional<uint32_t> a = gen::parse_ipv4(text);
    if (!a) {
        usage_error(fmt::format("{}: '{}' is not an IPv4 address", option, text));
    }
    return *a;
}

gen::mac_addr parse_mac(const std::string& text) {
    gen::mac_addr mac{};
    unsigned b[6];
    char tail;
    if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                    &tail) != 6) {
        usage_error(fmt::format("--dst-mac: '{}' is not a MAC address", text));
    }
    for (int i = 0; i < 6; ++i) {
        mac[size_t(i)] = uint8_t(b[i]);
    }
    return mac;
}

struct command_line {
    gen::options opts;
    std::string json_path;
    std::vector<std::string> eal;
};

// The values as typed; each is converted (and its error worded) below.
struct typed_values {
    std::string mode, flows, size, rate, duration, window, lifecycle_data, vip, backends,
        client_base, gateway, lb_client, lb_backend, pcap_packets, dst_mac, queues, flood,
        flood_base;
};

command_line parse(int argc, char** argv) {
    command_line cl;
    gen::options& o = cl.opts;
    o.addr.backends.clear();
    for (uint32_t i = 0; i < 4; ++i) {
        o.addr.backends.push_back({0x0a14000b + i, 8080});
    }

    CLI::App app{description, "evengen"};
    app.footer(footer);
    app.set_version_flag("--version", evenflow::cli::version_line("evengen"),
                         "print evengen's version and exit");
    typed_values v;
    auto value = [&](const char* name, std::string& into, const char* metavar, const char* help,
                     const char* group) {
        return app.add_option(name, into, help)->type_name(metavar)->group(group);
    };
    const char* traffic = "Traffic";
    value("--mode", v.mode, "MODE", "established | syn | lifecycle (established)", traffic);
    value("--flows", v.flows, "N", "1 .. 16M (1000)", traffic);
    value("--size", v.size, "BYTES", "data packet size on the wire, 64 .. 1518 (64)", traffic);
    value("--rate", v.rate, "PPS",
          "offered packets/s (lifecycle: new flows/s); 0 = flat out: as fast as packets come "
          "back, --window in flight (0)",
          traffic);
    value("--duration", v.duration, "SECONDS", "length of the measured phase (5)", traffic);
    value("--window", v.window, "N", "flat out: packets in flight at most (1024)", traffic);
    app.add_flag("--no-reverse")
        ->description("established: clients only, backends do not send")
        ->group(traffic);
    value("--lifecycle-data", v.lifecycle_data, "N", "data packets per lifecycle (4)", traffic);
    value("--flood", v.flood, "PPS",
          "lifecycle: also SYNs from random sources at PPS, counted apart from the "
          "connections (0)",
          traffic);
    value("--flood-base", v.flood_base, "ADDR", "the flood's sources: a /16 (172.31.0.0)", traffic);
    app.add_flag("--flood-answer", o.flood_answer,
                 "the backends answer the flood's SYNs with a SYN-ACK, as real ones do")
        ->group(traffic);
    const char* addresses = "Addresses";
    value("--vip", v.vip, "ADDR:PORT", "the service (10.10.0.100:80)", addresses);
    value("--backends", v.backends, "A:P,...", "the pool's backends (10.20.0.11-14:8080)",
          addresses);
    value("--client-base", v.client_base, "ADDR",
          "first client address, a /16 is used "
          "(172.16.0.0)",
          addresses);
    value("--gateway", v.gateway, "ADDR", "router address evengen answers as (10.10.0.1)",
          addresses);
    value("--lb-client", v.lb_client, "ADDR", "the balancer's client-side address (10.10.0.2)",
          addresses);
    value("--lb-backend", v.lb_backend, "ADDR", "the balancer's backend-side address (10.20.0.1)",
          addresses);
    const char* ports = "Ports";
    value("--client-port", o.client_port, "NAME", "DPDK port on the client side (net_memif0)",
          ports);
    value("--backend-port", o.backend_port, "NAME", "DPDK port on the backend side (net_memif1)",
          ports);
    value("--queues", v.queues, "N",
          "queue pairs per port, 1 .. 16: one per worker of the device; sends on queue 0, "
          "receives on all (1)",
          ports);
    app.add_flag("--reflect", o.reflect,
                 "the device under test swaps the 5-tuple and sends it back on the other port "
                 "(dpdk-testpmd --forward-mode=5tswap)")
        ->group(ports);
    const char* output = "Output";
    value("--json", cl.json_path, "FILE", "results as JSON (\"-\" for stdout)", output);
    value("--pcap", o.pcap_path, "FILE",
          "write the clients' packets to FILE (no ports, nothing sent)", output);
    value("--pcap-packets", v.pcap_packets, "N", "established: packets to write (one per flow)",
          output);
    value("--dst-mac", v.dst_mac, "MAC", "destination MAC in the pcap (02:00:00:00:00:01)", output);
    app.add_flag("--sync", o.sync,
                 "after the warm-up print \"ready\" on stdout and wait for a line on stdin "
                 "before the measured phase; after it print \"done\" and wait for a line before "
                 "leaving the links (a harness reads the device's counters at both points)")
        ->group(output);

    std::vector<std::string> words = evenflow::cli::split_at_double_dash(argc, argv, &cl.eal);
    if (auto code = evenflow::cli::parse(app, words, "evengen --help")) {
        std::exit(*code);
    }
    auto given = [&](const char* name) {
        return app.count(name) > 0;
    };
    if (given("--no-reverse")) {
        o.reverse = false;
    }
    if (given("--mode")) {
        if (v.mode == "established") {
            o.mode = gen::traffic::established;
        } else if (v.mode == "syn") {
            o.mode = gen::traffic::syn;
        } else if (v.mode == "lifecycle") {
            o.mode = gen::traffic::lifecycle;
        } else {
            usage_error(
                fmt::format("--mode: '{}': expected established, syn or lifecycle", v.mode));
        }
    }
    if (given("--flows")) {
        o.flows = number<uint64_t>("--flows", v.flows, 1, 16u << 20);
    }
    if (given("--size")) {
        o.packet_size =
            number<size_t>("--size", v.size, gen::min_packet_size, gen::max_packet_size);
    }
    if (given("--rate")) {
        o.rate = number<double>("--rate", v.rate, 0, 1e9);
    }
    if (given("--duration")) {
        o.duration_s = number<double>("--duration", v.duration, 0.01, 3600);
    }
    if (given("--window")) {
        o.window = number<unsigned>("--window", v.window, 1, 1u << 20);
    }
    if (given("--lifecycle-data")) {
        o.lifecycle_data = number<unsigned>("--lifecycle-data", v.lifecycle_data, 0, 1000);
    }
    if (given("--vip")) {
        std::optional<gen::endpoint> e = gen::parse_endpoint(v.vip);
        if (!e) {
            usage_error(fmt::format("--vip: '{}' is not ADDR:PORT", v.vip));
        }
        o.addr.vip = *e;
    }
    if (given("--backends")) {
        o.addr.backends.clear();
        std::stringstream list(v.backends);
        std::string item;
        while (std::getline(list, item, ',')) {
            std::optional<gen::endpoint> e = gen::parse_endpoint(item);
            if (!e) {
                usage_error(fmt::format("--backends: '{}' is not ADDR:PORT", item));
            }
            o.addr.backends.push_back(*e);
        }
        if (o.addr.backends.empty() || o.addr.backends.size() > 254) {
            usage_error("--backends: give 1 to 254 backends");
        }
    }
    if (given("--client-base")) {
        o.addr.client_base = address("--client-base", v.client_base);
    }
    if (given("--gateway")) {
        o.gateway = address("--gateway", v.gateway);
    }
    if (given("--lb-client")) {
        o.lb_client = address("--lb-client", v.lb_client);
    }
    if (given("--lb-backend")) {
        o.lb_backend = address("--lb-backend", v.lb_backend);
    }
    if (given("--pcap-packets")) {
        o.pcap_packets = number<uint64_t>("--pcap-packets", v.pcap_packets, 1, uint64_t(1) << 32);
    }
    if (given("--flood")) {
        o.flood = number<double>("--flood", v.flood, 0, 1e9);
    }
    if (given("--flood-base")) {
        o.flood_base = address("--flood-base", v.flood_base);
    }
    if (given("--queues")) {
        o.queues = number<uint16_t>("--queues", v.queues, 1, gen::max_queues);
    }
    if (given("--dst-mac")) {
        o.pcap_dst_mac = parse_mac(v.dst_mac);
    }
    if (o.reflect && o.mode == gen::traffic::lifecycle) {
        usage_error("--reflect: a 5-tuple swapper cannot answer a lifecycle; use established "
                    "or syn");
    }
    if ((o.flood > 0 || o.flood_answer) && o.mode != gen::traffic::lifecycle) {
        usage_error("--flood: a flood runs beside connections: use --mode lifecycle");
    }
    if (o.flood > 0 && (o.flood_base >> 16) == (o.addr.client_base >> 16)) {
        usage_error("--flood-base: the flood's /16 must not be the clients' (--client-base)");
    }
    if (o.sync && (cl.json_path == "-" || !o.pcap_path.empty())) {
        usage_error("--sync: needs stdout for its line (not --json -) and a device (not --pcap)");
    }
    if (cl.eal.empty()) {
        cl.eal = {"-l",
                  "0",
                  "--no-huge",
                  "-m",
                  "512",
                  "--no-pci",
                  "--log-level=*:warning",
                  fmt::format("--file-prefix=evengen-{}", getpid())};
    }
    if (!o.pcap_path.empty()) {
        cl.eal.push_back(fmt::format("--vdev=net_pcap_evengen,tx_pcap={}", o.pcap_path));
    }
    return cl;
}

const char* mode_name(gen::traffic t) {
    switch (t) {
    case gen::traffic::established:
        return "established";
    case gen::traffic::syn:
        return "syn";
    case gen::traffic::lifecycle:
        return "lifecycle";
    }
    return "?";
}

json phase_json(const gen::options& o, const gen::phase_result& p) {
    const gen::counters& c = p.count;
    json j;
    j["seconds"] = p.seconds;
    j["sent"] = {{"forward", c.tx[0]}, {"reverse", c.tx[1]}};
    j["received"] = {{"forward", c.rx[0]}, {"reverse", c.rx[1]}};
    int64_t loss = int64_t(c.sent()) - int64_t(c.received());
    j["loss"] = loss > 0 ? loss : 0;
    j["tx_busy"] = c.tx_busy;
    j["rate_deficit"] = c.rate_deficit;
    double secs = p.seconds > 0 ? p.seconds : 1;
    j["mpps"] = double(c.received()) / secs / 1e6;
    j["forward_mpps"] = double(c.rx[0]) / secs / 1e6;
    j["reverse_mpps"] = double(c.rx[1]) / secs / 1e6;
    uint64_t new_flows = 0;
    for (uint64_t n : c.new_flows_per_backend) {
        new_flows += n;
    }
    j["new_flows"] = new_flows;
    j["new_flows_per_s"] = double(new_flows) / secs;
    j["lifecycles_completed"] = c.lifecycles_completed;
    j["lifecycles_per_s"] = double(c.lifecycles_completed) / secs;
    j["lifecycles_started"] = c.lifecycles_started;
    if (o.flood > 0) {
        j["flood"] = {{"offered_per_s", o.flood},
                      {"sent", c.flood_sent},
                      {"sent_per_s", double(c.flood_sent) / secs},
                      {"answers_sent", c.flood_answers},
                      {"received", c.flood_received},
                      {"deficit", c.flood_deficit},
                      {"answered", o.flood_answer}};
    }
    j["errors"] = {{"total", c.errors()},
                   {"bad_checksum", c.bad_checksum},
                   {"malformed", c.malformed},
                   {"unknown_flow", c.unknown_flow},
                   {"wrong_endpoint", c.wrong_endpoint},
                   {"moved", c.moved},
                   {"reordered", c.reordered},
                   {"ttl_not_decremented", c.ttl_not_decremented},
                   {"duplicate_syn", c.duplicate_syn}};
    json backends = json::array();
    for (size_t i = 0; i < c.new_flows_per_backend.size() && i < o.addr.backends.size(); ++i) {
        uint64_t n = c.new_flows_per_backend[i];
        backends.push_back({{"backend", gen::format_endpoint(o.addr.backends[i])},
                            {"flows", n},
                            {"share", new_flows ? double(n) / double(new_flows) : 0.0}});
    }
    j["backends"] = backends;
    const gen::latency_histogram& h = p.latency;
    j["latency_us"] = {{"samples", h.count()},
                       {"p50", double(h.quantile(0.50)) / 1e3},
                       {"p90", double(h.quantile(0.90)) / 1e3},
                       {"p99", double(h.quantile(0.99)) / 1e3},
                       {"p999", double(h.quantile(0.999)) / 1e3},
                       {"max", double(h.max()) / 1e3}};
    return j;
}

void stop_ports() {
    uint16_t port = 0;
    RTE_ETH_FOREACH_DEV(port) {
        rte_eth_dev_stop(port);
    }
}

} // namespace

int main(int argc, char** argv) {
    command_line cl = parse(argc, argv);
    const gen::options& o = cl.opts;

    std::vector<char*> eal_argv{argv[0]};
    for (std::string& a : cl.eal) {
        eal_argv.push_back(a.data());
    }
    if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
        std::fprintf(stderr, "evengen: EAL initialisation failed (arguments after --)\n");
        return 2;
    }
    std::string error;
    std::optional<gen::run_result> r = gen::run(o, &error);
    if (!r) {
        std::fprintf(stderr, "evengen: %s\n", error.c_str());
        stop_ports();
        rte_eal_cleanup();
        return 2;
    }

    json out;
    out["mode"] = mode_name(o.mode);
    out["flows"] = o.flows;
    out["pkt_size"] = o.packet_size;
    out["rate"] = o.rate;
    out["reflect"] = o.reflect;
    out["dpdk"] = rte_version();
    int status = 0;
    if (!o.pcap_path.empty()) {
        out["pcap"] = o.pcap_path;
        out["packets_written"] = r->pcap_written;
        if (r->pcap_written == 0) {
            std::fprintf(stderr, "evengen: nothing written to %s\n", o.pcap_path.c_str());
            status = 1;
        }
    } else {
        out["warmup"] = phase_json(o, r->warmup);
        out["warmup"]["passes"] = r->warmup_passes;
        out["warmup"]["flows_never_landed"] = r->flows_never_landed;
        out["measured"] = phase_json(o, r->measured);
        const gen::counters& c = r->measured.count;
        if (c.errors() + r->warmup.count.errors() > 0 || c.sent() > c.received() ||
            r->flows_never_landed > 0) {
            status = 1;
        }
        const json& m = out["measured"];
        std::fprintf(stderr,
                     "evengen: %s %lu flows %zuB: %.3f Mpps received (%.3f fwd, %.3f rev), "
                     "loss %ld, errors %lu, p50 %.1f us p99 %.1f us\n",
                     mode_name(o.mode), (unsigned long)o.flows, o.packet_size,
                     m["mpps"].get<double>(), m["forward_mpps"].get<double>(),
                     m["reverse_mpps"].get<double>(), (long)m["loss"].get<int64_t>(),
                     (unsigned long)c.errors(), m["latency_us"]["p50"].get<double>(),
                     m["latency_us"]["p99"].get<double>());
    }
    std::string text = out.dump(2) + "\n";
    if (cl.json_path == "-") {
        std::fputs(text.c_str(), stdout);
    } else if (!cl.json_path.empty()) {
        std::ofstream f(cl.json_path);
        f << text;
        if (!f) {
            std::fprintf(stderr, "evengen: cannot write %s\n", cl.json_path.c_str());
            status = 2;
        }
    }
    stop_ports();
    rte_eal_cleanup();
    return status;
}
