#!/usr/bin/env python3
"""A userspace IPIP decapsulator for tunnel-mode tests on kernels built without
CONFIG_NET_IPIP (this CI machine's: no tunl0, no GRE, no FOU). It does what tunl0
does on a real backend: takes the IPv4 packet out of each IPIP packet addressed to
this host and hands it to the kernel as if it had arrived on an interface (a TUN
device), whose TCP stack and servers then answer the client directly.

  ipip_decap.py DEVICE --seconds S     creates TUN DEVICE, runs at most S seconds

Runs inside a backend's namespace; stops by itself. Standard library only.
"""
import argparse
import fcntl
import os
import select
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_IPIP = 4


def main():
    p = argparse.ArgumentParser()
    p.add_argument("device")
    p.add_argument("--seconds", type=float, required=True)
    a = p.parse_args()
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", a.device.encode(), IFF_TUN | IFF_NO_PI))
    # A raw socket for protocol 4 gets every IPIP packet delivered to this host (the
    # kernel has no handler of its own for it here, so nothing else answers them).
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPIP)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    print(f"ipip_decap: {a.device} ready", flush=True)
    deadline = time.monotonic() + a.seconds
    packets = 0
    while time.monotonic() < deadline:
        ready, _, _ = select.select([raw], [], [], 0.5)
        if not ready:
            continue
        outer = raw.recv(65535)
        ihl = (outer[0] & 0x0F) * 4
        inner = outer[ihl:]
        if len(inner) >= 20 and inner[0] >> 4 == 4:
            os.write(tun, inner)
            packets += 1
    print(f"ipip_decap: {packets} packets", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
