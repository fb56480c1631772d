#!/usr/bin/env python3
"""Writes an evenflowd config with many services, each with its own pool.

  genconfig.py --services N --backends M [--weight-offset K] [--changed-services C]
               --head FILE > config.toml

The head (EAL, control, dataplane, interfaces) comes from FILE. Service i has VIP
10.100.(i / 250).(i % 250 + 1) port 80 and pool pN of M backends in 10.20.0.0/16
(service i's backends on 10.20.(i / 250 ...)); backend weights are 1 + (j + K) % 3, so a
different K changes every weight; --changed-services C applies K to the first C services
only (an apply that touches C services). Health checks are tcp with a 1 s interval:
nothing answers on the scale tier's ports, so every backend goes down.
"""
import argparse
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--services", type=int, required=True)
    p.add_argument("--backends", type=int, required=True)
    p.add_argument("--weight-offset", type=int, default=0)
    p.add_argument("--changed-services", type=int, default=-1)
    p.add_argument("--head", required=True)
    p.add_argument("--table-size", type=int, default=0)
    p.add_argument("--health", default='{ kind = "tcp", interval = "1s", timeout = "500ms", rise = 2, fall = 2 }')
    a = p.parse_args()
    out = [open(a.head).read().rstrip(), ""]
    host = 0
    for i in range(a.services):
        off = a.weight_offset if (a.changed_services < 0 or i < a.changed_services) else 0
        backends = []
        for j in range(a.backends):
            host += 1
            addr = f"10.20.{host // 250}.{host % 250 + 1}"
            backends.append(f'  {{ address = "{addr}", port = 8080, weight = {1 + (j + off) % 3} }},')
        out += [f"[[pools]]", f'name = "p{i}"', "backends = ["] + backends + [
            "]", f"health = {a.health}", "",
            "[[services]]", f'name = "s{i}"', f'vip = "10.100.{i // 250}.{i % 250 + 1}"',
            "port = 80", f'pool = "p{i}"']
        if a.table_size:
            out.append(f"table_size = {a.table_size}")
        out.append("")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
