#!/usr/bin/env python3
"""Where a packet's cycles and instructions go: evenflowd's worker against testpmd's 5tswap.

    bench/profile.py [--build DIR] [--seconds S] [--top N]      callgrind (below)
    bench/profile.py --perf [--release DIR] [--flows N] [--top N]

--perf: the worker under real load on memif, sampled by the clock. evenflowd (the release
build, DIR default build-release) between evengen's two memif ports exactly as
scripts/bench runs its established point (100k flows, both directions, flat out);
`perf record -e cpu-clock` on evenflowd's process from evengen's "ready" to its "done"
(--sync), samples of the worker's thread (lcore-worker-1) by function. Each function's
share of the worker's samples times the worker's cycles per packet (busy_cycles /
rx_packets from `evenctl --json stats` over the same phase) gives cycles per packet per
function. The clock, not the PMU: this VM exposes no hardware counters to perf
(`perf stat -e cycles` reports <not supported>), so there are no cache-miss figures here;
the callgrind run below simulates them.

Without --perf, both under `valgrind --tool=callgrind --cache-sim=yes`, on net_ring (in-process rings,
no copies), so that what differs is the devices' own work:

  testpmd    dpdk-testpmd --forward-mode=5tswap on one net_ring port looped onto itself
             (--tx-first: a burst circulates, swapped on every pass), S seconds; its
             forwarding lcore's thread divided by the packets it forwarded.
  evenflowd  the instruction gate's workloads (bench/gate_workload.cpp: established
             flows both ways, SYNs of new flows, one worker), counted in the worker's loop.

Prints instructions, data reads and simulated first-level and last-level cache misses
per packet, and evenflowd's self cost per function. memif is left out: under valgrind
DPDK's interrupt thread panics when a memif peer connects (epoll_ctl on the passed
descriptors fails); its copies cost both devices the same (scripts/bench's cycles).
A diagnosis tool for optimisation work; nothing is gated on it.
"""

import argparse
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load(name, path):
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


gate = load("gate", ROOT / "bench/gate.py")


def summary(path):
    text = Path(path).read_text(errors="replace")
    e = re.search(r"^events: (.*)$", text, re.M)
    v = re.search(r"^summary: (.*)$", text, re.M)
    if not e or not v:
        return {}
    events = e.group(1).split()
    values = [int(x) for x in v.group(1).split()]
    return dict(zip(events, values + [0] * (len(events) - len(values))))


def per_packet(s, packets):
    return {"instructions": s.get("Ir", 0) / packets,
            "data reads": s.get("Dr", 0) / packets,
            "L1 misses": (s.get("D1mr", 0) + s.get("D1mw", 0)) / packets,
            "LL misses": (s.get("DLmr", 0) + s.get("DLmw", 0)) / packets}


def testpmd(workdir, seconds):
    out = workdir / "testpmd.cg"
    cmd = ["valgrind", "--tool=callgrind", "--cache-sim=yes", "--separate-threads=yes",
           f"--callgrind-out-file={out}.%p", "dpdk-testpmd", "--no-huge", "-m", "1024",
           "--no-pci", "-l", "0,1", "--file-prefix", f"ef-prof-{os.getpid()}",
           "--vdev=net_ring0", "--log-level=*:warning", "--", "--forward-mode=5tswap",
           "--tx-first", "--nb-cores=1", "--port-topology=loop", "--record-core-cycles",
           "--total-num-mbufs=16384"]
    log = workdir / "testpmd.log"
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=f, stderr=subprocess.STDOUT)
        time.sleep(seconds)
        p.communicate(b"\n", timeout=300)
    m = re.search(r"total \S+ packets=(\d+)", log.read_text(errors="replace"))
    if not m:
        raise RuntimeError(f"testpmd printed no packet count; see {log}")
    packets = int(m.group(1))
    # Its forwarding lcore is the thread with the most instructions.
    dumps = list(workdir.glob("testpmd.cg.*"))
    best = max(dumps, key=lambda d: summary(d).get("Ir", 0))
    return packets, summary(best)


# The worker's idle-time work (worker::sweep walks the flow table when a poll received
# nothing): not part of a packet's cost.
IDLE = re.compile(r"worker::sweep|flow_table::(slot_used|slot_deadline|free_slot)\b")


