#!/usr/bin/env python3
"""The clients of test/e2e/hosts.sh: traffic through a VIP that two balancer hosts
announce, kept up across every event the tier causes, and what it saw.

  hosts.py traffic VIP PORT CONNS INTERVAL NEW_PER_S STOP_FILE OUT_JSON [MAX_S]
      CONNS long-lived HTTP/1.1 keep-alive connections, each a GET every INTERVAL s
      (a connection that fails is recorded and replaced), and NEW_PER_S new
      connections a second, each one HTTP/1.0 GET (5 s to connect, 10 s to answer).
      Runs until STOP_FILE exists (or MAX_S, default 600), then writes OUT_JSON:
      every exchange's time by connection, every failure, every new connection.
  hosts.py judge OUT_JSON MARKS FROM_MARK TO_MARK
      Of what happened between two marks (MARKS: lines "NAME EPOCH"; TO_MARK "end":
      the end of traffic): one JSON line with resets (long-lived connections that
      failed, by kind), new connections that failed, and started, the worst stall (the
      longest gap between two exchanges of one connection that overlaps the window)
      and which backend each connection reached, and backend counts of new ones.
      A gap between two exchanges belongs to the window it ends in: a stall that
      starts just before an event is that event's.
  hosts.py route-at MONITOR VIP SINCE NEXT_HOPS
      Seconds from SINCE (epoch) until `ip -ts monitor route` (written to MONITOR)
      shows the route to VIP with exactly NEXT_HOPS ("a b", sorted; "" for none);
      "never" after 20 s.
  hosts.py log-at LOG EVENT SINCE
      Seconds from SINCE until evenflowd's LOG has a line event=EVENT; "never" after 20 s.
"""
import datetime
import re
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import clients  # noqa: E402


async def traffic(vip, port, conns, interval, new_per_s, stop_file, out, max_s):
    stop = asyncio.Event()
    exchanges = {}  # connection id -> [epoch of each exchange]
    failures = []   # {"conn", "kind", "at"}
    new = []        # {"start", "end", "ok", "kind"|"backend"}
    opened = 0

    async def keep(slot):
        nonlocal opened
        while not stop.is_set():
            opened += 1
            cid = opened
            c = clients.LongLived(cid, "keepalive")
            times = exchanges.setdefault(cid, [])
            try:
                await c.open(vip, port, timeout=5.0)
            except Exception as e:  # noqa: BLE001 - every failure is a result
                failures.append({"conn": cid, "kind": "open " + clients.error_kind(e),
                                 "at": time.time()})
                await asyncio.sleep(interval)
                continue
            times.append(time.time())
            while not stop.is_set():
                try:
                    await c.exchange(timeout=10.0)
                    times.append(time.time())
                except Exception as e:  # noqa: BLE001
                    failures.append({"conn": cid, "kind": clients.error_kind(e, "stall"),
                                     "at": time.time(), "backend": c.backend})
                    break
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                except asyncio.TimeoutError:
                    pass
            c.close()

    async def one_new():
        start = time.time()
        try:
            backend = await clients.http_get(vip, port, timeout=10.0, connect_timeout=5.0)
            new.append({"start": start, "end": time.time(), "ok": True, "backend": backend})
        except Exception as e:  # noqa: BLE001
            new.append({"start": start, "end": time.time(), "ok": False,
                        "kind": clients.error_kind(e)})

    async def stream():
        pending = set()
        period = 1.0 / new_per_s
        next_at = time.monotonic()
        while not stop.is_set():
            t = asyncio.ensure_future(one_new())
            pending.add(t)
            t.add_done_callback(pending.discard)
            next_at += period
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
            except asyncio.TimeoutError:
                pass
        if pending:
            await asyncio.wait(pending, timeout=15)

    async def watch():
        t0 = time.monotonic()
        while not os.path.exists(stop_file) and time.monotonic() - t0 < max_s:
            await asyncio.sleep(0.1)
        stop.set()

    backends = {}
    tasks = [asyncio.ensure_future(keep(i)) for i in range(conns)]
    tasks.append(asyncio.ensure_future(stream()))
    await watch()
    await asyncio.wait(tasks, timeout=20)
    with open(out, "w") as f:
        json.dump({"exchanges": exchanges, "failures": failures, "new": new,
                   "backends": backends}, f)


