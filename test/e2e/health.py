#!/usr/bin/env python3
"""Helpers of the health-check and replay end-to-end tests (test/e2e/health.sh,
test/e2e/replay.sh) and of scripts/demo (traffic, listen, the log parser). Standard
library only; the connections are test/lib/clients.py's.

  health.py waitlog LOG --after EPOCH [--timeout S] [--count N] KEY=VALUE...
        waits for the N-th evenflowd log line (logfmt, "ts=...Z level=.. event=..")
        at or after EPOCH whose fields match every KEY=VALUE (VALUE may be a|b|c);
        prints that line's time as epoch seconds, exit 1 on timeout
  health.py loglines LOG --after EPOCH KEY=VALUE...
        prints the matching lines (for reports)
  health.py listen ADDR PORT [--reset]
        a TCP listener; with --reset every accepted connection is closed at once with
        SO_LINGER 0 (the peer gets a RST): "a backend that accepts then resets"
  health.py pinned --backend NAME --go FILE [--vip V] [--port P] [--timeout S]
        opens echo connections until one reaches backend NAME (the echo server greets
        with its name), keeps that one, prints {"pinned": NAME, ...} and waits until
        FILE exists; then sends one message and prints what happened to it:
        {"result": "ok"|"reset"|"eof"|"stall"|...}
  health.py traffic [options]
        steady load for the replay: new HTTP connections at --rate per second, --echo
        long-lived echo connections and --keepalive long-lived HTTP keep-alive
        connections exchanging every --interval; runs until --stop FILE exists or
        --duration passes; prints one JSON report (timestamps are epoch seconds)
  health.py elapsed T0 T1            prints T1 - T0 with two decimals
"""
import argparse
import asyncio
import json
import os
import re
import socket
import struct
import sys
import time
from datetime import datetime, timezone

sys.dont_write_bytecode = True  # nothing left in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from clients import LongLived, error_kind, http_get  # noqa: E402

# ---- evenflowd's log ----

_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_line(line):
    fields = {}
    for key, value in _FIELD.findall(line):
        if value.startswith('"'):
            value = re.sub(r'\\(.)', r'\1', value[1:-1])
        fields[key] = value
    if "ts" not in fields or "event" not in fields:
        return None
    try:
        ts = datetime.strptime(fields["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
    fields["_epoch"] = ts.replace(tzinfo=timezone.utc).timestamp()
    return fields


def matches(fields, wanted):
    for key, value in wanted.items():
        if fields.get(key) not in value.split("|"):
            return False
    return True


def read_matching(path, after, wanted):
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                fields = parse_line(line)
                # Log times have millisecond resolution: allow for the truncation.
                if fields and fields["_epoch"] >= after - 0.001 and matches(fields, wanted):
                    out.append((fields, line.rstrip("\n")))
    except FileNotFoundError:
        pass
    return out


def parse_wanted(pairs):
    wanted = {}
    for p in pairs:
        key, _, value = p.partition("=")
        wanted[key] = value
    return wanted


def cmd_waitlog(args):
    wanted = parse_wanted(args.match)
    deadline = time.monotonic() + args.timeout
    while True:
        found = read_matching(args.log, args.after, wanted)
        if len(found) >= args.count:
            print(f"{found[args.count - 1][0]['_epoch']:.3f}")
            return 0
        if time.monotonic() >= deadline:
            return 1
        time.sleep(0.05)


def cmd_loglines(args):
    for _, line in read_matching(args.log, args.after, parse_wanted(args.match)):
        print(line)
    return 0


# ---- servers ----

def cmd_listen(args):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.addr, args.port))
    srv.listen(1024)
    held = []
    while True:
        conn, _ = srv.accept()
        if args.reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        else:
            held.append(conn)  # keep it open; the peer decides
            if len(held) > 256:
                held.pop(0).close()


# ---- a connection pinned to one backend ----

async def pinned(args):
    keep = None
    tries = 0
    others = []
    deadline = time.monotonic() + args.timeout
    while keep is None and tries < 200 and time.monotonic() < deadline:
        tries += 1
        c = LongLived(tries)
        await c.open(args.vip, args.port)
        if c.backend == args.backend:
            keep = c
        else:
            others.append(c)
    for c in others:
        c.close()
    if keep is None:
        print(json.dumps({"pinned": None, "tries": tries}), flush=True)
        return 1
    await keep.exchange(3)  # the connection works before the event
    print(json.dumps({"pinned": args.backend, "tries": tries}), flush=True)
    while not os.path.exists(args.go) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    t0 = time.monotonic()
    result = await keep.probe(3) or "ok"
    print(json.dumps({"result": result, "seconds": round(time.monotonic() - t0, 3)}), flush=True)
    keep.close()
    return 0


