#!/usr/bin/env python3
"""The figures of scripts/demo: read, printed and asserted here, so the demo shows only
what happened. Standard library only. Each command exits 1 (with "demo: FAILED: ...")
when what it reads is not what the demo says.

  demo.py shares WORK < `evenctl --json backends web`
        the fair-distribution table: each backend's flows (evenflowd's counters) against
        its configured share and against its own access log (WORK/srv/bK/access.log);
        asserts counters and logs agree and every share is near its expected share
  demo.py timeline LOG --after EPOCH --version V --figures FILE
        the incident as evenflowd's log tells it: the apply of version V, the health
        verdicts, the skew alarm, the automatic rollback and the backends back up, in
        seconds after the apply; asserts each happened; FILE gets KEY=VALUE lines (one line each)
  demo.py traffic REPORT --apply EPOCH --rollback EPOCH --figures FILE
        the background traffic's report (test/e2e/health.py traffic): requests and
        long-lived connections; asserts nothing failed, nothing was reset, the traffic
        ran through the incident and some long-lived connections were on the backends
        marked down; FILE gets KEY=VALUE lines
"""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # nothing left in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "e2e"))
from health import parse_line  # noqa: E402


def failed(what):
    print(f"demo: FAILED: {what}", file=sys.stderr)
    sys.exit(1)


def write_figures(path, figures):
    with open(path, "a") as f:
        for k, v in figures.items():
            f.write(f"{k}={' '.join(str(v).split())}\n")


def short(backend):
    """10.20.0.12:8080 -> b2 (the topology's naming)."""
    return "b%d" % (int(backend.split(":")[0].rsplit(".", 1)[1]) - 10)


# ---- shares ----

def cmd_shares(args):
    rows = json.load(sys.stdin)["backends"]
    total = sum(b["new_flows"] for b in rows)
    hdr = ("BACKEND", "WEIGHT", "EXPECTED", "FLOWS", "OBSERVED", "ACCESS LOG")
    print("%-18s %6s %9s %6s %9s %10s" % hdr)
    problems = []
    for b in rows:
        addr = b["backend"]
        with open(os.path.join(args.work, "srv", short(addr), "access.log")) as f:
            logged = sum(1 for line in f if "GET /hello" in line)
        observed = b["new_flows"] / total if total else 0.0
        print("%-18s %6d %8.1f%% %6d %8.1f%% %10d" % (addr, b["weight"], 100 * b["expected_share"],
                                                   b["new_flows"], 100 * observed, logged))
        if logged != b["new_flows"]:
            problems.append(f"{addr}: {b['new_flows']} flows counted, {logged} in its access log")
        p = b["expected_share"]
        # Ten points off, or five standard deviations for few requests.
        if total and abs(observed - p) > max(0.10, 5 * (p * (1 - p) / total) ** 0.5):
            problems.append(f"{addr}: {100 * observed:.1f}% observed, "
                            f"{100 * b['expected_share']:.1f}% expected")
    if total == 0:
        problems.append("no flows counted")
    if problems:
        failed("the distribution is not as shown: " + "; ".join(problems))
    return 0


# ---- timeline ----

def cmd_timeline(args):
    events = []
    with open(args.log, errors="replace") as f:
        for line in f:
            fields = parse_line(line)
            if fields is not None and fields["_epoch"] >= args.after - 0.01:
                events.append(fields)
    apply = next((e for e in events if e["event"] == "apply" and e.get("version") == str(args.version)),
                 None)
    if apply is None:
        failed(f"no apply of version {args.version} in evenflowd's log")
    t0 = apply["_epoch"]
    rollback = next((e for e in events if e["event"] == "auto_rollback" and e["_epoch"] >= t0), None)
    alarm = next((e for e in events if e["event"] == "skew_alarm" and e["_epoch"] >= t0), None)
    end = rollback["_epoch"] if rollback else float("inf")
    down = [e for e in events if e["event"] == "health" and e.get("to") == "down" and t0 <= e["_epoch"] <= end]
    up_after = [e for e in events if e["event"] == "health" and e.get("to") == "up"
                and rollback is not None and e["_epoch"] >= rollback["_epoch"]]
    lines = []

    def at(e, what):
        lines.append((e["_epoch"] - t0, what))

    at(apply, f"apply        version {args.version} ({apply.get('origin', '')}), {apply.get('changes', '?')} change(s)")
    for e in down:
        at(e, f"health       {short(e['backend'])} {e['backend']} {e['from']} -> down ({e.get('reason', '')})")
    if alarm:
        at(alarm, f"skew alarm   {short(alarm['backend'])} {alarm['backend']} {alarm['kind']}: "
                  f"{100 * float(alarm['observed']):.1f}% of {alarm['flows']} new connections, "
                  f"{100 * float(alarm['expected']):.1f}% expected")
    if rollback:
        at(rollback, f"rollback     version {rollback['version']} = {rollback.get('origin', '')}, "
                     f"by evenflowd ({rollback.get('via', '')}): {rollback.get('why', '')}")
    kept = [e for e in events if e["event"] == "probation_keeps_flows" and t0 <= e["_epoch"] <= end]
    if kept:
        e = kept[-1]
        at(e, f"probation    flows pinned to down backends kept, not reset "
              f"(down weight {e.get('down_weight', '?')} of {e.get('total_weight', '?')})")
    seen_up = {}
    for e in up_after:
        seen_up.setdefault(e["backend"], e)
    for e in sorted(seen_up.values(), key=lambda e: e["_epoch"]):
        at(e, f"health       {short(e['backend'])} {e['backend']} {e['from']} -> up")
    for dt, what in sorted(lines, key=lambda x: x[0]):
        print(f"  {dt:+6.2f} s  {what}")

    problems = []
    down_backends = sorted({e["backend"] for e in down})
    if len(down_backends) != args.expect_down:
        problems.append(f"{len(down_backends)} backend(s) marked down ({', '.join(down_backends) or 'none'}), "
                        f"expected {args.expect_down}")
    if alarm is None:
        problems.append("no skew alarm after the apply")
    if rollback is None:
        problems.append("no automatic rollback after the apply")
    if alarm and rollback and rollback["_epoch"] < alarm["_epoch"]:
        problems.append("the rollback came before the alarm")
    if rollback and len(seen_up) < args.backends:
        problems.append(f"only {len(seen_up)} of {args.backends} backends up again after the rollback")
    if problems:
        failed("the incident did not happen as shown: " + "; ".join(problems))
    figures = {
        "t_apply": f"{t0:.3f}",
        "t_rollback": f"{rollback['_epoch']:.3f}",
        "to_down": f"{down[0]['_epoch'] - t0:.1f}" if down else "",
        "to_alarm": f"{alarm['_epoch'] - t0:.1f}",
        "to_rollback": f"{rollback['_epoch'] - t0:.1f}",
        "to_up": f"{max(e['_epoch'] for e in seen_up.values()) - t0:.1f}",
        "rollback_version": rollback["version"],
        "rollback_origin": rollback.get("origin", ""),
        "alarm_backend": short(alarm["backend"]),
        "alarm_observed": f"{100 * float(alarm['observed']):.0f}%",
        "alarm_expected": f"{100 * float(alarm['expected']):.0f}%",
        "down_backends": " ".join(short(b) for b in down_backends),
        "down_list": " and ".join(", ".join(short(b) for b in down_backends).rsplit(", ", 1)),
    }
    write_figures(args.figures, figures)
    return 0


