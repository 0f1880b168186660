#!/usr/bin/env python3
"""The fleet section of bench/README.md from bench/fleet.sh's raw report.

    bench/report-fleet.py REPORT PRICE_PUT_LIST PRICE_GET IDLE_SECONDS IDLE_DEVICES LATENCY_DEVICES
"""
import sys
report, put_list, get, secs, idle, lat = sys.argv[1:7]
put_list, get = float(put_list), float(get)
lines = [l.split() for l in open(report)]
print("| devices | listing | time | store requests | ratio to sequential |")
print("|---|---|---|---|---|")
seq = {}
for l in lines:
    if l[0] == "list":
        n, mode, t, reqs = l[1], l[2], float(l[3]), int(l[4])
        if mode == "sequential":
            seq[n] = t
        print(f"| {int(n):,} | {mode} | {t:.2f} s | {reqs:,} | {seq[n] / t:.1f}x faster |")
print()
print("The same store where each small GET waits about 40 ms before its body comes (s3s-fs writes")
print("headers and body apart, without TCP_NODELAY, against delayed ACKs), as a request to a")
print("remote S3 endpoint waits for its round trip:\n")
print("| devices | listing | time | ratio to sequential |")
print("|---|---|---|---|")
for l in lines:
    if l[0] == "slowlist":
        n, mode, t = l[1], l[2], float(l[3])
        if mode == "sequential":
            seq["slow" + n] = t
        print(f"| {int(n):,} | {mode} | {t:.2f} s | {seq['slow' + n] / t:.1f}x faster |")
print()
print(f"Store requests per device per day, from {idle} simulated agents idle for {secs} s with time")
print("running faster (every interval divided by the factor shown), priced at S3 Standard's")
print(f"${put_list} per 1,000 PUT/LIST and ${get} per 1,000 GET. Without a doorbell the intervals are")
print("the defaults (30 s); with it, the doorbell's (store polled every 15 minutes, heartbeat every")
print("hour or when its state changes).\n")
print("| doorbell | time factor | GET | LIST | PUT | all | $ per device per month | $ per month, 100,000 devices |")
print("|---|---|---|---|---|---|---|---|")
for bell in ("without", "with"):
    rows = [l for l in lines if l[0] == "requests" and l[1] == bell]
    factor = rows[0][2] if rows else "?"
    ops = {l[3].rstrip(":"): float(l[4]) for l in rows if l[3] != "all:"}
    g, li, p = ops.get("GetObject", 0), ops.get("ListObjectsV2", 0), ops.get("PutObject", 0)
    month = (g * get + (li + p) * put_list) / 1000 * 30
    print(f"| {bell} | {factor}x | {g:.0f} | {li:.0f} | {p:.0f} | {g + li + p:.0f} | {month:.4f} | {month * 100000:,.0f} |")
print()
print(f"Latency over {lat} simulated agents at the default intervals, a document written for every")
print("device at once (64 writes in flight, each followed by its doorbell ring as the portal does):")
print("from the write's completion to the agent's scheduler receiving the request, or to its")
print("authorization state turning `revoked` (the scheduler stops captures on that change).\n")
print("| doorbell | what | reached | p50 | p99 | max |")
print("|---|---|---|---|---|---|")
for l in lines:
    if l[0] == "latency":
        text = " ".join(l[2:])
        what, rest = text.split(": ", 1)
        parts = rest.replace(",", "").split()
        print(f"| {l[1]} | {what} | {parts[0]} of {parts[2]} | {parts[5]} ms | {parts[8]} ms | {parts[11]} ms |")
print()
mem = {l[1]: (int(l[2]), int(l[3])) for l in lines if l[0] == "memory"}
if "with" in mem and "without" in mem:
    d = (mem["with"][0] - mem["without"][0]) / 1024
    print(f"A real pcap-agent idle for 20 s: resident {mem['without'][0] / 1024:.1f} MiB without a doorbell,")
    print(f"{mem['with'][0] / 1024:.1f} MiB with it connected ({d:+.1f} MiB; peak {mem['without'][1] / 1024:.1f} and")
    print(f"{mem['with'][1] / 1024:.1f} MiB).")
