#!/usr/bin/env python3
"""Writes a pcap of mixed traffic for the session benchmarks.

    bench/mkpcap.py OUT.pcap [--packets N] [--sessions N] [--udp-flows N] [--vxlan VNI]

The composition of BASELINE.md's big.pcap: half the packets are full-size TCP segments (here of
HTTP and TLS sessions: each opens with a handshake, a request line with Host or a ClientHello
with SNI, then bulk data), the other half 512-byte UDP datagrams with varying ports (a quarter
of them DNS queries). Deterministic: the same arguments give the same file. With --vxlan, every
frame is carried in VXLAN (UDP 4789, the given VNI) between two sensor addresses, as cloud
traffic mirroring delivers it: the same sessions inside a tunnel.
"""
import argparse
import random
import struct
import zlib

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--packets", type=int, default=1_000_000)
p.add_argument("--sessions", type=int, default=1_000, help="TCP sessions")
p.add_argument("--udp-flows", type=int, default=65_536, help="distinct UDP 5-tuples besides DNS")
p.add_argument("--vxlan", type=int, help="carry every frame in VXLAN with this VNI")
args = p.parse_args()
rng = random.Random(42)

ETH = bytes.fromhex("020000000002020000000001") + b"\x08\x00"


def ip4(n):
    return bytes([10, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF])


def ipv4(src, dst, proto, payload):
    total = 20 + len(payload)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, proto, 0, src, dst) + payload


def tcp(sport, dport, seq, flags, payload=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 0x50, flags, 65535, 0, 0) + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def client_hello(sni):
    name = sni.encode()
    sni_ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    alpn = b"\x00\x10\x00\x05\x00\x03\x02h2"
    exts = sni_ext + alpn
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def dns_query(name):
    q = struct.pack("!HHHHHH", rng.randrange(65536), 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00\x00\x01\x00\x01"


out = open(args.out, "wb")
out.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
ts = [1_700_000_000, 0]


VXLAN_ETH = bytes.fromhex("0200000000c2020000000c01") + b"\x08\x00"


def vxlan(frame):
    """The frame inside VXLAN: the outer UDP source port from the inner addresses and ports,
    as a VTEP picks it per flow."""
    sport = 49152 + zlib.crc32(frame[26:38]) % 16384
    inner = struct.pack("!II", 0x08000000, args.vxlan << 8) + frame
    return VXLAN_ETH + ipv4(bytes([10, 200, 0, 1]), bytes([10, 200, 0, 2]), 17, udp(sport, 4789, inner))


def write(frame):
    if args.vxlan is not None:
        frame = vxlan(frame)
    ts[1] += 2000
    if ts[1] >= 1_000_000_000:
        ts[0] += 1
        ts[1] -= 1_000_000_000
    out.write(struct.pack("<IIII", ts[0], ts[1], len(frame), len(frame)) + frame)


tcp_budget = args.packets // 2
udp_budget = args.packets - tcp_budget
fill = bytes(1460)
written = 0
# TCP: sessions of about tcp_budget / sessions packets each.
per_session = max(8, tcp_budget // args.sessions)
s = 0
while written < tcp_budget:
    cip, sip = ip4(0x010000 + s % 60000), ip4(0x200000 + s % 250)
    sport, https = 20000 + s % 40000, s % 2 == 1
    dport = 443 if https else 80
    seq = rng.randrange(1 << 32)
    host = f"host{s % 997}.example"
    first = client_hello(host) if https else f"GET /files/{s}.bin HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench\r\n\r\n".encode()
    frames = [
        ipv4(cip, sip, 6, tcp(sport, dport, seq, 0x02)),
        ipv4(sip, cip, 6, tcp(dport, sport, 7, 0x12)),
        ipv4(cip, sip, 6, tcp(sport, dport, seq + 1, 0x18, first)),
    ]
    n = 0
    while len(frames) < per_session:
        frames.append(ipv4(sip, cip, 6, tcp(dport, sport, 8 + n * 1460, 0x10, fill)))
        n += 1
    for f in frames:
        if written >= tcp_budget:
            break
        write(ETH + f)
        written += 1
    s += 1
# UDP: DNS queries and 512-byte datagrams with varying ports.
for i in range(udp_budget):
    if i % 4 == 0:
        payload = dns_query(f"name{i % 5000}.example")
        cip = ip4(0x030000 + i % 16)
        frame = ipv4(cip, ip4(0x300001), 17, udp(30000 + (i // 16) % 1024, 53, payload))
    else:
        flow = i % args.udp_flows
        cip = ip4(0x040000 + flow // 60000)
        frame = ipv4(cip, ip4(0x300002), 17, udp(1024 + flow % 60000, 9, bytes(512 - 42)))
    write(ETH + frame)
out.close()
print(f"{args.out}: {args.packets} packets")
