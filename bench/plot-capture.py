#!/usr/bin/env python3
"""Plots of the capture benchmark (bench/out/capture.csv from bench/capture.sh): packets
written per second and the fraction of the delivered packets captured, against the offered
rate, for pcap-agent, tcpdump and dumpcap, one panel per frame size. Every run is a point; the
line joins the medians per offered rate.

    bench/plot-capture.py [bench/out/capture.csv] [bench/capture-rate.png]
"""
import csv
import statistics
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src = sys.argv[1] if len(sys.argv) > 1 else "bench/out/capture.csv"
dst = sys.argv[2] if len(sys.argv) > 2 else "bench/capture-rate.png"
rows = list(csv.DictReader(open(src)))
sizes = sorted({int(r["size"]) for r in rows})
tools = ["pcap-agent", "tcpdump", "dumpcap"]
colors = {"pcap-agent": "tab:blue", "tcpdump": "tab:orange", "dumpcap": "tab:green"}

fig, axes = plt.subplots(2, len(sizes), figsize=(5 * len(sizes), 8), squeeze=False)
for col, size in enumerate(sizes):
    for tool in tools:
        pts = defaultdict(list)
        for r in rows:
            if r["tool"] != tool or int(r["size"]) != size:
                continue
            secs = float(r["secs"])
            offered = int(r["delivered"]) / secs / 1000  # kpps that reached the interface
            captured = int(r["captured"])
            frac = captured / int(r["delivered"]) if int(r["delivered"]) else 0
            # Paced runs are grouped by their target rate; unpaced ones by what arrived.
            key = int(r["rate"]) / 1000 if int(r["rate"]) else round(offered, -1)
            pts[key].append((offered, captured / secs / 1000, frac))
        xs = sorted(pts)
        for x in xs:
            for offered, kpps, frac in pts[x]:
                axes[0][col].scatter(offered, kpps, s=10, color=colors[tool], alpha=0.5)
                axes[1][col].scatter(offered, frac, s=10, color=colors[tool], alpha=0.5)
        med = [(statistics.median(p[0] for p in pts[x]),
                statistics.median(p[1] for p in pts[x]),
                statistics.median(p[2] for p in pts[x])) for x in xs]
        med.sort()
        axes[0][col].plot([m[0] for m in med], [m[1] for m in med], color=colors[tool], label=tool)
        axes[1][col].plot([m[0] for m in med], [m[2] for m in med], color=colors[tool], label=tool)
    axes[0][col].set_title(f"{size}-byte frames")
    axes[0][col].set_ylabel("written (kpps)")
    axes[1][col].set_ylabel("captured fraction")
    axes[1][col].set_ylim(0, 1.05)
    for ax in (axes[0][col], axes[1][col]):
        ax.set_xlabel("offered (kpps)")
        ax.grid(alpha=0.3)
        ax.legend()
fig.suptitle("Capture on a veth pair: pcap-agent vs tcpdump -w vs dumpcap -w (bench/capture.sh)")
fig.tight_layout()
fig.savefig(dst, dpi=90)
print(f"wrote {dst}")