# ---- traffic ----

def cmd_traffic(args):
    try:
        with open(args.report) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        failed(f"no report from the background traffic ({e})")
    conns = r["longlived"]
    per_backend = {}
    for c in conns:
        name = c["backend"] or "none"
        per_backend[name] = per_backend.get(name, 0) + 1
    broken = [c for c in conns if c["error"]]
    # Requests per second around the incident, by backend (the report's buckets are
    # seconds since its own start).
    apply_s, rollback_s = args.apply - r["t0"], args.rollback - r["t0"]
    during = {}
    for sec, counts in r["per_second"].items():
        if apply_s <= int(sec) <= rollback_s:
            for k, v in counts.items():
                during[k] = during.get(k, 0) + v
    print(f"requests: {r['requests_ok']} answered, {r['requests_failed']} failed, over "
          f"{r['seconds']:.0f} s ({r['rate_achieved']:.0f}/s), "
          f"{sum(v for k, v in during.items() if k != 'fail')} of them between the apply "
          f"and the rollback")
    print(f"long-lived connections: {len(conns)} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(per_backend.items()))}), "
          f"{sum(c['exchanges'] for c in conns)} requests on them, {len(broken)} broken, "
          f"longest gap between two answers {max((c['max_gap_s'] for c in conns), default=0):.1f} s")
    problems = []
    if r["requests_failed"]:
        problems.append(f"{r['requests_failed']} requests failed ({r['failure_kinds']})")
    if broken:
        kinds = {}
        for c in broken:
            kinds[c["error"]] = kinds.get(c["error"], 0) + 1
        problems.append(f"{len(broken)} long-lived connections broken ({kinds})")
    if r["requests_ok"] == 0 or not during:
        problems.append("no traffic ran through the incident")
    down = set(args.down.split())
    on_down = sum(n for b, n in per_backend.items() if b in down)
    if on_down == 0:
        problems.append(f"no long-lived connection on the backends marked down ({args.down})")
    if any(c["exchanges"] == 0 for c in conns):
        problems.append("a long-lived connection never answered")
    if problems:
        failed("the traffic was not untouched: " + "; ".join(problems))
    write_figures(args.figures, {
        "requests_ok": r["requests_ok"], "requests_failed": r["requests_failed"],
        "traffic_seconds": f"{r['seconds']:.0f}", "rate": f"{r['rate_achieved']:.0f}",
        "longlived": len(conns), "longlived_on_down": on_down, "longlived_broken": len(broken),
        "longlived_exchanges": sum(c["exchanges"] for c in conns),
        "max_gap": f"{max(c['max_gap_s'] for c in conns):.1f}",
    })
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("shares")
    p.add_argument("work")
    p = sub.add_parser("timeline")
    p.add_argument("log")
    p.add_argument("--after", type=float, required=True)
    p.add_argument("--version", type=int, required=True)
    p.add_argument("--expect-down", type=int, default=3)
    p.add_argument("--backends", type=int, default=4)
    p.add_argument("--figures", required=True)
    p = sub.add_parser("traffic")
    p.add_argument("report")
    p.add_argument("--apply", type=float, required=True)
    p.add_argument("--rollback", type=float, required=True)
    p.add_argument("--down", required=True)
    p.add_argument("--figures", required=True)
    args = ap.parse_args()
    return {"shares": cmd_shares, "timeline": cmd_timeline, "traffic": cmd_traffic}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
