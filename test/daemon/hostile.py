#!/usr/bin/env python3
"""Hostile and careless control-socket clients against a running evenflowd, each
while `status` is sampled every 50 ms from a well-behaved client. Standard library only.

  hostile.py SOCKET CASE --seconds S
    CASE: flood-no-read   20,000 `stats` requests on one connection, never read
          idle            1,100 connections that never send anything
          big-line        a 50 MB line without a newline
          slow            one byte every 200 ms
          reconnect       connect and close as fast as possible
Prints JSON {"case", "samples", "p50_ms", "max_ms", "errors", "detail"}; exit 0.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time


def status_latency(path, stop, out):
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)  # blocking, as evenctl's: a full backlog makes it wait
            s.settimeout(5)
            s.sendall(b'{"cmd":"status"}\n')
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            s.close()
            json.loads(buf)
            out["lat"].append((time.monotonic() - t0) * 1000)
        except (OSError, ValueError):
            out["errors"] += 1
        time.sleep(0.05)


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def flood_no_read(path, stop, detail):
    s = connect(path)
    s.setblocking(False)
    line = b'{"cmd":"stats"}\n' * 20000
    sent = 0
    while sent < len(line) and not stop.is_set():
        try:
            sent += s.send(line[sent:])
        except BlockingIOError:
            time.sleep(0.01)
    detail["bytes_sent"] = sent
    stop.wait()
    s.close()


def idle(path, stop, detail):
    conns = []
    for _ in range(1100):
        try:
            conns.append(connect(path))
        except OSError as e:
            detail.setdefault("connect_errors", 0)
            detail["connect_errors"] += 1
            detail["last_error"] = str(e)
    detail["opened"] = len(conns)
    stop.wait()
    closed = 0
    for c in conns:
        try:
            c.settimeout(0)
            if c.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        c.close()
    detail["closed_by_daemon"] = closed


def big_line(path, stop, detail):
    s = connect(path)
    chunk = b"x" * (1 << 20)
    sent = 0
    try:
        for _ in range(50):
            s.sendall(chunk)
            sent += len(chunk)
    except OSError as e:
        detail["stopped"] = str(e)
    detail["bytes_sent"] = sent
    s.settimeout(2)
    try:
        detail["answer"] = s.recv(4096).decode(errors="replace").strip()
    except OSError as e:
        detail["answer"] = str(e)
    s.close()
    stop.wait()


def slow(path, stop, detail):
    s = connect(path)
    payload = b'{"cmd":"status"}\n'
    i = 0
    while not stop.is_set() and i < len(payload):
        try:
            s.send(payload[i:i + 1])
        except OSError:
            break
        i += 1
        stop.wait(0.2)
    detail["bytes_sent"] = i
    s.close()


def reconnect(path, stop, detail):
    n = 0
    while not stop.is_set():
        try:
            connect(path).close()
            n += 1
        except OSError:
            pass
    detail["connections"] = n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("socket")
    p.add_argument("case")
    p.add_argument("--seconds", type=float, default=3)
    a = p.parse_args()
    cases = {"flood-no-read": flood_no_read, "idle": idle, "big-line": big_line,
             "slow": slow, "reconnect": reconnect}
    stop = threading.Event()
    detail = {}
    out = {"lat": [], "errors": 0}
    attacker = threading.Thread(target=cases[a.case], args=(a.socket, stop, detail))
    attacker.start()
    time.sleep(0.3)
    sampler = threading.Thread(target=status_latency, args=(a.socket, stop, out))
    sampler.start()
    time.sleep(a.seconds)
    stop.set()
    sampler.join()
    attacker.join(timeout=30)
    lat = sorted(out["lat"])
    print(json.dumps({"case": a.case, "samples": len(lat),
                      "p50_ms": round(lat[len(lat) // 2], 2) if lat else None,
                      "max_ms": round(lat[-1], 2) if lat else None,
                      "errors": out["errors"], "detail": detail}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
