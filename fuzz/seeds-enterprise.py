#!/usr/bin/python3
"""Seeds of the `sessions` fuzz target for the enterprise protocols (SMB, Kerberos, DCE/RPC,
LDAP, IMAP, POP3, TFTP, FTP data, PostgreSQL, MySQL, TDS, RADIUS, RDP, SIP): each session of
the given captures (real clients against real servers, as the enterprise tests make them)
written alone, then with every payload cut in half, then with a byte of every payload
flipped, so that the fuzzer starts from real messages and their broken forms. Written with
scapy. Usage: seeds-enterprise.py OUT_DIR CAPTURE..."""
import sys

from scapy.all import IP, TCP, UDP, Raw, rdpcap, wrpcap

PORTS = {445: "smb", 88: "kerberos", 135: "dcerpc", 389: "ldap", 143: "imap", 110: "pop3",
         69: "tftp", 21: "ftp", 5432: "postgresql", 3306: "mysql", 1433: "tds", 1812: "radius",
         3389: "rdp", 5060: "sip"}
# Packets kept of a session: its opening, where the logins are.
KEEP = 40

out = sys.argv[1]
sessions = {}
for path in sys.argv[2:]:
    for p in rdpcap(path):
        if IP not in p or (TCP not in p and UDP not in p):
            continue
        l4 = p[TCP] if TCP in p else p[UDP]
        ends = tuple(sorted([(p[IP].src, l4.sport), (p[IP].dst, l4.dport)]))
        key = (type(l4).__name__, ends)
        sessions.setdefault(key, []).append(p)

written = 0
for (kind, ends), pkts in sorted(sessions.items(), key=lambda kv: kv[1][0].time):
    name = next((PORTS[port] for _, port in ends if port in PORTS), None)
    layer = TCP if kind == "TCP" else UDP
    if name is None or not any(len(p[layer].payload) for p in pkts):
        continue
    pkts = pkts[:KEEP]
    base = f"{out}/{name}-{kind.lower()}-{ends[0][1]}-{ends[1][1]}"
    wrpcap(f"{base}.pcap", pkts)
    cut, flipped = [], []
    for p in pkts:
        c, f = p, p
        data = bytes(p[layer].payload)
        if data:
            at = len(data) // 3
            variants = []
            for new in (data[: len(data) // 2], data[:at] + bytes([data[at] ^ 0xff]) + data[at + 1:]):
                q = p.copy()
                q[layer].remove_payload()
                q = q / Raw(new)
                del q[IP].len, q[IP].chksum, q[layer].chksum
                if layer is UDP:
                    del q[UDP].len
                variants.append(q)
            c, f = variants
        cut.append(c)
        flipped.append(f)
    wrpcap(f"{base}-cut.pcap", cut)
    wrpcap(f"{base}-flipped.pcap", flipped)
    written += 3
print(f"{written} seeds in {out}")
