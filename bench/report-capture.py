#!/usr/bin/env python3
"""Turns bench/out/capture.csv into the capture tables of bench/README.md
(printed; bench/section.py puts them in place)."""
import csv
import os
import statistics
import sys
from collections import defaultdict

csv_path, runs, secs = sys.argv[1:4]
# --vxlan PACED: the agent on a VXLAN carrier against the agent on plain frames (and tcpdump on
# the carrier), with the CPU cost at the paced rate PACED.
vxlan_paced = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--vxlan" else None
HZ = os.sysconf("SC_CLK_TCK")
TOOLS = ["pcap-agent", "tcpdump", "dumpcap"]


def fmt(values, unit="", digits=1):
    if not values:
        return "–"
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return f"{med:.{digits}f}{unit} [{lo:.{digits}f}–{hi:.{digits}f}]"


rows = list(csv.DictReader(open(csv_path)))
by = defaultdict(list)
for r in rows:
    for k in ("size", "rate", "run", "delivered", "captured", "kernel_drops", "cpu_ticks", "rss_kib"):
        r[k] = int(float(r[k] or 0))
    r["secs"] = float(r["secs"])
    by[(r["tool"], r["size"])].append(r)

sizes = sorted({r["size"] for r in rows})
zero_drop = {}
full = {}
for (tool, size), rs in by.items():
    per_run = defaultdict(list)
    for r in rs:
        per_run[r["run"]].append(r)
    zd = []
    for run_rows in per_run.values():
        ok = [r["delivered"] / r["secs"] / 1000 for r in run_rows
              if r["kernel_drops"] == 0 and r["captured"] >= r["delivered"] - 2]
        zd.append(max(ok) if ok else 0.0)
    zero_drop[(tool, size)] = zd
    full[(tool, size)] = [r for r in rs if r["rate"] == 0]

def vxlan_report():
    def med(values):
        return statistics.median(values) if values else float("nan")

    def ratio(a, b):
        r = med(a) / med(b) if med(b) else float("nan")
        return "–" if r != r else f"**{r:.2f}x**"

    def per_packet(tool, size):
        return [1e6 * r["cpu_ticks"] / HZ / r["captured"] for r in by.get((tool, size), [])
                if r["rate"] == vxlan_paced and r["captured"] and r["kernel_drops"] == 0]

    out = [f"Runs: {runs} per cell, {secs} s of traffic each; median [min–max]. Generator: one trafgen "
           "process on CPU 0; capture tool on CPU 1; filter `udp`; kernel buffer 64 MiB. "
           "*plain*: UDP frames of the size given; *vxlan*: VXLAN carrier frames of the same size "
           "(UDP 4789, VNI 5001) around a UDP frame 50 bytes shorter, which the agent's sessions "
           "take off.\n",
           "| frame on the wire | agent zero-drop kpps, plain | agent, vxlan | **vxlan / plain** | "
           "agent scoped to the VNI | tcpdump -w, vxlan | agent CPU µs per packet at "
           f"{vxlan_paced // 1000} kpps, plain | agent, vxlan | **vxlan / plain** | agent scoped | "
           "tcpdump -w, vxlan |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for size in sizes:
        zp = zero_drop.get(("pcap-agent", size), [])
        zv = zero_drop.get(("pcap-agent-vxlan", size), [])
        zs = zero_drop.get(("pcap-agent-scoped-vxlan", size), [])
        zt = zero_drop.get(("tcpdump-vxlan", size), [])
        cp, cv, cs, ct = (per_packet(t, size) for t in
                          ("pcap-agent", "pcap-agent-vxlan", "pcap-agent-scoped-vxlan", "tcpdump-vxlan"))
        out.append(f"| {size} B | {fmt(zp, '', 0)} | {fmt(zv, '', 0)} | {ratio(zv, zp)} | "
                   f"{fmt(zs, '', 0)} | {fmt(zt, '', 0)} | {fmt(cp, '', 2)} | {fmt(cv, '', 2)} | "
                   f"{ratio(cv, cp)} | {fmt(cs, '', 2)} | {fmt(ct, '', 2)} |")
    out.append("")
    out.append("Zero-drop as in the capture table: the unpaced generator first, then 250k, 225k, ... pps "
               "until a run loses nothing; a tool that loses nothing unpaced is credited with the "
               "generator's ceiling in that run.\n")
    return out


out = []
if vxlan_paced is not None:
    print("\n".join(vxlan_report()))
    sys.exit(0)
out.append(f"Runs: {runs} per cell, {secs} s of traffic each; median [min–max]. Generator: one trafgen "
           "process on CPU 0; capture tool on CPU 1; filter `udp`; kernel buffer 64 MiB for every tool.\n")
out.append("### Zero-drop rate (kpps): the highest offered rate with no packet lost\n")
out.append("| frame | pcap-agent | tcpdump -w | dumpcap -w | pcap-agent / tcpdump |")
out.append("|---|---|---|---|---|")
for size in sizes:
    a = zero_drop.get(("pcap-agent", size), [])
    t = zero_drop.get(("tcpdump", size), [])
    ratio = statistics.median(a) / statistics.median(t) if a and t and statistics.median(t) else float("nan")
    out.append(f"| {size} B | {fmt(a, '', 0)} | {fmt(t, '', 0)} | {fmt(zero_drop.get(('dumpcap', size), []), '', 0)} | **{ratio:.2f}x** |")
out.append("")
out.append("Each tool first takes the unpaced generator; a tool that loses nothing there is credited "
           "with the generator's ceiling (what one trafgen CPU delivers while that tool captures). "
           "A tool that loses packets is run again at 250k, 225k, 200k, ... pps until a run loses "
           "none.\n")
out.append("### Full load (unpaced generator on one CPU)\n")
out.append("| frame | tool | offered kpps | captured % | CPU % of a core | CPU µs per captured packet | peak RSS MiB |")
out.append("|---|---|---|---|---|---|---|")
for size in sizes:
    for tool in TOOLS:
        rs = full.get((tool, size), [])
        if not rs:
            continue
        offered = [r["delivered"] / r["secs"] / 1000 for r in rs]
        frac = [100.0 * min(r["captured"], r["delivered"]) / r["delivered"] for r in rs if r["delivered"]]
        cpu = [100.0 * r["cpu_ticks"] / HZ / r["secs"] for r in rs]
        per_pkt = [1e6 * r["cpu_ticks"] / HZ / r["captured"] for r in rs if r["captured"]]
        rss = [r["rss_kib"] / 1024 for r in rs]
        out.append(f"| {size} B | {tool} | {fmt(offered, '', 0)} | {fmt(frac)} | {fmt(cpu)} | {fmt(per_pkt, '', 2)} | {fmt(rss, '', 0)} |")
out.append("")

print("\n".join(out))
