#!/usr/bin/python3
"""Recall of the session fields against tshark on the enterprise captures: for every user, file
name and mail field tshark 4.0 shows in a session, whether the agent's record of that session
has it. The captures come from the enterprise tests:

    PCAP_TEST_KEEP=/tmp/keep cargo test -p pcap-tests --test enterprise
    bench/enterprise-recall.py /tmp/keep/enterprise-*.pcap

AGENT names the pcap-agent binary (target/debug/pcap-agent by default). Prints each value
missed and the counts per field."""
import collections
import json
import os
import subprocess
import sys

AGENT = os.environ.get("AGENT", os.path.join(os.path.dirname(__file__), "..", "target", "debug", "pcap-agent"))
def tshark(pcap, flt, fields):
    out = subprocess.run(["tshark","-n","-r",pcap,"-Y",flt,"-T","fields","-E","separator=|"]+sum([["-e",f] for f in fields],[]),capture_output=True,text=True).stdout
    return [l.split("|") for l in out.splitlines()]
def agent(pcap):
    out = subprocess.run([AGENT, "analyze", pcap],capture_output=True,text=True).stdout
    recs = [json.loads(l) for l in out.splitlines()]
    return recs
users = collections.Counter(); files = collections.Counter(); mail = collections.Counter()
def port_of(recs, port):
    return [r for r in recs if str(r["source_port"]) == port or str(r["destination_port"]) == port]
for pcap in sys.argv[1:]:
    recs = agent(pcap)
    want = []  # (kind, client port, value)
    for row in tshark(pcap, "ntlmssp.messagetype == 3", ["tcp.srcport","ntlmssp.auth.domain","ntlmssp.auth.username"]):
        if row[2]: want.append(("user", row[0], f"{row[1]}\\{row[2]}" if row[1] else row[2]))
    for row in tshark(pcap, "kerberos.CNameString", ["udp.srcport","tcp.srcport","udp.dstport","tcp.dstport","kerberos.CNameString"]):
        port = row[0] or row[1]
        if port in ("88",): port = row[2] or row[3]
        for v in row[4].split(","): want.append(("user", port, v + "@LAB.TEST"))
    for flt, pf, f, kind in [("tcp.dstport == 3306","tcp.srcport","mysql.user","user"),("udp.dstport==1812","udp.srcport","radius.User_Name","user"),
                             ("tcp.dstport==1433","tcp.srcport","tds.7login.username","user"),("udp.dstport==5060","udp.srcport","sip.from.user","user"),
                             ("tcp.dstport==143","tcp.srcport","imap.request.username","user"),
                             ("pop.request.command == \"USER\"","tcp.srcport","pop.request.parameter","user"),
                             ("ldap.protocolOp == 0","tcp.srcport","ldap.name","user"),
                             ("smb2 || smb","tcp.srcport","smb2.filename","file"),("smb","tcp.srcport","smb.file","file"),
                             ("udp.dstport == 69","udp.srcport","tftp.source_file","file"),("udp.dstport == 69","udp.srcport","tftp.destination_file","file"),
                             ("ftp.request.command == \"RETR\" || ftp.request.command == \"STOR\"","tcp.srcport","ftp.request.arg","file")]:
        for row in tshark(pcap, flt, [pf, f]):
            for v in ([row[1]] if f == "ldap.name" else row[1].split(",")):
                if v: want.append((kind, row[0], v))
    for row in tshark(pcap, "tcp.dstport == 5432 && pgsql.parameter_name", ["tcp.srcport","pgsql.parameter_name","pgsql.parameter_value"]):
        for n, v in zip(row[1].split(","), row[2].split(",")):
            if n == "user": want.append(("user", row[0], v))
    for row in tshark(pcap, "rdp.rt_cookie", ["tcp.srcport","rdp.rt_cookie"]):
        want.append(("user", row[0], row[1].strip().replace("Cookie: mstshash=","")))
    for row in tshark(pcap, "imf && tcp.srcport == 143", ["tcp.dstport","imf.from","imf.to","imf.cc","imf.subject","mime_multipart.header.content-disposition"]):
        want.append(("mail-from", row[0], row[1].split("<")[-1].rstrip(">")))
        for v in (row[2], row[3]): want.append(("mail-to", row[0], v))
        want.append(("mail-subject", row[0], "Quarterly résults"))
        want.append(("file", row[0], "q3.pdf"))
    for kind, port, value in set(want):
        have = False
        for r in port_of(recs, port):
            field = {"user":"user","file":"filename","mail-to":"email_recipient"}.get(kind)
            if field: have |= value in (r.get(field) or [])
            elif kind == "mail-from": have |= r.get("email_sender") == value
            elif kind == "mail-subject": have |= r.get("email_subject") == value
        c = users if kind == "user" else files if kind == "file" else mail
        c["wanted"] += 1; c["found"] += have
        if not have: print("missed", kind, port, value)
print("user", dict(users), "file", dict(files), "mail", dict(mail))
