#!/usr/bin/env python3
"""Writes a pcap of crafted flows that stay inspecting (deterministic): each a SYN, an HTTP
request head cut before its end, and out-of-order segments past a hole that never fills, the
shape a hostile device sends to make a flow table hold buffers.

    bench/mkflood.py OUT.pcap [--flows N] [--head BYTES] [--ooo N]
"""
import argparse
import struct


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def frame(n, seq, flags, payload):
    src = bytes([198, 19, (n >> 8) & 0xFF, n & 0xFF])
    dst = bytes([198, 18, 0, 1])
    sport = 10000 + (n >> 16)
    tcp = struct.pack("!HHIIBBHHH", sport, 80, seq, 1, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), n & 0xFFFF, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--flows", type=int, default=20000)
    p.add_argument("--head", type=int, default=6000)
    p.add_argument("--ooo", type=int, default=4)
    a = p.parse_args()
    request = b"GET /a HTTP/1.1\r\nHost: lab\r\nX-Pad: "
    request += b"a" * (a.head - len(request))
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        t = 1_700_000_000_000_000
        for n in range(a.flows):
            frames = [frame(n, 1000, 0x02, b"")]
            seq = 1001
            for i in range(0, len(request), 1400):
                piece = request[i:i + 1400]
                frames.append(frame(n, seq, 0x18, piece))
                seq += len(piece)
            for i in range(a.ooo):
                frames.append(frame(n, seq + 5000 + i * 1400, 0x18, b"b" * 1400))
            for fr in frames:
                t += 10
                f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(fr), len(fr)))
                f.write(fr)


main()