def judge(out, marks_path, from_mark, to_mark):
    data = json.load(open(out))
    marks = {}
    for line in open(marks_path):
        name, t = line.split()
        marks[name] = float(t)
    t0 = marks[from_mark]
    t1 = marks[to_mark] if to_mark != "end" else float("inf")
    resets = {}
    for f in data["failures"]:
        if t0 <= f["at"] < t1:
            resets[f["kind"]] = resets.get(f["kind"], 0) + 1
    worst, worst_conn = 0.0, None
    for cid, times in data["exchanges"].items():
        for a, b in zip(times, times[1:]):
            if t0 <= b < t1 and b - a > worst:
                worst, worst_conn = b - a, cid
    started = [n for n in data["new"] if t0 <= n["start"] < t1]
    failed = [n for n in started if not n["ok"]]
    slowest = max((n["end"] - n["start"] for n in started if n["ok"]), default=0.0)
    by_backend = {}
    for n in started:
        if n["ok"]:
            by_backend[n["backend"]] = by_backend.get(n["backend"], 0) + 1
    print(json.dumps({"resets": sum(resets.values()), "reset_kinds": resets,
                      "new_started": len(started), "new_failed": len(failed),
                      "new_failed_kinds": sorted({n["kind"] for n in failed}),
                      "new_slowest_s": round(slowest, 3), "worst_stall_s": round(worst, 3),
                      "worst_conn": worst_conn, "new_by_backend": by_backend}))


def poll(find, since):
    while time.time() - since < 20:
        t = find()
        if t is not None:
            print(f"{t - since:.3f}")
            return
        time.sleep(0.02)
    print("never")


def route_at(monitor, vip, since, want):
    """`ip -ts monitor route` records: "[TIME] VIP via A ..." or "[TIME] VIP proto ..."
    followed by "nexthop via A" lines; "Deleted" ones remove it."""
    want = sorted(want.split())
    head = re.compile(r"^\[([0-9T:.-]+)\] (Deleted )?(?:\S+ )?" + re.escape(vip) + r"(?:/32)? (.*)")

    def find():
        records, current = [], None
        for line in open(monitor):
            m = head.match(line)
            if m:
                current = [m.group(1), m.group(2) is not None, re.findall(r"via (\S+)", m.group(3))]
                records.append(current)
            elif line.startswith("[") or not line.strip():
                current = None
            elif current is not None:
                current[2] += re.findall(r"via (\S+)", line)
        for ts, deleted, hops in records:
            t = datetime.datetime.fromisoformat(ts).timestamp()
            if t >= since and (sorted(hops) if not deleted else []) == want:
                return t
        return None

    poll(find, since)


def log_at(log, event, since):
    ts = re.compile(r"^ts=(\S+)Z .*event=" + re.escape(event) + r"( |$)")

    def find():
        for line in open(log):
            m = ts.match(line)
            if m:
                t = datetime.datetime.fromisoformat(m.group(1)).replace(
                    tzinfo=datetime.timezone.utc).timestamp()
                if t >= since:
                    return t
        return None

    poll(find, since)


def main():
    if sys.argv[1] == "traffic":
        vip, port, conns, interval, new_per_s, stop_file, out = sys.argv[2:9]
        max_s = float(sys.argv[9]) if len(sys.argv) > 9 else 600.0
        asyncio.run(traffic(vip, int(port), int(conns), float(interval), float(new_per_s),
                            stop_file, out, max_s))
    elif sys.argv[1] == "judge":
        judge(*sys.argv[2:6])
    elif sys.argv[1] == "route-at":
        route_at(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
    elif sys.argv[1] == "log-at":
        log_at(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()
