#!/usr/bin/env bash
# Session extraction benchmark: `pcap-agent analyze` against `tshark -T fields` with the
# equivalent fields and `tcpdump -nn -r` (reference), on the same files, in the same run.
#
#   bench/analyze.sh [--runs N]
#   BASELINE=REV bench/analyze.sh   # and pcap-agent of REV (built beside), same files, same run
#
# Files (bench/mkpcap.py, deterministic): mixed.pcap, 1M packets with the composition of
# BASELINE.md's big.pcap (500k MTU TCP segments, 500k 512-byte UDP datagrams with varying
# ports), heavy.pcap, 1M packets spread over about 300k sessions (a table under pressure), and
# mixed-vxlan.pcap, mixed.pcap's frames each carried in VXLAN (as traffic mirroring sends them).
# Writes the table into bench/README.md between the analyze markers.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
RUNS=5
ARGS="$*"
[ "${1:-}" = --runs ] && RUNS=$2
bench_prepare hyperfine tshark tcpdump jq
[ -f "$OUT/mixed.pcap" ] || ./mkpcap.py "$OUT/mixed.pcap"
[ -f "$OUT/heavy.pcap" ] || ./mkpcap.py "$OUT/heavy.pcap" --sessions 20000 --udp-flows 400000
[ -f "$OUT/mixed-vxlan.pcap" ] || ./mkpcap.py "$OUT/mixed-vxlan.pcap" --vxlan 5001

AGENT="$ROOT/target/release/pcap-agent"
BASE_CMD=()
if [ -n "${BASELINE:-}" ]; then
  BASE_AGENT=$(baseline_bin "$BASELINE" pcap-agent)
fi
FIELDS="-e ip.src -e ip.dst -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport -e http.host -e http.request.uri -e tls.handshake.extensions_server_name -e tls.handshake.extensions_alpn_str -e dns.qry.name"
for file in mixed heavy mixed-vxlan; do
  pcap="$OUT/$file.pcap"
  sessions=$("$AGENT" analyze "$pcap" 2>&1 >/dev/null | sed -n 's/.*packets, \([0-9]*\) sessions/\1/p')
  [ -n "${BASELINE:-}" ] && BASE_CMD=(-n "pcap-agent $BASELINE" "$BASE_AGENT analyze $pcap")
  hyperfine --warmup 1 --runs "$RUNS" --output=null --export-json "$OUT/analyze-$file.json" \
    -n pcap-agent "$AGENT analyze $pcap" "${BASE_CMD[@]}" \
    -n tcpdump "tcpdump -nn -r $pcap" \
    -n tshark "tshark -n -r $pcap -T fields $FIELDS" >&2
  echo "$file $sessions" >> "$OUT/analyze-sessions.txt"
done

python3 - "$OUT" "$RUNS" "${BASELINE:-}" <<'PY' | "$ROOT/bench/section.py" analyze "$ROOT/bench/README.md" "${BASELINE:+BASELINE=$BASELINE }sudo bench/analyze.sh${ARGS:+ $ARGS}"
import json, statistics, sys
out, runs, baseline = sys.argv[1], sys.argv[2], sys.argv[3]
sessions = dict(l.split() for l in open(f"{out}/analyze-sessions.txt"))
lines = [f"{runs} runs each (hyperfine, one warm-up), file in the page cache, output to /dev/null; "
         "median [min–max]. One core: each command is single-threaded.\n",
         "| file | command | time s | packets/s | pcap-agent is ... x faster |", "|---|---|---|---|---|"]
agents = {}
for f in ("mixed", "heavy", "mixed-vxlan"):
    res = {r["command"]: r["times"] for r in json.load(open(f"{out}/analyze-{f}.json"))["results"]}
    agent = statistics.median(res["pcap-agent"])
    agents[f] = agent
    names = ["pcap-agent"] + ([f"pcap-agent {baseline}"] if baseline else []) + ["tshark", "tcpdump"]
    for name in names:
        t = res[name]
        med = statistics.median(t)
        ratio = "–" if name == "pcap-agent" else f"**{med / agent:.1f}x**"
        label = f"{f}.pcap (1M packets, {int(sessions[f]):,} sessions)"
        lines.append(f"| {label} | {name} | {med:.2f} [{min(t):.2f}–{max(t):.2f}] | {1e6 / med / 1e6:.2f} M | {ratio} |")
lines.append("")
lines.append(f"The same sessions inside VXLAN take {agents['mixed'] / agents['mixed-vxlan']:.2f}x the "
             "throughput of the plain file (mixed-vxlan against mixed, this run).")
print("\n".join(lines))
PY
rm -f "$OUT/analyze-sessions.txt"
