#!/usr/bin/env python3
"""Instruction gate: the worker's instructions per packet, against a committed baseline.

    bench/gate.py [--build DIR] [--runs N] [--update] [--annotate] [--json FILE]

Runs the fixed workloads of bench/gate_workload.cpp (the real worker on the dataplane
tier's net_ring rig, driven in full bursts from one thread) under

    valgrind --tool=callgrind --toggle-collect='evenflow::dataplane::worker::poll_once*'

so that only the worker's loop is counted (its net_ring RX/TX included), one callgrind
dump per workload's measured phase. Instructions per packet = the dump's instructions /
the packets the workload put in (it prints them, and checks that every one came out,
that nothing was dropped and that no poll was idle). Deterministic: the same build
gives the same count on every run (bench/baseline.json records the spread measured over
repeated runs), unlike cycles, which on a VM that shares its cores measure the
neighbours as much as the code.

Fails (exit 1) when a workload costs more than its baseline by more than the margin in
bench/baseline.json, or a workload did not run as intended; exit 2 when it cannot run
(valgrind missing, build not configured). A workload cheaper than its baseline by more
than the margin passes with a note: record the gain.

--update rewrites bench/baseline.json from this run (with --runs N: from the first of N
runs, with their spread recorded). Updating the baseline is a deliberate commit of its
own, with the reason in the message (README.md, "Benchmark").
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "bench" / "baseline.json"
TOGGLE = "evenflow::dataplane::worker::poll_once*"
DEFAULT_MARGIN = 0.02


def log(msg):
    print(f"gate: {msg}", file=sys.stderr, flush=True)


def build_info(build):
    """What the counts depend on: compiler, build type, DPDK."""
    info = {}
    try:
        opts = json.loads((build / "meson-info" / "intro-buildoptions.json").read_text())
        by_name = {o["name"]: o["value"] for o in opts}
        info["buildtype"] = by_name.get("buildtype")
        info["b_sanitize"] = by_name.get("b_sanitize")
        text = (build / "meson-logs" / "meson-log.txt").read_text(errors="replace")
        m = re.search(r"C\+\+ compiler for the host machine: \S+ \((\w+) ([\d.]+)", text)
        if m:
            info["compiler"] = f"{m.group(1)} {m.group(2)}"
    except (OSError, ValueError, KeyError):
        pass
    r = subprocess.run(["pkg-config", "--modversion", "libdpdk"], capture_output=True, text=True)
    info["dpdk"] = r.stdout.strip() or "?"
    r = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    info["valgrind"] = r.stdout.strip() or "?"
    return info


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def run_once(binary, workdir):
    """One valgrind run of every workload: {name: {...}}, or raises RuntimeError."""
    out = workdir / "callgrind.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           "--compress-strings=no", "--compress-pos=no",
           f"--toggle-collect={TOGGLE}", str(binary)]
    started = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - started
    (workdir / "run.log").write_text(r.stdout + r.stderr)
    lines = [json.loads(line[5:]) for line in r.stdout.splitlines() if line.startswith("GATE ")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"the workloads failed under valgrind (exit {r.returncode}); "
                           f"see {workdir / 'run.log'}")
    dumps = {}
    for f in workdir.glob("callgrind.out.*"):
        text = f.read_text(errors="replace")
        m = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
        t = re.search(r"^totals: (\d+)", text, re.M)
        if m and t:
            dumps[m.group(1)] = (int(t.group(1)), f)
    results = {}
    for g in lines:
        name = g["workload"]
        if name not in dumps:
            raise RuntimeError(f"no callgrind dump for {name}; see {workdir}")
        ir, path = dumps[name]
        problems = []
        if not g["valgrind"]:
            problems.append("not run under valgrind")
        if not g["packets"] == g["rx_packets"] == g["forwarded"]:
            problems.append(f'{g["packets"]} packets in, {g["rx_packets"]} received, '
                            f'{g["forwarded"]} out')
        if g["idle_polls"]:
            problems.append(f'{g["idle_polls"]} idle polls (sweeps) in the measured phase')
        results[name] = {"workers": g["workers"], "packets": g["packets"], "instructions": ir,
                         "instructions_per_packet": ir / g["packets"], "handoff": g["handoff"],
                         "problems": problems, "dump": str(path)}
    return results, seconds


def self_costs(path, top=20):
    """Self cost per function (code inlined into it included, by the file it came from),
    from a callgrind dump written with --compress-strings=no: [(instructions, name)]."""
    costs = {}
    fn, fl, fi, after_call = "?", "", "", False
    for line in open(path, errors="replace"):
        if line.startswith("fl="):
            fl = fi = line[3:].strip()
        elif line.startswith("fn="):
            fn, fi = line[3:].strip(), fl
        elif line.startswith(("fi=", "fe=")):
            fi = line[3:].strip()
        elif line.startswith("calls="):
            after_call = True
        elif line[:1] in "+-*0123456789" and line.strip():
            parts = line.split()
            if after_call:
                after_call = False  # the call's inclusive cost, not this function's
                continue
            if len(parts) >= 2:
                key = (fn, fi if fi != fl else "")
                costs[key] = costs.get(key, 0) + int(parts[1])
    rows = []
    for (fn, fi), ir in costs.items():
        name = fn.replace("(anonymous namespace)::", "")
        name = re.sub(r"\((?:[^()]|\([^()]*\))*\)( const)?$", "()", name)  # arguments
        name = re.sub(r"^evenflow::", "", name)
        if fi:
            name += f"  [inlined from {re.sub(r'^.*/(lib|include)/', '', fi)}]"
        rows.append((ir, name))
    rows.sort(reverse=True)
    return rows[:top]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", type=Path, default=ROOT / "build",
                    help="meson build directory with tests and benchmarks (default: build)")
    ap.add_argument("--baseline", type=Path, default=BASELINE)
    ap.add_argument("--runs", type=int, default=1, help="valgrind runs (spread over them)")
    ap.add_argument("--update", action="store_true", help="rewrite the baseline from this run")
    ap.add_argument("--margin", type=float, default=None,
                    help="with --update: the margin to record (default: the baseline's)")
    ap.add_argument("--annotate", action="store_true",
                    help="print where the instructions go (callgrind_annotate), per workload")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    build = args.build.resolve()

    if shutil.which("valgrind") is None:
        log("valgrind not found (scripts/bootstrap installs it)")
        return 2
    if not (build / "build.ninja").exists():
        log(f"{build} is not a configured meson build directory")
        return 2
    r = subprocess.run(["meson", "compile", "-C", str(build), "bench/gate_workload"],
                       capture_output=True, text=True)
    binary = build / "bench" / "gate_workload"
    if r.returncode != 0 or not binary.exists():
        log(f"cannot build bench/gate_workload in {build} (configured with -Dtests=true "
            f"-Dbenchmarks=true?):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        return 2

    info = build_info(build)
    baseline = {}
    if args.baseline.exists():
        baseline = json.loads(args.baseline.read_text())
    margin = args.margin if args.margin is not None else baseline.get("margin", DEFAULT_MARGIN)

    workdir = Path(tempfile.mkdtemp(prefix="evenflow-gate-"))
    runs = []
    try:
        for i in range(args.runs):
            d = workdir / f"run{i + 1}"
            d.mkdir()
            results, seconds = run_once(binary, d)
            runs.append(results)
            log(f"run {i + 1}/{args.runs}: {seconds:.0f} s: " + ", ".join(
                f"{n} {v['instructions_per_packet']:.2f}" for n, v in results.items()))
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        log(f"FAILED: {e}")
        return 1

    names = list(runs[0])
    problems = []
    summary = {}
    for name in names:
        values = [r[name]["instructions_per_packet"] for r in runs if name in r]
        lo, hi = min(values), max(values)
        first = runs[0][name]
        problems += [f"{name}: {p}" for p in first["problems"]]
        summary[name] = {"workers": first["workers"], "packets": first["packets"],
                         "instructions": first["instructions"],
                         "instructions_per_packet": round(first["instructions_per_packet"], 3),
                         "handoff": first["handoff"],
                         "runs": len(values), "min": round(lo, 3), "max": round(hi, 3),
                         "spread": (hi - lo) / lo if lo else 0.0}

    base_w = baseline.get("workloads", {})
    base_build = baseline.get("build", {})
    mismatch = [f"{k} {base_build.get(k)!r} -> {info.get(k)!r}"
                for k in ("compiler", "buildtype", "b_sanitize", "dpdk")
                if base_build and base_build.get(k) != info.get(k)]
    print(f"\n{'WORKLOAD':<24}{'WORKERS':>8}{'PACKETS':>9}{'INSTR/PKT':>11}{'BASELINE':>10}"
          f"{'CHANGE':>9}{'SPREAD':>9}  VERDICT")
    verdicts = {}
    for name, s in summary.items():
        b = base_w.get(name, {}).get("instructions_per_packet")
        change = (s["instructions_per_packet"] - b) / b if b else None
        if args.update:
            verdict = "recorded"
        elif b is None:
            verdict = "no baseline"
            problems.append(f"{name}: no baseline in {args.baseline} (record one with --update)")
        elif change > margin:
            verdict = f"WORSE by more than {margin:.0%}"
            problems.append(f"{name}: {s['instructions_per_packet']:.1f} instructions/packet, "
                            f"baseline {b:.1f} (+{change:.2%}, margin {margin:.0%})")
        elif change < -margin:
            verdict = "better: record it (--update)"
        else:
            verdict = "ok"
        verdicts[name] = verdict
        print(f"{name:<24}{s['workers']:>8}{s['packets']:>9}{s['instructions_per_packet']:>11.1f}"
              f"{(f'{b:.1f}' if b else '-'):>10}"
              f"{(f'{change:+.2%}' if change is not None else '-'):>9}"
              f"{s['spread']:>9.3%}  {verdict}")
    if mismatch and not args.update:
        print(f"note: the baseline was recorded on another toolchain ({'; '.join(mismatch)}): "
              "instruction counts move with the compiler and DPDK; if this is the new CI "
              "toolchain, record a baseline for it (--update) in a commit of its own")
    if "established-100k" in summary and "established-100k-2w" in summary:
        one = summary["established-100k"]
        two = summary["established-100k-2w"]
        extra = two["instructions_per_packet"] - one["instructions_per_packet"]
        per_handoff = extra * two["packets"] / two["handoff"] if two["handoff"] else 0
        print(f"hand-off (2 workers, no NIC steering): +{extra:.1f} instructions per packet "
              f"over 1 worker, {per_handoff:.1f} per packet handed over "
              f"({two['handoff']} of {two['packets']})")

    if args.annotate:
        for name in names:
            print(f"\n--- {name}: where the instructions go (self cost, % of the workload)")
            total = runs[0][name]["instructions"]
            for ir, fn in self_costs(runs[0][name]["dump"]):
                per = ir / runs[0][name]["packets"]
                print(f"{per:9.1f}/pkt {100 * ir / total:5.1f}%  {fn}")

    if args.update:
        new = {
            "about": "Instructions per packet of the worker (bench/gate.py: callgrind on "
                     "bench/gate_workload.cpp). Update only in a commit of its own that says "
                     "why: bench/gate.py --update --runs 10.",
            "tool": f"valgrind --tool=callgrind --toggle-collect='{TOGGLE}' "
                    "build/bench/gate_workload",
            "build": info,
            "margin": margin,
            "recorded": time.strftime("%Y-%m-%d"),
            "machine": cpu_model(),
            "spread": {"runs": args.runs,
                       "max_relative": max(s["spread"] for s in summary.values())},
            "workloads": {n: {"workers": s["workers"], "packets": s["packets"],
                              "instructions": s["instructions"],
                              "instructions_per_packet": s["instructions_per_packet"],
                              "spread": s["spread"]}
                          for n, s in summary.items()},
        }
        args.baseline.write_text(json.dumps(new, indent=2) + "\n")
        print(f"baseline written: {args.baseline}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"build": info, "margin": margin, "workloads": summary,
                                         "verdicts": verdicts, "problems": problems},
                                        indent=2) + "\n")
    for p in problems:
        print(f"gate: FAILED: {p}", file=sys.stderr)
    if not problems:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"gate: {'FAILED' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
