#!/usr/bin/env python3
"""Helpers of the end-to-end tests (test/e2e/run.sh). Standard library only.

  e2e.py chisq OBSERVED WEIGHTS          counts and weights, comma separated: prints the
                                         chi-square statistic and p-value, exit 1 if p <= 0.001
  e2e.py longlived [options]             N echo connections exchanging data every INTERVAL
                                         while evenctl applies configs (test 3)
  e2e.py remove [options]                flows pinned across the removal of one backend (test 4)
  e2e.py connect VIP PORT N              N short echo connections; prints counts per backend
  e2e.py http URL N [--concurrency C]    exactly N GET requests, one connection each; prints
                                         JSON {ok, failures, per_backend}; exit 1 on any failure

The echo servers (scripts/netns-echo.py) greet with their name on connect.
"""
import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import time


# ---- chi-square survival function via the regularized upper incomplete gamma ----

def _gammainc_lower_series(a, x):
    term = 1.0 / a
    total = term
    n = a
    for _ in range(10000):
        n += 1.0
        term *= x / n
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gammainc_upper_cf(a, x):
    # Lentz's continued fraction for Q(a, x).
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def gammaincc(a, x):
    """Regularized upper incomplete gamma Q(a, x)."""
    if x <= 0:
        return 1.0
    if x < a + 1.0:
        return 1.0 - _gammainc_lower_series(a, x)
    return _gammainc_upper_cf(a, x)


def chi2_sf(stat, df):
    return gammaincc(df / 2.0, stat / 2.0)


def chisq(observed, weights):
    total = sum(observed)
    wsum = sum(weights)
    expected = [total * w / wsum for w in weights]
    stat = sum((o - e) ** 2 / e for o, e in zip(observed, expected) if e > 0)
    df = sum(1 for e in expected if e > 0) - 1
    return stat, df, chi2_sf(stat, df), expected


def cmd_chisq(args):
    observed = [int(v) for v in args.observed.split(",")]
    weights = [float(v) for v in args.weights.split(",")]
    stat, df, p, expected = chisq(observed, weights)
    print(f"observed {observed} expected {[round(e, 1) for e in expected]} "
          f"chi2={stat:.3f} df={df} p={p:.4g}")
    return 0 if p > args.alpha else 1


# ---- echo connections ----

async def open_echo(vip, port, timeout=3.0):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(vip, port), timeout)
    name = (await asyncio.wait_for(reader.readline(), timeout)).decode().strip()
    if not name:
        raise ConnectionError("no greeting")
    return reader, writer, name


class Conn:
    def __init__(self, idx):
        self.idx = idx
        self.backend = None
        self.exchanges = 0
        self.max_gap = 0.0
        self.error = None
        self.reader = None
        self.writer = None


async def exchange_loop(conn, interval, stop, stall_limit):
    """Sends a 32-byte message every `interval`, waits for its echo."""
    seq = 0
    last_ok = time.monotonic()
    while not stop.is_set():
        msg = f"{conn.idx:05d}:{seq:010d}:".ljust(31, "x").encode() + b"\n"
        try:
            conn.writer.write(msg)
            await conn.writer.drain()
            got = await asyncio.wait_for(conn.reader.readexactly(len(msg)), stall_limit * 3)
        except asyncio.TimeoutError:
            conn.error = "stall"
            return
        except asyncio.IncompleteReadError:
            conn.error = "eof"
            return
        except ConnectionResetError:
            conn.error = "reset"
            return
        except OSError as e:
            conn.error = f"oserror {e.errno}"
            return
        if got != msg:
            conn.error = "corrupt"
            return
        now = time.monotonic()
        conn.max_gap = max(conn.max_gap, now - last_ok)
        last_ok = now
        conn.exchanges += 1
        seq += 1
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass


async def apply_config(evenctl, socket, path):
    proc = await asyncio.create_subprocess_exec(
        evenctl, "--socket", socket, "apply", path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode, out.decode(errors="replace")


async def open_many(vip, port, n):
    conns = []
    for i in range(n):
        c = Conn(i)
        c.reader, c.writer, c.backend = await open_echo(vip, port)
        conns.append(c)
    return conns


def close_all(conns):
    for c in conns:
        try:
            c.writer.close()
        except Exception:
            pass


async def longlived(args):
    conns = await open_many(args.vip, args.port, args.conns)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(exchange_loop(c, args.interval, stop, args.stall)) for c in conns]
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


async def count_new(vip, port, n, concurrency=16):
    names = []
    sem = asyncio.Semaphore(concurrency)

    async def one():
        async with sem:
            r, w, name = await open_echo(vip, port)
            names.append(name)
            w.close()

    await asyncio.gather(*[one() for _ in range(n)])
    counts = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts


async def echo_once(c, timeout):
    msg = f"ping {c.idx}\n".encode()
    c.writer.write(msg)
    await c.writer.drain()
    got = await asyncio.wait_for(c.reader.readexactly(len(msg)), timeout)
    if got != msg:
        raise ConnectionError("corrupt echo")


async def probe_all(conns, timeout=2.0):
    """Returns {idx: None or error} after one echo on every still-open connection."""
    result = {}

    async def one(c):
        try:
            await echo_once(c, timeout)
            result[c.idx] = None
        except asyncio.TimeoutError:
            result[c.idx] = "stall"
        except asyncio.IncompleteReadError:
            result[c.idx] = "eof"
        except ConnectionResetError:
            result[c.idx] = "reset"
        except OSError as e:
            result[c.idx] = f"oserror {e.errno}"

    await asyncio.gather(*[one(c) for c in conns])
    return result


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
    counts = await count_new(args.vip, args.port, args.new)
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
    request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: evenflow-e2e\r\n\r\n".encode()
    per_backend, failures = {}, []
    sem = asyncio.Semaphore(args.concurrency)

    async def one(i):
        async with sem:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(host, port), args.timeout)
                w.write(request)
                await w.drain()
                data = await asyncio.wait_for(r.read(), args.timeout)
                w.close()
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failures.append(f"{i}: {e!r}")
                return
            head, _, body = data.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200") or not body.startswith(b"hello from "):
                failures.append(f"{i}: bad response {data[:60]!r}")
                return
            name = body.decode().split()[-1]
            per_backend[name] = per_backend.get(name, 0) + 1

    t0 = time.monotonic()
    await asyncio.gather(*[one(i) for i in range(args.n)])
    dt = time.monotonic() - t0
    ok = sum(per_backend.values())
    print(json.dumps({"ok": ok, "failures": len(failures), "first_failures": failures[:5],
                      "per_backend": dict(sorted(per_backend.items())), "seconds": round(dt, 2)}))
    return 0 if not failures and ok == args.n else 1


async def connect(args):
    counts = await count_new(args.vip, args.port, args.n)
    print(json.dumps(counts))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("chisq")
    p.add_argument("observed")
    p.add_argument("weights")
    p.add_argument("--alpha", type=float, default=0.001)
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
    p = sub.add_parser("connect")
    p.add_argument("vip")
    p.add_argument("port", type=int)
    p.add_argument("n", type=int)
    args = ap.parse_args()
    if args.cmd == "chisq":
        return cmd_chisq(args)
    fn = {"longlived": longlived, "remove": remove, "connect": connect, "http": http_many}[args.cmd]
    return asyncio.run(fn(args))


if __name__ == "__main__":
    sys.exit(main())
