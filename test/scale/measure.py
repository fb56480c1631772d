#!/usr/bin/env python3
"""The scale tier's measurements against a running evenflowd (standard library only).

  measure.py sample SOCKET OUT.json --interval 0.05 --stop-file F
        `status` every INTERVAL until F exists; writes the latencies (ms) and the
        daemon's control-loop figures seen.
  measure.py wait-state SOCKET STATE COUNT --timeout S
        waits until COUNT backends are in STATE; prints the seconds it took.
  measure.py last-down LOG
        when the last health verdict `to=down` was logged (epoch seconds).
  measure.py rss PID
        the process's resident set in MB.
  measure.py percentiles FILE.json
        p50/p99/max of a sample file, as JSON.
"""
import argparse
import json
import os
import socket
import sys
import time


def call(path, request, timeout=30.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall((json.dumps(request) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf)


def cmd_sample(a):
    latencies = []
    loop_max = 0.0
    errors = 0
    while not os.path.exists(a.stop_file):
        t0 = time.monotonic()
        try:
            r = call(a.socket, {"cmd": "status"}, timeout=10)
            latencies.append((time.monotonic() - t0) * 1000.0)
            loop_max = max(loop_max, r.get("control_loop", {}).get("recent_max_ms", 0.0))
        except OSError:
            errors += 1
        left = a.interval - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
    json.dump({"latencies_ms": latencies, "errors": errors, "loop_recent_max_ms": loop_max},
              open(a.out, "w"))


def percentile(values, q):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def cmd_percentiles(a):
    d = json.load(open(a.file))
    lat = d["latencies_ms"]
    print(json.dumps({"samples": len(lat), "errors": d["errors"],
                      "p50": round(percentile(lat, 0.50), 2),
                      "p99": round(percentile(lat, 0.99), 2),
                      "max": round(max(lat) if lat else 0.0, 2)}))


def cmd_wait_state(a):
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.timeout:
        r = call(a.socket, {"cmd": "status"})
        if r.get("backend_states", {}).get(a.state, 0) >= a.count:
            print(f"{time.monotonic() - t0:.2f}")
            return 0
        time.sleep(0.1)
    r = call(a.socket, {"cmd": "status"})
    print(f"timeout: {r.get('backend_states')}", file=sys.stderr)
    return 1


def cmd_last_down(a):
    """The time (epoch s) of the last health verdict `to=down` in evenflowd's log."""
    import datetime
    last = None
    for line in open(a.log):
        if " event=health " in line and " to=down" in line:
            ts = line.split()[0][3:]
            last = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
    print(f"{last:.3f}" if last else "0")


def cmd_rss(a):
    for line in open(f"/proc/{a.pid}/status"):
        if line.startswith("VmRSS:"):
            print(f"{int(line.split()[1]) / 1024:.0f}")
            return 0
    return 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("socket")
    s.add_argument("out")
    s.add_argument("--interval", type=float, default=0.05)
    s.add_argument("--stop-file", required=True)
    w = sub.add_parser("wait-state")
    w.add_argument("socket")
    w.add_argument("state")
    w.add_argument("count", type=int)
    w.add_argument("--timeout", type=float, default=60)
    ld = sub.add_parser("last-down")
    ld.add_argument("log")
    r = sub.add_parser("rss")
    r.add_argument("pid")
    q = sub.add_parser("percentiles")
    q.add_argument("file")
    a = p.parse_args()
    return {"sample": cmd_sample, "wait-state": cmd_wait_state, "rss": cmd_rss,
            "percentiles": cmd_percentiles, "last-down": cmd_last_down}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
