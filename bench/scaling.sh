#!/usr/bin/env bash
# How pcap-agent's cost grows with its work, against tcpdump (and tshark) in the same run:
#   1. concurrent captures: 1, 2 and 4 captures of the same traffic (each `udp` on vB) against
#      as many tcpdump -w processes; CPU per packet per capture and packets lost;
#   2. the flow table: `pcap-agent analyze` over files with about 10k, 100k and 1M sessions
#      against tshark with the equivalent fields; time and peak RSS;
#   3. resident memory over a long capture (with uploads to the local store and the reaper
#      running), sampled every second, against tcpdump -w on the same traffic.
# Needs root (network namespaces). RUNS runs of SECS seconds per cell (default 3 x 10 s);
# LONG_SECS for part 3 (default 300).
#
#   sudo bench/scaling.sh
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
RUNS=${RUNS:-3}
SECS=${SECS:-10}
LONG_SECS=${LONG_SECS:-300}
RATE=${RATE:-100000}
[ "$(id -u)" -eq 0 ] || { echo "bench/scaling.sh needs root" >&2; exit 1; }
bench_prepare trafgen=netsniff-ng tcpdump tshark jq curl
SCRATCH=$(mktemp -d /var/tmp/pa-scaling.XXXXXX)
TD_PIDS=()
cleanup() {
  agent_stop
  for p in "${TD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  net_down
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
net_up
trafgen_cfg 512 "$SCRATCH/udp512.cfg"
trafgen_cfg 1514 "$SCRATCH/udp1514.cfg"
REQ='{"interface":"vB","filter":"udp","reason":"other","subject":"scaling benchmark","limits":{"max_duration":"1h","max_bytes":"90GiB"}}'

# --- 1. concurrent captures ----------------------------------------------------------------
CONC="$OUT/scaling-concurrency.csv"
echo "tool,captures,run,delivered,captured_min,cpu_ticks,secs" > "$CONC"
for run in $(seq "$RUNS"); do
  for n in 1 2 4; do
    # pcap-agent: n captures in one daemon.
    agent_start
    ids=()
    for _ in $(seq "$n"); do ids+=("$(agent_capture "$REQ")"); done
    sleep 1
    a=$(rx_packets); t0=$(cpu_ticks "$AGENT_PID")
    blast "$SECS" "$SCRATCH/udp512.cfg" "${RATE}pps"
    sleep 0.5
    b=$(rx_packets); t1=$(cpu_ticks "$AGENT_PID")
    min=""
    for id in "${ids[@]}"; do
      w=$(agent_capture_stop "$id" | jq .stats.written)
      { [ -z "$min" ] || [ "$w" -lt "$min" ]; } && min=$w
    done
    echo "pcap-agent,$n,$run,$((b - a)),$min,$((t1 - t0)),$SECS" >> "$CONC"
    agent_stop
    # tcpdump: n processes, all on CPU 1 like the agent.
    TD_PIDS=()
    for i in $(seq "$n"); do
      ip netns exec "$NS_B" taskset -c 1 tcpdump -i vB -w "$SCRATCH/t$i.pcap" -B 65536 -s 0 -n udp 2>"$SCRATCH/t$i.err" &
      TD_PIDS+=($!)
    done
    sleep 1
    a=$(rx_packets); t0=0
    for p in "${TD_PIDS[@]}"; do t0=$((t0 + $(cpu_ticks "$p"))); done
    blast "$SECS" "$SCRATCH/udp512.cfg" "${RATE}pps"
    sleep 0.5
    b=$(rx_packets); t1=0
    for p in "${TD_PIDS[@]}"; do t1=$((t1 + $(cpu_ticks "$p"))); done
    min=""
    for i in $(seq "$n"); do
      kill -INT "${TD_PIDS[$((i - 1))]}"; wait "${TD_PIDS[$((i - 1))]}" 2>/dev/null || true
      w=$(awk '/packets captured/ {print $1}' "$SCRATCH/t$i.err")
      { [ -z "$min" ] || [ "$w" -lt "$min" ]; } && min=$w
      rm -f "$SCRATCH/t$i.pcap"
    done
    TD_PIDS=()
    echo "tcpdump,$n,$run,$((b - a)),$min,$((t1 - t0)),$SECS" >> "$CONC"
    echo "scaling: run $run, $n captures" >&2
  done
done

# --- 2. the flow table ---------------------------------------------------------------------
TABLE="$OUT/scaling-table.csv"
echo "tool,sessions,run,seconds,rss_kib" > "$TABLE"
# Half the packets are UDP datagrams spread over the given flows, half TCP segments of the
# given sessions; the 1M file has 2M packets so that a million sessions fit.
for spec in "10k 1000000 4000 6000" "100k 1000000 45000 65000" "1M 2000000 200000 1000000"; do
  read -r label packets tcp udp <<<"$spec"
  pcap="$OUT/table-$label.pcap"
  [ -f "$pcap" ] || ./mkpcap.py "$pcap" --packets "$packets" --sessions "$tcp" --udp-flows "$udp" >/dev/null
  for run in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$SCRATCH/time" "$BIN/pcap-agent" analyze "$pcap" >/dev/null 2>"$SCRATCH/analyze.err"
    read -r s m < "$SCRATCH/time"
    sessions=$(sed -n 's/.*packets, \([0-9]*\) sessions/\1/p' "$SCRATCH/analyze.err")
    echo "pcap-agent,$sessions,$run,$s,$m" >> "$TABLE"
    /usr/bin/time -f "%e %M" -o "$SCRATCH/time" tshark -n -r "$pcap" -T fields -e ip.src -e ip.dst \
      -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport -e tcp.stream -e udp.stream >/dev/null 2>&1
    read -r s m < "$SCRATCH/time"
    echo "tshark,$sessions,$run,$s,$m" >> "$TABLE"
    echo "scaling: table $label run $run" >&2
  done
done

# --- 3. resident memory over a long capture ------------------------------------------------
LONG="$OUT/scaling-rss.csv"
echo "tool,second,rss_kib" > "$LONG"
agent_start
id=$(agent_capture "$REQ")
ip netns exec "$NS_B" taskset -c 1 tcpdump -i vB -w "$SCRATCH/long.pcap" -B 65536 -s 0 -n -C 64 -W 2 -Z root udp 2>/dev/null &
td=$!
sleep 1
( blast "$LONG_SECS" "$SCRATCH/udp1514.cfg" "${RATE}pps" ) &
gen=$!
for sec in $(seq "$LONG_SECS"); do
  echo "pcap-agent,$sec,$(awk '/VmRSS/ {print $2}' "/proc/$AGENT_PID/status")" >> "$LONG"
  echo "tcpdump,$sec,$(awk '/VmRSS/ {print $2}' "/proc/$td/status")" >> "$LONG"
  # The analysis side takes the segments away (tcpdump keeps a two-file ring): otherwise the
  # store, on the same disk, fills it at 150 MB/s and the agent stops with disk_full.
  [ $((sec % 5)) -eq 0 ] && find "$AGENT_DIR/store" -type f -name '*.pcap.age' -delete
  sleep 1
done
wait "$gen" || true
record=$(agent_capture_stop "$id")
kill -INT "$td"; wait "$td" 2>/dev/null || true
echo "$record" | jq '{written: .stats.written, dropped_kernel: .stats.dropped_kernel, segments: (.segments | length), stop_reason: .stop_reason}' > "$OUT/scaling-rss-capture.json"
agent_stop

SECTION=("$ROOT/bench/section.py" scaling "$ROOT/bench/README.md" "sudo RUNS=$RUNS SECS=$SECS LONG_SECS=$LONG_SECS RATE=$RATE bench/scaling.sh")
python3 - "$OUT" "$RATE" "$SECS" "$RUNS" "$LONG_SECS" <<'PY' | "${SECTION[@]}"
import csv, statistics, sys
out, rate, secs, runs, long_secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def med(v): return statistics.median(v)
def cell(v, fmt="{:.2f}"): return f"{fmt.format(med(v))} [{fmt.format(min(v))}–{fmt.format(max(v))}]"
hz = 100
rows = list(csv.DictReader(open(f"{out}/scaling-concurrency.csv")))
print(f"### Concurrent captures ({rate // 1000} kpps of 512-byte frames, {runs} runs of {secs} s; the capture side on one CPU)\n")
print("| captures | tool | CPU µs per packet per capture | CPU % of a core | lowest captured % | pcap-agent ÷ tcpdump (CPU) |")
print("|---|---|---|---|---|---|")
def per(n, tool):
    rs = [r for r in rows if r["tool"] == tool and r["captures"] == n]
    us = [int(r["cpu_ticks"]) / hz * 1e6 / (int(r["delivered"]) * int(n)) for r in rs]
    cpu = [int(r["cpu_ticks"]) / hz / float(r["secs"]) * 100 for r in rs]
    cap = [100 * int(r["captured_min"]) / int(r["delivered"]) for r in rs]
    return us, cpu, cap
for n in ("1", "2", "4"):
    base = med(per(n, "tcpdump")[0])
    for tool in ("pcap-agent", "tcpdump"):
        us, cpu, cap = per(n, tool)
        ratio = "–" if tool == "tcpdump" else f"**{med(us) / base:.2f}x**"
        print(f"| {n} | {tool} | {cell(us)} | {cell(cpu, '{:.0f}')} | {cell(cap, '{:.1f}')} | {ratio} |")
rows = list(csv.DictReader(open(f"{out}/scaling-table.csv")))
print(f"\n### The flow table: files with about 10k, 100k (1M packets each) and 1M sessions (2M packets) ({runs} runs)\n")
print("| sessions | tool | seconds | peak RSS MiB | tshark ÷ pcap-agent (time) |")
print("|---|---|---|---|---|")
for sessions in sorted({int(r["sessions"]) for r in rows if r["tool"] == "pcap-agent"}):
    a = [float(r["seconds"]) for r in rows if r["tool"] == "pcap-agent" and int(r["sessions"]) == sessions]
    am = [int(r["rss_kib"]) / 1024 for r in rows if r["tool"] == "pcap-agent" and int(r["sessions"]) == sessions]
    t = [float(r["seconds"]) for r in rows if r["tool"] == "tshark" and int(r["sessions"]) == sessions]
    tm = [int(r["rss_kib"]) / 1024 for r in rows if r["tool"] == "tshark" and int(r["sessions"]) == sessions]
    print(f"| {sessions:,} | pcap-agent | {cell(a)} | {cell(am, '{:.0f}')} | – |")
    print(f"| {sessions:,} | tshark | {cell(t)} | {cell(tm, '{:.0f}')} | **{med(t) / med(a):.1f}x** |")
rows = list(csv.DictReader(open(f"{out}/scaling-rss.csv")))
print(f"\n### Resident memory over a {long_secs} s capture ({rate // 1000} kpps of 1514-byte frames, uploads and reaper on)\n")
print("| tool | RSS MiB at 10 s | at half time | at the end | peak |")
print("|---|---|---|---|---|")
for tool in ("pcap-agent", "tcpdump"):
    v = [int(r["rss_kib"]) / 1024 for r in rows if r["tool"] == tool and r["rss_kib"]]
    print(f"| {tool} | {v[min(9, len(v) - 1)]:.0f} | {v[len(v) // 2]:.0f} | {v[-1]:.0f} | {max(v):.0f} |")
import json
c = json.load(open(f"{out}/scaling-rss-capture.json"))
if c.get("written") is None:
    print("\n**The agent's capture had ended before the benchmark stopped it: these figures do not cover the whole run.**")
else:
    print(f"\nThe agent's capture: {c['written']:,} packets written, {c['dropped_kernel']:,} dropped by the kernel, "
          f"{c['segments']} segments, stopped by `{c['stop_reason']}` (the benchmark's stop).")
PY
