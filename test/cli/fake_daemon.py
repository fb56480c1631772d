#!/usr/bin/env python3
"""A stand-in for evenflowd's control socket: answers evenctl's requests with canned
replies so that evenctl's renderings (status, diff) and its requests can be checked
without DPDK. One JSON object per line, like evenflowd.

    fake_daemon.py SOCKET LOG

Every request is appended to LOG as one JSON line. Replies:
  status    a status with evenflow_version taken from $FAKE_EVENFLOW_VERSION (absent
            when that is empty)
  services  two services, web and echo
  backends  two backends of the service asked for
  diff      the verdict named in the config text ("# verdict: shift"), with diff and
            shift lines like evenflowd's apply review
  other     an error reply "unknown command"
"""
import json
import os
import socket
import sys


def reply_for(req):
    cmd = req.get("cmd")
    if cmd == "status":
        r = {"ok": True, "version": 3, "generation": 3, "uptime_s": 12.0, "pid": 4242,
             "config": "/etc/evenflow/evenflow.toml", "services": 2, "backends": 4,
             "alarms": 0, "workers": [], "ports": []}
        v = os.environ.get("FAKE_EVENFLOW_VERSION", "")
        if v:
            r["evenflow_version"] = v
        return r
    if cmd == "services":
        rows = [{"name": n, "vip": "10.10.0.100", "port": p, "pool": n, "hash": "5-tuple",
                 "backends": 2, "backends_up": 2, "table_size": 65537, "protocol": "tcp"}
                for n, p in (("web", 80), ("echo", 9000))]
        return {"ok": True, "services": rows}
    if cmd == "backends":
        svc = req.get("service", "web")
        rows = [{"service": svc, "backend": f"10.20.0.{i}:8080", "state": "up", "weight": 1,
                 "expected_share": 0.5, "observed_share": 0.5, "active_flows": 0,
                 "new_flows_per_s": 0.0, "skew": False} for i in (11, 12)]
        return {"ok": True, "backends": rows}
    if cmd == "diff":
        text = req.get("config", "")
        verdict = "accept"
        for line in text.splitlines():
            if line.startswith("# verdict:"):
                verdict = line.split(":", 1)[1].strip()
        r = {"ok": True, "verdict": verdict, "version": 3, "diff": [], "shift": []}
        if verdict in ("accept", "shift"):
            r["diff"] = ["+ backend web 10.20.0.14:8080 weight 1",
                         "~ backend web 10.20.0.13:8080 weight 2 -> 1"]
        if verdict == "shift":
            r["shift"] = ["web 10.20.0.13:8080: expected share 50.0% -> 25.0%"]
        if verdict == "invalid":
            r["error"] = req.get("path", "?") + ":3: unknown key colour"
        if verdict == "restart":
            r["error"] = "[eal] changed: needs systemctl restart evenflowd"
        return r
    return {"ok": False, "error": f"unknown command \"{cmd}\"", "refused": False}


def main():
    path, log = sys.argv[1], sys.argv[2]
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    while True:
        conn, _ = srv.accept()
        with conn, conn.makefile("rwb") as f:
            line = f.readline()
            if not line:
                continue
            req = json.loads(line)
            with open(log, "a") as out:
                out.write(json.dumps(req) + "\n")
            f.write((json.dumps(reply_for(req)) + "\n").encode())
            f.flush()


if __name__ == "__main__":
    main()
