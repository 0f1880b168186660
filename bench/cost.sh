#!/usr/bin/env bash
# CPU cost per captured packet at a paced rate every tool keeps up with (so no core is
# saturated and no packet lost), pcap-agent against tcpdump -w and tcpdump -s 1 -w (the floor
# for anything that sees every packet), each pinned to CPU 1 with trafgen on CPU 0, same
# veth topology as bench/capture.sh; then a perf profile of the agent at the same rate.
#
#   sudo bench/cost.sh [--runs N] [--secs S] [--rate PPS] [--sizes "64 512 1514"] [--no-profile]
#   sudo bench/cost.sh --runs 0      # the profiles only
#   sudo BASELINE=REV bench/cost.sh  # and pcap-agent of REV (built beside), same runs
#
# The agent runs as in capture.sh: encryption, session extraction, sealing with direct I/O,
# and the uploader (local store on the spool's file system) and reaper on the same CPU.
# Raw rows go to bench/out/cost.csv, the profile to bench/out/profile-<size>.txt.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh

RUNS=3
SECS=10
RATE=100000
SIZES=(64 512 1514)
PROFILE=true
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --sizes) read -r -a SIZES <<<"$2"; shift 2 ;;
    --no-profile) PROFILE=false; shift ;;
    *) echo "usage: $0 [--runs N] [--secs S] [--rate PPS] [--sizes \"64 512 1514\"] [--no-profile]" >&2; exit 64 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench/cost.sh needs root (network namespaces, raw capture)" >&2; exit 1; }

bench_prepare trafgen=netsniff-ng tcpdump jq curl perf=linux-perf
BASE_AGENT=""
[ -n "${BASELINE:-}" ] && BASE_AGENT=$(baseline_bin "$BASELINE" pcap-agent)
SCRATCH=$(mktemp -d /var/tmp/pa-bench-cost.XXXXXX)
CSV="$OUT/cost.csv"
echo "tool,size,rate,run,delivered,captured,lost,cpu_ticks,us_per_packet,rss_kib" > "$CSV"
cleanup() { agent_stop; net_down; rm -rf "$SCRATCH"; }
trap cleanup EXIT
net_up

# One run: tool $1, frame size $2, run $3.
measure() {
  local tool=$1 size=$2 run=$3 pid id="" err="$SCRATCH/err" cfg="$SCRATCH/udp$size.cfg"
  case "$tool" in
    tcpdump|tcpdump-s1)
      local snap=0
      [ "$tool" = tcpdump-s1 ] && snap=1
      ip netns exec "$NS_B" taskset -c 1 tcpdump -i vB -w "$SCRATCH/x.pcap" -B 65536 -s "$snap" -n udp 2>"$err" &
      pid=$! ;;
    pcap-agent|pcap-agent-baseline)
      pid=$AGENT_PID
      id=$(agent_capture '{"interface":"vB","filter":"udp","reason":"other","subject":"benchmark","limits":{"max_duration":"10m","max_bytes":"90GiB"}}') ;;
  esac
  sleep 1
  local a t0 b t1 captured drops
  a=$(rx_packets); t0=$(cpu_ticks "$pid")
  blast "$SECS" "$cfg" "${RATE}pps"
  sleep 0.5
  b=$(rx_packets); t1=$(cpu_ticks "$pid")
  local rss
  rss=$(peak_rss_kib "$pid")
  case "$tool" in
    tcpdump*)
      kill -INT "$pid"; wait "$pid" 2>/dev/null || true
      captured=$(awk '/packets captured/ {print $1}' "$err")
      rm -f "$SCRATCH"/x.pcap ;;
    pcap-agent|pcap-agent-baseline)
      local record
      record=$(agent_capture_stop "$id")
      captured=$(jq .stats.written <<<"$record")
      agent_capture_purge "$id" ;;
  esac
  local lost=$(( (b - a) - captured ))
  [ "$lost" -lt 0 ] && lost=0
  local us
  us=$(echo "scale=3; ($t1 - $t0) * 1000000 / $HZ / $captured" | bc)
  echo "$tool,$size,$RATE,$run,$((b - a)),$captured,$lost,$((t1 - t0)),$us,$rss" | tee -a "$CSV" >&2
}

for size in "${SIZES[@]}"; do
  trafgen_cfg "$size" "$SCRATCH/udp$size.cfg"
  for run in $(seq "$RUNS"); do
    agent_start
    measure pcap-agent "$size" "$run"
    agent_stop
    if [ -n "$BASE_AGENT" ]; then
      AGENT_BIN=$BASE_AGENT agent_start
      measure pcap-agent-baseline "$size" "$run"
      agent_stop
    fi
    measure tcpdump "$size" "$run"
    measure tcpdump-s1 "$size" "$run"
  done
done

if $PROFILE; then
  for size in "${SIZES[@]}"; do
    agent_start
    id=$(agent_capture '{"interface":"vB","filter":"udp","reason":"other","subject":"profile","limits":{"max_duration":"10m","max_bytes":"90GiB"}}')
    sleep 1
    perf record -q -e cpu-clock -F 4999 -p "$AGENT_PID" -o "$SCRATCH/perf.data" -- sleep "$SECS" 2>/dev/null &
    perf_pid=$!
    blast "$SECS" "$SCRATCH/udp$size.cfg" "${RATE}pps"
    wait "$perf_pid" || true
    agent_capture_stop "$id" > /dev/null
    perf report -i "$SCRATCH/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
      > "$SCRATCH/report.txt" || true
    grep -v '^#' "$SCRATCH/report.txt" | grep -v '^$' | sed 's/ *$//' | head -40 > "$OUT/profile-$size.txt" || true
    agent_stop
    echo "profile of the agent at $RATE pps of $size-byte frames: bench/out/profile-$size.txt" >&2
  done
fi

python3 - "$CSV" "${BASELINE:-}" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
baseline = sys.argv[2]
cells = {}
for r in rows:
    cells.setdefault((int(r["size"]), r["tool"]), []).append(r)
base_head = f" pcap-agent {baseline} µs/packet | agent / {baseline} |" if baseline else ""
print(f"| frame | pcap-agent µs/packet |{base_head} tcpdump -w | tcpdump -s 1 -w | agent / tcpdump | lost (agent, tcpdump) |")
print("|---|---|" + ("---|---|" if baseline else "") + "---|---|---|---|")
for size in sorted({k[0] for k in cells}):
    def med(tool):
        v = [float(r["us_per_packet"]) for r in cells.get((size, tool), [])]
        return statistics.median(v) if v else float("nan"), v
    a, av = med("pcap-agent"); t, tv = med("tcpdump"); s, _ = med("tcpdump-s1")
    if not av or not tv:
        continue
    lost = lambda tool: sum(int(r["lost"]) for r in cells.get((size, tool), []))
    base = ""
    if baseline:
        b, bv = med("pcap-agent-baseline")
        base = f" {b:.2f} [{min(bv):.2f}–{max(bv):.2f}] | **{a / b:.2f}x** |" if bv else " – | – |"
    print(f"| {size} B | {a:.2f} [{min(av):.2f}–{max(av):.2f}] |{base} {t:.2f} [{min(tv):.2f}–{max(tv):.2f}] | {s:.2f} | **{a / t:.2f}x** | {lost('pcap-agent')}, {lost('tcpdump')} |")
EOF
