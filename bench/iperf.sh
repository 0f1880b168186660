#!/usr/bin/env bash
# Disturbance of the host's own traffic: iperf3 TCP across the veth (offloads on) with no
# capture, with `tcpdump -w` capturing it, with a pcap-agent capture rate-limited to 10 Mbit/s
# (the way captures are meant to run beside production traffic), with an unlimited pcap-agent
# capture, and with `tcpdump -s 1` (one byte of every packet: the floor for any capture that
# sees each packet), all capturing `tcp port 5201` on the receiving side. Needs root.
#
#   bench/iperf.sh [--runs N]
#
# The scenarios are interleaved and their order rotates every run; between scenarios the
# written files are removed and synced, so that one tool's writeback does not land on the next.
# Neither the agent nor tcpdump is pinned: they run where the scheduler puts them.
# Writes its table into bench/README.md between the iperf markers.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
RUNS=5
ARGS="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 64 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench/iperf.sh needs root (network namespaces, raw capture)" >&2; exit 1; }
bench_prepare iperf3 tcpdump jq curl
SCRATCH=$(mktemp -d /var/tmp/pa-iperf.XXXXXX)
cleanup() {
  agent_stop
  [ -f "$SCRATCH/iperf.pid" ] && kill "$(cat "$SCRATCH/iperf.pid")" 2>/dev/null || true
  net_down
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
net_up
CSV="$OUT/iperf.csv"
echo "scenario,run,gbits,lost_by_capture" > "$CSV"
ip netns exec "$NS_B" iperf3 -s -D --pidfile "$SCRATCH/iperf.pid" >/dev/null
sleep 0.5
agent_start unpinned

iperf_run() {
  ip netns exec "$NS_A" iperf3 -c 10.77.0.2 -t 10 -J | jq '.end.sum_received.bits_per_second / 1e9'
}
settle() { sync; sleep 2; }

# Runs scenario $1 for run $2 and appends its row.
scenario() {
  local name=$1 run=$2 gbits td id lost=0
  case "$name" in
    none)
      gbits=$(iperf_run) ;;
    tcpdump|tcpdump-s1)
      local snap=0
      [ "$name" = tcpdump-s1 ] && snap=1
      ip netns exec "$NS_B" tcpdump -i vB -w "$SCRATCH/i.pcap" -B 65536 -s "$snap" -n 'tcp port 5201' 2>"$SCRATCH/td.err" &
      td=$!; sleep 1
      gbits=$(iperf_run)
      kill -INT "$td"; wait "$td" 2>/dev/null || true
      lost=$(awk '/dropped by kernel/ {print $1}' "$SCRATCH/td.err")
      rm -f "$SCRATCH/i.pcap" ;;
    agent-10mbit|agent)
      local limits='{"max_duration":"10m","max_bytes":"90GiB"}'
      [ "$name" = agent-10mbit ] && limits='{"max_duration":"10m","max_bps":1250000}'
      id=$(agent_capture "{\"interface\":\"vB\",\"filter\":\"tcp port 5201\",\"reason\":\"other\",\"subject\":\"iperf3 benchmark\",\"limits\":$limits}")
      sleep 1
      gbits=$(iperf_run)
      local record
      record=$(agent_capture_stop "$id")
      echo "$record" > "$OUT/iperf-$name-$run.json"
      lost=$(jq .stats.dropped_kernel <<<"$record")
      # What the uploader still has to do for this capture is not the next scenario's cost:
      # wait until the reaper has removed the capture from the spool, then drop its objects.
      for _ in $(seq 300); do
        [ -d "$AGENT_DIR/spool/$id" ] || break
        sleep 0.2
      done
      agent_capture_purge "$id"
      rm -rf "$AGENT_DIR/store/captures/BENCH-1/$id" ;;
  esac
  echo "$name,$run,$gbits,${lost:-0}" >> "$CSV"
  settle
}

SCENARIOS=(none tcpdump tcpdump-s1 agent-10mbit agent)
for run in $(seq "$RUNS"); do
  for i in "${!SCENARIOS[@]}"; do
    name=${SCENARIOS[$(( (i + run - 1) % ${#SCENARIOS[@]} ))]}
    echo "iperf3: run $run $name" >&2
    scenario "$name" "$run"
  done
done
agent_stop

SECTION=("$ROOT/bench/section.py" iperf "$ROOT/bench/README.md" "sudo bench/iperf.sh${ARGS:+ $ARGS}")
python3 - "$CSV" "$RUNS" <<'PY' | "${SECTION[@]}"
import csv, statistics, sys
from collections import defaultdict
path, runs = sys.argv[1], sys.argv[2]
gb, lost = defaultdict(list), defaultdict(list)
for r in csv.DictReader(open(path)):
    gb[r["scenario"]].append(float(r["gbits"]))
    lost[r["scenario"]].append(int(float(r["lost_by_capture"] or 0)))
def cell(v, d=2): return f"{statistics.median(v):.{d}f} [{min(v):.{d}f}–{max(v):.{d}f}]"
base = statistics.median(gb["none"])
names = {"none": "no capture", "tcpdump": "tcpdump -w", "tcpdump-s1": "tcpdump -s 1 -w (one byte of each packet)",
         "agent-10mbit": "pcap-agent, 10 Mbit/s limit",
         "agent": "pcap-agent, no rate limit"}
print(f"{runs} runs of 10 s per scenario, interleaved, the order rotating every run; median [min–max].\n")
print("| capture | Gbit/s | ratio to no capture | packets the capture lost (kernel) |")
print("|---|---|---|---|")
for key, label in names.items():
    if gb[key]:
        loss = "–" if key == "none" else f"{statistics.median(lost[key]):,.0f}"
        print(f"| {label} | {cell(gb[key])} | **{statistics.median(gb[key]) / base:.2f}** | {loss} |")
PY
