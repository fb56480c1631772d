#!/usr/bin/env python3
"""Reads a pcap evengen wrote and checks it independently of evengen's code:
classic pcap format, every frame Ethernet/IPv4/TCP to the VIP with both checksums
right, the expected packet count, distinct flows, and for lifecycles the flag
sequence of every flow (SYN, ACK, data..., FIN, ACK).

    check_pcap.py FILE MODE FLOWS PACKETS [DATA_PER_LIFECYCLE]
Prints what it found; exits 1 on the first mismatch.
"""

import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def fail(msg):
    print(f"check_pcap: {msg}")
    sys.exit(1)


def main():
    path, mode, flows, packets = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    data_per = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    blob = open(path, "rb").read()
    magic, vmaj, vmin, _, _, snaplen, linktype = struct.unpack("<IHHiIII", blob[:24])
    if magic not in (0xA1B2C3D4, 0xA1B23C4D) or linktype != 1:
        fail(f"not an Ethernet pcap (magic {magic:#x}, linktype {linktype})")
    off = 24
    frames = []
    while off < len(blob):
        _, _, incl, orig = struct.unpack("<IIII", blob[off:off + 16])
        off += 16
        frames.append(blob[off:off + incl])
        if incl != orig:
            fail(f"frame {len(frames)} truncated in the file ({incl} of {orig})")
        off += incl
    if len(frames) != packets:
        fail(f"{len(frames)} frames, expected {packets}")
    per_flow = {}
    for i, f in enumerate(frames):
        if len(f) < 54 or f[12:14] != b"\x08\x00":
            fail(f"frame {i}: not IPv4 over Ethernet")
        ip = f[14:34]
        if ip[0] != 0x45 or ip[9] != 6:
            fail(f"frame {i}: not IPv4/TCP without options")
        if csum(ip) != 0xFFFF:
            fail(f"frame {i}: IPv4 checksum wrong")
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = f[34:14 + total]
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
        if csum(pseudo + tcp) != 0xFFFF:
            fail(f"frame {i}: TCP checksum wrong")
        src = (ip[12:16], struct.unpack("!H", tcp[0:2])[0])
        dst = (ip[16:20], struct.unpack("!H", tcp[2:4])[0])
        if dst != (bytes([10, 10, 0, 100]), 80):
            fail(f"frame {i}: not to the VIP 10.10.0.100:80")
        per_flow.setdefault(src, []).append(tcp[13])
    if len(per_flow) != flows:
        fail(f"{len(per_flow)} distinct flows, expected {flows}")
    SYN, ACK, FIN, PSH = 0x02, 0x10, 0x01, 0x08
    for src, flags in per_flow.items():
        if mode == "syn" and flags != [SYN]:
            fail(f"flow {src}: flags {flags}, expected one SYN")
        if mode == "lifecycle":
            want = [SYN, ACK] + [PSH | ACK] * data_per + [FIN | ACK, ACK]
            if flags != want:
                fail(f"flow {src}: flags {flags}, expected {want}")
        if mode == "established" and any(fl != PSH | ACK for fl in flags):
            fail(f"flow {src}: flags {flags}, expected data (PSH|ACK) only")
    print(f"check_pcap: {len(frames)} frames, {len(per_flow)} flows, checksums and flags ok")


if __name__ == "__main__":
    main()
