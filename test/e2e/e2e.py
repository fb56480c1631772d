#!/usr/bin/env python3
"""Clients of the end-to-end tests (test/e2e/run.sh, health.sh; scripts/demo). Standard
library only; the connections are test/lib/clients.py's, the chi-square test/lib/stats.py's.

  e2e.py longlived [options]             N echo connections exchanging data every INTERVAL
                                         while evenctl applies configs (test 3)
  e2e.py remove [options]                flows pinned across the removal of one backend (test 4)
  e2e.py connect VIP PORT N              N short echo connections; prints counts per backend
  e2e.py http URL N [--concurrency C]    exactly N GET requests, one connection each; prints
                                         JSON {ok, failures, per_backend}; exit 1 on any failure
  e2e.py downloads VIP --heavy bK --rate R --seconds S --bytes B
                                         new connections at R/s, each GET /hello (keep-alive);
                                         those that reached bK also download B bytes of /big:
                                         equal flows, one backend's bytes; prints JSON counts
"""
import argparse
import asyncio
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # nothing left in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from clients import (close_all, echo_backends, http_get, http_request,  # noqa: E402
                     open_many, read_http_response)
from clients import connect as connect_to  # noqa: E402
from stats import chisq  # noqa: E402


async def apply_config(evenctl, socket, path):
    proc = await asyncio.create_subprocess_exec(
        evenctl, "--socket", socket, "apply", path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode, out.decode(errors="replace")


async def longlived(args):
    conns = await open_many(args.vip, args.port, args.conns)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(args.interval, stop, args.stall * 3)) for c in conns]
    await asyncio.sleep(1.0)
    configs = args.configs.split(",")
    failed_applies = []
    t0 = time.monotonic()
    for i in range(args.applies):
        path = configs[i % len(configs)]
        rc, out = await apply_config(args.evenctl, args.socket, path)
        if rc != 0:
            failed_applies.append((i, path, out.strip()))
        await asyncio.sleep(args.gap)
    apply_s = time.monotonic() - t0
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.gather(*tasks)
    close_all(conns)
    errors = [(c.idx, c.backend, c.error) for c in conns if c.error]
    max_gap = max(c.max_gap for c in conns)
    per_backend = {}
    for c in conns:
        per_backend[c.backend] = per_backend.get(c.backend, 0) + 1
    summary = {
        "connections": len(conns), "per_backend": per_backend,
        "applies": args.applies, "failed_applies": failed_applies, "apply_seconds": round(apply_s, 2),
        "exchanges": sum(c.exchanges for c in conns), "errors": errors,
        "resets": sum(1 for c in conns if c.error == "reset"),
        "stalls": sum(1 for c in conns if c.error == "stall") + sum(1 for c in conns if c.max_gap > args.stall),
        "max_gap_s": round(max_gap, 3),
    }
    print(json.dumps(summary))
    ok = not errors and not failed_applies and max_gap <= args.stall and summary["exchanges"] > 0
    return 0 if ok else 1


async def probe_all(conns, timeout=2.0):
    """{idx: None or the error's kind} after one exchange on every connection."""
    results = await asyncio.gather(*[c.probe(timeout) for c in conns])
    return {c.idx: r for c, r in zip(conns, results)}


async def remove(args):
    """Test 4: connections opened before removing `args.removed` keep working where they
    are; new connections avoid it and spread over the rest. Then, past the drain
    timeout, reports what happened to the removed backend's connections."""
    report = {"removed": args.removed}
    ok = True
    conns = await open_many(args.vip, args.port, args.conns)
    before = {c.idx: c.backend for c in conns}
    report["before"] = {b: sum(1 for v in before.values() if v == b) for b in sorted(set(before.values()))}
    on_removed = [c for c in conns if c.backend == args.removed]
    others = [c for c in conns if c.backend != args.removed]
    if not on_removed:
        report["note"] = "no connection landed on the removed backend"
    rc, out = await apply_config(args.evenctl, args.socket, args.config)
    report["apply_rc"] = rc
    if rc != 0:
        report["apply_out"] = out
        ok = False
    await asyncio.sleep(0.3)
    # Established connections, including those on the removed backend, still answer.
    res = await probe_all(conns)
    report["after_apply_errors"] = {str(k): v for k, v in res.items() if v}
    if any(res[c.idx] for c in others):
        ok = False
    report["removed_backend_conns_alive_after_apply"] = sum(1 for c in on_removed if not res[c.idx])
    # New connections never reach the removed backend and spread over the others.
    counts = await echo_backends(args.vip, args.port, args.new)
    report["new_connections"] = counts
    if counts.get(args.removed, 0) != 0:
        ok = False
    rest = sorted(b for b in counts)
    weights = [1.0] * len(rest)
    stat, df, p, _ = chisq([counts[b] for b in rest], weights)
    report["new_spread_chi2"] = round(stat, 3)
    report["new_spread_p"] = p
    if len(rest) != args.remaining or p <= 0.001:
        ok = False
    # Past the drain timeout: what becomes of the removed backend's connections.
    if args.wait_drain > 0 and on_removed:
        await asyncio.sleep(args.wait_drain)
        res2 = await probe_all(conns, timeout=2.0)
        report["after_drain_removed"] = {str(c.idx): (res2[c.idx] or "alive") for c in on_removed}
        report["after_drain_others_errors"] = {str(c.idx): res2[c.idx] for c in others if res2[c.idx]}
        if any(res2[c.idx] for c in others):
            ok = False
    close_all(conns)
    print(json.dumps(report))
    return 0 if ok else 1