# ---- replay traffic ----

async def one_request(args, t0, buckets, failures, inflight):
    started = time.time()
    sec = str(int(started - t0))
    b = buckets.setdefault(sec, {})
    inflight[0] += 1
    try:
        name = await http_get(args.vip, args.http_port, timeout=5, connect_timeout=3,
                              agent="evenflow-replay")
        b[name] = b.get(name, 0) + 1
    except Exception as e:  # noqa: BLE001
        b["fail"] = b.get("fail", 0) + 1
        failures.append({"at": round(started, 3), "kind": error_kind(e)})
    finally:
        inflight[0] -= 1


async def traffic(args):
    stop = asyncio.Event()
    t0 = time.time()
    conns = [LongLived(i, "echo") for i in range(args.echo)]
    conns += [LongLived(i, "keepalive", agent="evenflow-replay") for i in range(args.keepalive)]
    tasks = []
    for c in conns:
        port = args.echo_port if c.kind == "echo" else args.http_port
        tasks.append(asyncio.create_task(c.open_and_run(args.vip, port, args.interval, stop, args.stall)))
        await asyncio.sleep(0.01)
    buckets, failures, inflight = {}, [], [0]
    skipped = 0
    requests = []
    tick = 0.01
    per_tick = args.rate * tick
    owed = 0.0
    ready_written = False
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= args.duration or (args.stop and os.path.exists(args.stop)):
            break
        if not ready_written and elapsed >= 1.0 and args.ready:
            with open(args.ready, "w") as f:
                f.write(json.dumps({"at": time.time()}))
            ready_written = True
        owed += per_tick
        while owed >= 1.0:
            owed -= 1.0
            if inflight[0] >= args.max_inflight:
                skipped += 1
                continue
            requests.append(asyncio.create_task(one_request(args, t0, buckets, failures, inflight)))
        if len(requests) > 2000:
            requests = [t for t in requests if not t.done()]
        await asyncio.sleep(tick)
    stop.set()
    await asyncio.gather(*requests, return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    total_ok = sum(v for b in buckets.values() for k, v in b.items() if k != "fail")
    report = {
        "t0": round(t0, 3), "seconds": round(time.time() - t0, 2),
        "requests_ok": total_ok, "requests_failed": len(failures), "skipped": skipped,
        "rate_achieved": round((total_ok + len(failures)) / max(0.001, time.time() - t0), 1),
        "per_second": {k: buckets[k] for k in sorted(buckets, key=int)},
        "failures": failures[:200],
        "failure_kinds": {},
        "longlived": [{"kind": c.kind, "idx": c.idx, "backend": c.backend,
                       "exchanges": c.exchanges, "error": c.error,
                       "error_at": round(c.error_at, 3) if c.error_at else None,
                       "max_gap_s": round(c.max_gap, 3)} for c in conns],
    }
    for f in failures:
        report["failure_kinds"][f["kind"]] = report["failure_kinds"].get(f["kind"], 0) + 1
    print(json.dumps(report))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("waitlog")
    p.add_argument("log")
    p.add_argument("--after", type=float, default=0)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("match", nargs="+")
    p = sub.add_parser("loglines")
    p.add_argument("log")
    p.add_argument("--after", type=float, default=0)
    p.add_argument("match", nargs="+")
    p = sub.add_parser("listen")
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--reset", action="store_true")
    p = sub.add_parser("pinned")
    p.add_argument("--vip", default="10.10.0.100")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--backend", required=True)
    p.add_argument("--go", required=True)
    p.add_argument("--timeout", type=float, default=30)
    p = sub.add_parser("traffic")
    p.add_argument("--vip", default="10.10.0.100")
    p.add_argument("--http-port", type=int, default=80)
    p.add_argument("--echo-port", type=int, default=9000)
    p.add_argument("--rate", type=float, default=300)
    p.add_argument("--echo", type=int, default=20)
    p.add_argument("--keepalive", type=int, default=20)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--stall", type=float, default=3.0)
    p.add_argument("--max-inflight", type=int, default=256)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--stop")
    p.add_argument("--ready")
    p = sub.add_parser("elapsed")
    p.add_argument("t0", type=float)
    p.add_argument("t1", type=float)
    args = ap.parse_args()
    if args.cmd == "waitlog":
        return cmd_waitlog(args)
    if args.cmd == "loglines":
        return cmd_loglines(args)
    if args.cmd == "listen":
        return cmd_listen(args)
    if args.cmd == "elapsed":
        print(f"{args.t1 - args.t0:.2f}")
        return 0
    fn = {"pinned": pinned, "traffic": traffic}[args.cmd]
    return asyncio.run(fn(args))


if __name__ == "__main__":
    sys.exit(main())
