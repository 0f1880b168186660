#!/usr/bin/python3
"""Seeds of the `sessions` fuzz target for what the session layer learned last: IP fragments
(in order, out of order, overlapping; IPv6, atomic), Teredo and NSH, HTTP kept alive with a
chunked answer, an upload and NTLM credentials, SSDP, DHCPv6 and DNS on another port. Written
with scapy (an implementation independent of the agent's). Usage: seeds-sessions.py DIR"""
import base64
import struct
import sys

from scapy.all import (
    IP, IPv6, IPv6ExtHdrFragment, TCP, UDP, Ether, Raw, fragment, fragment6, wrpcap,
)
from scapy.layers.dhcp6 import DHCP6_Solicit
from scapy.layers.dns import DNS, DNSQR

out = sys.argv[1]
A, B = "10.9.0.1", "10.9.0.2"


def eth(pkts):
    return [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / p for p in pkts]


def tcp_session(sport, dport, client, server):
    """A TCP session: handshake, then each side's bytes in segments of 600."""
    c, s = 1000, 5000
    pkts = [IP(src=A, dst=B) / TCP(sport=sport, dport=dport, flags="S", seq=c - 1),
            IP(src=B, dst=A) / TCP(sport=dport, dport=sport, flags="SA", seq=s - 1, ack=c)]
    for data, (src, dst, sp, dp, seq) in [(client, (A, B, sport, dport, c)), (server, (B, A, dport, sport, s))]:
        for i in range(0, len(data), 600):
            pkts.append(IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags="PA", seq=seq + i) / Raw(data[i:i + 600]))
    return pkts


invite = b"INVITE sip:frag@lab.example SIP/2.0\r\nVia: SIP/2.0/UDP x\r\nX-Pad: " + b"x" * 2400 + b"\r\n\r\n"
v4 = IP(src=A, dst=B, id=7) / UDP(sport=40000, dport=5060) / Raw(invite)
frags = fragment(v4, fragsize=800)
wrpcap(f"{out}/fragments-v4.pcap", eth(frags))
wrpcap(f"{out}/fragments-v4-reversed.pcap", eth(list(reversed(frags))))
overlap = [frags[0], frags[1].copy(), frags[1]]
overlap[1].frag = frags[1].frag - 8 if frags[1].frag > 8 else 0
wrpcap(f"{out}/fragments-v4-overlap.pcap", eth(overlap))
v6 = IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(id=9) / UDP(sport=40001, dport=5060) / Raw(invite)
wrpcap(f"{out}/fragments-v6.pcap", eth(fragment6(v6, 1280)))
atomic = IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(id=10, m=0, offset=0) / UDP(sport=40002, dport=53) / DNS(qd=DNSQR(qname="atomic.lab"))
wrpcap(f"{out}/fragment-v6-atomic.pcap", eth([atomic]))

teredo = IP(src="192.0.2.1", dst="198.51.100.1") / UDP(sport=40003, dport=3544) / Raw(
    b"\x00\x00\x12\x34\x01\x02\x03\x04" + bytes(IPv6(src="2001::1", dst="2001::2") / UDP(sport=40004, dport=53) / DNS(qd=DNSQR(qname="teredo.lab"))))
wrpcap(f"{out}/teredo.pcap", eth([teredo]))
nsh = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x894F) / Raw(
    b"\x00\x02\x02\x01\x00\x01\x23\xff" + bytes(IP(src=A, dst=B) / UDP(sport=40005, dport=53) / DNS(qd=DNSQR(qname="nsh.lab"))))
wrpcap(f"{out}/nsh.pcap", [nsh])

# HTTP kept alive: a chunked answer, an upload, NTLM credentials (an AUTHENTICATE message).
def ntlm(domain, user):
    d, u, w = (s.encode("utf-16-le") for s in (domain, user, "WS"))
    fields, payload, base = b"", b"", 72
    for data in (b"\0" * 24, b"\1" * 24, d, u, w, b""):
        fields += struct.pack("<HHI", len(data), len(data), base + len(payload))
        payload += data
    return b"NTLMSSP\0" + struct.pack("<I", 3) + fields + struct.pack("<I", 1) + b"\0" * 8 + payload

body = b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"up.txt\"\r\n\r\nhello\r\n--b--\r\n"
client = (b"GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: NTLM " + base64.b64encode(ntlm("LAB", "bob")) + b"\r\n\r\n"
          + b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: "
          + str(len(body)).encode() + b"\r\n\r\n" + body + b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n")
server = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Disposition: attachment; filename*=UTF-8''r%C3%A9.pdf\r\n\r\n"
          + b"4\r\nabcd\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
          + b"HTTP/1.2 200 ok\nContent-Disposition: attachment;\n filename=\"evasive.exe\"\nContent-Length: 0\n\n")
wrpcap(f"{out}/http-keepalive.pcap", eth(tcp_session(40006, 80, client, server)))

ssdp = IP(src=A, dst="239.255.255.250") / UDP(sport=40007, dport=1900) / Raw(
    b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nLOCATION: http://10.9.0.1:49152/d.xml\r\nNTS: ssdp:alive\r\n\r\n")
dhcp6 = IPv6(src="fe80::1", dst="ff02::1:2") / UDP(sport=546, dport=547) / DHCP6_Solicit(trid=1)
odd_dns = IP(src=A, dst=B) / UDP(sport=40008, dport=5300) / DNS(qd=DNSQR(qname="odd.lab"))
wrpcap(f"{out}/ssdp-dhcpv6-dns.pcap", eth([ssdp, dhcp6, odd_dns]))