def perf_profile(build, flows, seconds, top):
    bench = load("bench_script", ROOT / "scripts/bench")
    if shutil.which("perf") is None:
        print("profile: perf not found (apt-get install linux-perf)", file=sys.stderr)
        return 2
    subprocess.run(["meson", "compile", "-C", str(build), "evenflowd", "evenctl", "evengen"],
                   check=True, stdout=subprocess.DEVNULL)
    workdir = Path(tempfile.mkdtemp(prefix="evenflow-perf-"))
    print(f"profile: logs and perf.data in {workdir}", file=sys.stderr)
    bench.SOCKETS.mkdir(parents=True, exist_ok=True)
    data = workdir / "perf.data"
    dev = bench.Device("evenflowd", build, workdir, max(1 << 20, 4 * flows), "perf")
    plain_stats = dev.stats
    perf = []

    def stats():
        # evengen's "ready": counters, then the sampling starts; "done": it stops first.
        if perf:
            perf[0].send_signal(signal.SIGINT)
            perf[0].wait(timeout=60)
            return plain_stats()
        s = plain_stats()
        perf.append(subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4999",
                                      "-p", str(dev.proc.pid), "-o", str(data)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)  # perf attaches to every thread before the measured phase starts
        return s

    dev.stats = stats
    try:
        dev.start()
        result, c = bench.run_evengen(build, workdir, "perf-gen", "established", flows,
                                      seconds, dev)
    finally:
        dev.stop()
        if perf and perf[0].poll() is None:
            perf[0].kill()
        shutil.rmtree(bench.SOCKETS, ignore_errors=True)
    packets = c.get("packets", 0)
    if not packets or not data.exists():
        print(f"profile: no measurement (see {workdir})", file=sys.stderr)
        return 1
    rep = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children",
                          "--sort", "comm,dso,sym", "--percent-limit", "0"],
                         capture_output=True, text=True)
    shares = {}
    for line in rep.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+(\S+)\s+\[.\]\s+(.*)$", line)
        # DPDK names the worker's thread rte-worker-N (lcore-worker-N in later releases).
        if m and re.match(r"(rte|lcore)-worker-", m.group(2)):
            sym = m.group(4).strip()
            if sym.startswith("0x"):
                sym = "(no symbols)"  # a stripped library: all of it on one line
            key = (m.group(3), sym)
            shares[key] = shares.get(key, 0.0) + float(m.group(1))
    total = sum(shares.values())
    if not total:
        print(f"profile: no samples of the worker's thread (see {workdir})", file=sys.stderr)
        return 1
    cpp = c["cycles_per_packet"]
    m = result["measured"]
    idle = sum(v for (dso, sym), v in shares.items() if IDLE.search(sym))
    busy = total - idle
    print(f"evenflowd established-{flows}, 1 worker, memif, {seconds:g} s: {packets} packets, "
          f"{m['mpps']:.2f} Mpps at evengen, {cpp:.0f} busy cycles/packet (evenctl stats)")
    print(f"worker thread: {total:.1f}% of the process's samples; {idle / total:.1%} of them in "
          f"the idle-time table sweep (worker::sweep and its helpers: not per packet). "
          f"cyc/pkt = the function's share of the other samples x {cpp:.0f}; those samples "
          f"also hold empty polls (memif RX), so the per-packet figures are upper bounds\n")
    print(f"{'share':>7} {'cyc/pkt':>8}  function (object)")
    for (dso, sym), share in sorted(shares.items(), key=lambda kv: -kv[1])[:top]:
        per = "idle" if IDLE.search(sym) else f"{share / busy * cpp:.1f}" if busy else "-"
        print(f"{share / total:>7.1%} {per:>8}  {sym} ({dso})")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", type=Path, default=ROOT / "build",
                    help="meson build with tests and benchmarks (bench/gate_workload)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="testpmd's run under valgrind (30), --perf: the measured phase (5)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--perf", action="store_true",
                    help="sample the worker under real memif load with perf (cpu-clock)")
    ap.add_argument("--release", type=Path, default=ROOT / "build-release",
                    help="--perf: the build evenflowd runs from (scripts/bench's)")
    ap.add_argument("--flows", type=int, default=100_000, help="--perf: established flows")
    args = ap.parse_args()
    if args.perf:
        if os.geteuid() != 0:
            print("profile: needs root (memif sockets, perf on another process)",
                  file=sys.stderr)
            return 2
        return perf_profile(args.release.resolve(), args.flows, args.seconds or 5, args.top)
    if os.geteuid() != 0 or shutil.which("valgrind") is None:
        print("profile: needs root and valgrind", file=sys.stderr)
        return 2
    binary = args.build.resolve() / "bench/gate_workload"
    subprocess.run(["meson", "compile", "-C", str(args.build), "bench/gate_workload"],
                   capture_output=True)
    workdir = Path(tempfile.mkdtemp(prefix="evenflow-prof-"))
    print(f"profile: dumps in {workdir}", file=sys.stderr)

    packets, tp = testpmd(workdir, args.seconds or 30)
    rows = {"testpmd 5tswap (net_ring loop)": per_packet(tp, packets)}

    out = workdir / "evenflowd.cg"
    r = subprocess.run(["valgrind", "--tool=callgrind", "--cache-sim=yes",
                        "--compress-strings=no", "--compress-pos=no",
                        f"--callgrind-out-file={out}",
                        "--toggle-collect=evenflow::dataplane::worker::poll_once*", str(binary),
                        "gate: established-100k,gate: syn-100k"],
                       capture_output=True, text=True)
    (workdir / "evenflowd.log").write_text(r.stdout + r.stderr)
    gates = {g["workload"]: g for g in
             (json.loads(x[5:]) for x in r.stdout.splitlines() if x.startswith("GATE "))}
    dumps = {}
    for d in workdir.glob("evenflowd.cg.*"):
        m = re.search(r"^desc: Trigger: Client Request: (\S+)", d.read_text(errors="replace"),
                      re.M)
        if m:
            dumps[m.group(1)] = d
    for name in ("established-100k", "syn-100k"):
        if name in dumps and name in gates:
            rows[f"evenflowd {name}"] = per_packet(summary(dumps[name]),
                                                   gates[name]["packets"])

    cols = ["instructions", "data reads", "L1 misses", "LL misses"]
    print(f"\n{'per packet':<36}" + "".join(f"{c:>14}" for c in cols))
    for name, v in rows.items():
        print(f"{name:<36}" + "".join(f"{v[c]:>14.1f}" for c in cols))
    for name in ("established-100k", "syn-100k"):
        if name in dumps:
            print(f"\nevenflowd {name}: self cost per function, instructions per packet")
            for ir, fn in gate.self_costs(dumps[name], args.top):
                print(f"{ir / gates[name]['packets']:10.1f}  {fn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