async def http_many(args):
    """Exactly N HTTP/1.0 GETs, each on its own connection (ab may open extra ones)."""
    from urllib.parse import urlsplit
    u = urlsplit(args.url)
    host, port, path = u.hostname, u.port or 80, u.path or "/"
    per_backend, failures = {}, []
    sem = asyncio.Semaphore(args.concurrency)

    async def one(i):
        async with sem:
            try:
                name = await http_get(host, port, path, timeout=args.timeout)
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failures.append(f"{i}: {e!r}")
                return
            per_backend[name] = per_backend.get(name, 0) + 1

    t0 = time.monotonic()
    await asyncio.gather(*[one(i) for i in range(args.n)])
    dt = time.monotonic() - t0
    ok = sum(per_backend.values())
    print(json.dumps({"ok": ok, "failures": len(failures), "first_failures": failures[:5],
                      "per_backend": dict(sorted(per_backend.items())), "seconds": round(dt, 2)}))
    return 0 if not failures and ok == args.n else 1


async def downloads(args):
    """Connections at a fixed rate; the ones on the heavy backend also fetch a large range."""
    per_backend, heavy_bytes, failures = {}, 0, []
    tasks = []

    async def one():
        nonlocal heavy_bytes
        try:
            r, w = await connect_to(args.vip, 80, 5.0)
            try:
                w.write(http_request(args.vip, "/hello", keepalive=True))
                name = await read_http_response(r, 10.0)
                per_backend[name] = per_backend.get(name, 0) + 1
                if name == args.heavy:
                    w.write((f"GET /big HTTP/1.1\r\nHost: {args.vip}\r\n"
                             f"Range: bytes=0-{args.bytes - 1}\r\n\r\n").encode())
                    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 20.0)
                    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:"))
                    await asyncio.wait_for(r.readexactly(length), 30.0)
                    heavy_bytes += length
            finally:
                w.close()
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failures.append(repr(e))

    t0 = time.monotonic()
    n = int(args.rate * args.seconds)
    for i in range(n):
        delay = t0 + i / args.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    print(json.dumps({"connections": n, "per_backend": dict(sorted(per_backend.items())),
                      "heavy_bytes": heavy_bytes, "failures": len(failures),
                      "first_failures": failures[:3],
                      "seconds": round(time.monotonic() - t0, 2)}))
    return 0 if not failures else 1


async def connect(args):
    counts = await echo_backends(args.vip, args.port, args.n)
    print(json.dumps(counts))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("longlived", "remove"):
        p = sub.add_parser(name)
        p.add_argument("--vip", default="10.10.0.100")
        p.add_argument("--port", type=int, default=9000)
        p.add_argument("--evenctl", required=True)
        p.add_argument("--socket", required=True)
        if name == "longlived":
            p.add_argument("--conns", type=int, default=50)
            p.add_argument("--interval", type=float, default=0.1)
            p.add_argument("--stall", type=float, default=2.0)
            p.add_argument("--configs", required=True, help="comma-separated, applied in turn")
            p.add_argument("--applies", type=int, default=50)
            p.add_argument("--gap", type=float, default=0.2)
        else:
            p.add_argument("--conns", type=int, default=40)
            p.add_argument("--config", required=True)
            p.add_argument("--removed", required=True, help="backend name, e.g. b2")
            p.add_argument("--remaining", type=int, required=True)
            p.add_argument("--new", type=int, default=300)
            p.add_argument("--wait-drain", type=float, default=0)
    p = sub.add_parser("http")
    p.add_argument("url")
    p.add_argument("n", type=int)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--timeout", type=float, default=10.0)
    p = sub.add_parser("downloads")
    p.add_argument("vip")
    p.add_argument("--heavy", required=True, help="the backend whose connections download")
    p.add_argument("--rate", type=float, default=40)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--bytes", type=int, default=2_000_000)
    p = sub.add_parser("connect")
    p.add_argument("vip")
    p.add_argument("port", type=int)
    p.add_argument("n", type=int)
    args = ap.parse_args()
    fn = {"longlived": longlived, "remove": remove, "connect": connect, "http": http_many,
          "downloads": downloads}[args.cmd]
    return asyncio.run(fn(args))


if __name__ == "__main__":
    sys.exit(main())
