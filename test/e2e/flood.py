#!/usr/bin/env python3
"""Floods for the hardening tests, sent as raw Ethernet frames from the client
namespace (AF_PACKET), every one bounded in count and time. Spoofed sources come
from the benchmarking range 198.18.0.0/15 (RFC 2544), never from anyone's network.

  flood.py send IFACE DST_MAC KIND --count N --seconds S [--distinct D] [--pps R]
                 [--source ADDR]
      KIND: syn-vip  SYNs to 10.10.0.100:80 from random spoofed sources (or all from
                     --source, with random ports)
            ack-vip  bare ACKs to 10.10.0.100:80 from random spoofed sources
            syn-local SYNs to 10.10.0.2:80 (the balancer's own address)
            arp      ARP requests for addresses that are nobody's (a storm)
      prints JSON {"sent", "seconds", "pps"}
  flood.py arp-probe IFACE TARGET_IP --timeout S
      asks who has TARGET_IP every 100 ms; prints JSON {"answered", "asked", "ms"}
Standard library only.
"""
import argparse
import json
import os
import random
import socket
import struct
import sys
import time


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def mac_bytes(text):
    return bytes(int(x, 16) for x in text.split(":"))


def ipv4_tcp(src_mac, dst_mac, src, dst, sport, dport, flags, seq):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0 if flags == 0x02 else 1,
                      5 << 4, flags, 65535, 0, 0)
    pseudo = struct.pack("!4s4sBBH", src, dst, 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + tcp


def arp_request(src_mac, sender_ip, target_ip):
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, src_mac, sender_ip, b"\0" * 6,
                      target_ip)
    return b"\xff" * 6 + src_mac + b"\x08\x06" + arp + b"\0" * 18


def frames(kind, src_mac, dst_mac, distinct, rng, source=None):
    vip = socket.inet_aton("10.10.0.100")
    own = socket.inet_aton("10.10.0.2")
    out = []
    for _ in range(distinct):
        src = source or bytes([198, 18 + rng.randrange(2), rng.randrange(256),
                               rng.randrange(1, 255)])
        sport = rng.randrange(1024, 65535)
        if kind == "syn-vip":
            out.append(ipv4_tcp(src_mac, dst_mac, src, vip, sport, 80, 0x02, rng.getrandbits(32)))
        elif kind == "ack-vip":
            out.append(ipv4_tcp(src_mac, dst_mac, src, vip, sport, 80, 0x10, rng.getrandbits(32)))
        elif kind == "syn-local":
            out.append(ipv4_tcp(src_mac, dst_mac, src, own, sport, 80, 0x02, rng.getrandbits(32)))
        elif kind == "arp":
            # Requests from on-link senders for addresses nobody has.
            sender = bytes([10, 10, 0, rng.randrange(150, 250)])
            target = bytes([10, 10, 0, rng.randrange(150, 250)])
            smac = bytes([2, 0x66]) + rng.getrandbits(32).to_bytes(4, "big")
            out.append(arp_request(smac, sender, target))
    return out


def cmd_send(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    src_mac = open(f"/sys/class/net/{a.iface}/address").read().strip()
    rng = random.Random(a.seed)
    source = socket.inet_aton(a.source) if a.source else None
    pool = frames(a.kind, mac_bytes(src_mac), mac_bytes(a.dst_mac), a.distinct, rng, source)
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    sent = 0
    i = 0
    while sent < a.count:
        try:
            s.send(pool[i])
            sent += 1
        except OSError:
            time.sleep(0.0005)  # the veth queue is full: back off a moment
        i = (i + 1) % len(pool)
        if sent % 256 == 0:
            now = time.monotonic()
            if now > deadline:
                break
            if a.pps:  # paced: sleep until the schedule catches up
                ahead = t0 + sent / a.pps - now
                if ahead > 0:
                    time.sleep(ahead)
    elapsed = time.monotonic() - t0
    print(json.dumps({"kind": a.kind, "sent": sent, "seconds": round(elapsed, 2),
                      "pps": round(sent / max(elapsed, 1e-6))}))
    return 0


# Classic BPF for the probe's socket: ARP replies only. Without it the socket also
# sees every frame of the storm going out and its buffer overflows before the answer.
ARP_REPLY_FILTER = [
    (0x28, 0, 0, 12),      # ldh [12]        ethertype
    (0x15, 0, 3, 0x0806),  # jeq ARP
    (0x28, 0, 0, 20),      # ldh [20]        ARP opcode
    (0x15, 0, 1, 2),       # jeq reply
    (0x06, 0, 0, 0xFFFF),  # ret accept
    (0x06, 0, 0, 0),       # ret drop
]
SO_ATTACH_FILTER = 26


def attach_filter(sock, program):
    import ctypes
    code = b"".join(struct.pack("HBBI", *ins) for ins in program)
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    return buf  # keep alive while the socket is


def cmd_arp_probe(a):
    """Asks like a host does, again every 100 ms, until answered or out of time."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    keep = attach_filter(s, ARP_REPLY_FILTER)
    s.bind((a.iface, 0))
    src_mac = mac_bytes(open(f"/sys/class/net/{a.iface}/address").read().strip())
    sender = socket.inet_aton(a.sender)
    target = socket.inet_aton(a.target)
    t0 = time.monotonic()
    asked = 0
    next_ask = t0
    s.settimeout(0.01)
    while time.monotonic() - t0 < a.timeout:
        if time.monotonic() >= next_ask:
            s.send(arp_request(src_mac, sender, target))
            asked += 1
            next_ask += 0.1
        try:
            f = s.recv(2048)
        except socket.timeout:
            continue
        if len(f) >= 42 and f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02" and f[28:32] == target:
            print(json.dumps({"answered": True, "asked": asked,
                              "ms": round((time.monotonic() - t0) * 1000, 2)}))
            return 0
    del keep
    print(json.dumps({"answered": False, "asked": asked, "ms": None}))
    return 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("iface")
    s.add_argument("dst_mac")
    s.add_argument("kind", choices=["syn-vip", "ack-vip", "syn-local", "arp"])
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--distinct", type=int, default=65536)
    s.add_argument("--pps", type=float, default=0, help="pace to this rate (0: as fast as it goes)")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--source", default="",
                   help="one spoofed source address for every frame (ports still vary)")
    q = sub.add_parser("arp-probe")
    q.add_argument("iface")
    q.add_argument("target")
    q.add_argument("--sender", default="10.10.0.10")
    q.add_argument("--timeout", type=float, default=1.0)
    a = p.parse_args()
    return cmd_send(a) if a.cmd == "send" else cmd_arp_probe(a)


if __name__ == "__main__":
    sys.exit(main())
