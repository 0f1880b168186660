#!/usr/bin/env bash
# Capture benchmark: pcap-agent against tcpdump -w and dumpcap -w on the same veth traffic
# (trafgen, 64/512/1514-byte UDP frames). Needs root. The iperf3 disturbance is bench/iperf.sh.
#
#   bench/capture.sh [--runs N] [--secs S] [--sizes "64 512 1514"] [--quick] [--vxlan]
#                    [--ladder "150000 140000 ..."] [--tools "pcap-agent pcap-agent-vxlan"]
#
# --vxlan: the agent on VXLAN carrier frames (UDP 4789, VNI 5001, around the plain frames 50 bytes
# shorter) against the agent on plain frames of the same size on the wire, with tcpdump on the
# carrier beside them, and the agent scoped to the VNI with a filter on the frames inside
# (`"tunnel": {"kind": "vxlan", "id": 5001}, "filter": "udp dst port 9"`); also the CPU cost of
# each at a paced 100 kpps. Into the capture-vxlan
# section and bench/out/capture-vxlan.csv.
#
# Zero-drop rate: each tool first takes the unpaced generator; if it loses packets, the offered
# rate steps down LADDER until a run loses none.
#
# Writes the tables into bench/README.md (between the capture markers) and the raw rows into
# bench/out/capture.csv. The generator runs on CPU 0 and every capture tool on CPU 1 (the
# "A" setup of BASELINE.md), one tool at a time, with a 64 MiB kernel buffer each.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh

RUNS=3
SECS=10
# After a run at full speed with drops, the rate steps down this ladder until nothing is lost.
LADDER=(250000 225000 200000 175000 150000 125000 100000 75000 50000)
SIZES=(64 512 1514)
VXLAN=0
# The paced rate of the CPU-cost rows in --vxlan mode.
PACED=100000
ARGS="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --sizes) read -r -a SIZES <<<"$2"; shift 2 ;;
    --quick) RUNS=1; SECS=4; LADDER=(250000 200000 150000 100000); shift ;;
    --vxlan) VXLAN=1; shift ;;
    --ladder) read -r -a LADDER <<<"$2"; shift 2 ;;
    --tools) read -r -a ONLY <<<"$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--secs S] [--sizes \"64 512 1514\"] [--quick] [--vxlan] [--ladder \"RATES\"] [--tools \"TOOLS\"]" >&2; exit 64 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench/capture.sh needs root (network namespaces, raw capture)" >&2; exit 1; }

bench_prepare trafgen=netsniff-ng tcpdump dumpcap=tshark jq curl
SCRATCH=$(mktemp -d /var/tmp/pa-bench-files.XXXXXX)
TOOLS=(pcap-agent tcpdump dumpcap)
SECTION=capture
if [ "$VXLAN" -eq 1 ]; then
  # The smallest carrier holds a 64-byte frame.
  [[ "$ARGS" == *--sizes* ]] || SIZES=(114 512 1514)
  TOOLS=(pcap-agent pcap-agent-vxlan pcap-agent-scoped-vxlan tcpdump-vxlan)
  SECTION=capture-vxlan
fi
[ -n "${ONLY[*]:-}" ] && TOOLS=("${ONLY[@]}")
CSV="$OUT/$SECTION.csv"
# A run of some tools keeps its figures apart from the full run's.
[[ "$ARGS" == *--tools* ]] && CSV="$OUT/$SECTION-partial.csv" && SECTION="$SECTION-partial"
echo "tool,size,rate,run,delivered,captured,kernel_drops,cpu_ticks,secs,rss_kib" > "$CSV"
cleanup() { agent_stop; pkill -P $$ 2>/dev/null || true; net_down; rm -rf "$SCRATCH"; }
trap cleanup EXIT
net_up

# Runs one measurement: tool $1, frame size $2, rate $3 (0: unlimited), run number $4.
measure() {
  local tool=$1 size=$2 rate=$3 run=$4 pid id="" err="$SCRATCH/err"
  local cfg="$SCRATCH/udp$size.cfg"
  [[ "$tool" == *-vxlan ]] && cfg="$SCRATCH/vxlan$size.cfg"
  case "${tool%-vxlan}" in
    tcpdump)
      ip netns exec "$NS_B" taskset -c 1 tcpdump -i vB -w "$SCRATCH/x.pcap" -B 65536 -s 0 -n udp 2>"$err" &
      pid=$! ;;
    dumpcap)
      ip netns exec "$NS_B" taskset -c 1 dumpcap -q -i vB -w "$SCRATCH/x.pcapng" -B 64 -s 262144 -f udp 2>"$err" &
      pid=$! ;;
    pcap-agent)
      pid=$AGENT_PID
      id=$(agent_capture '{"interface":"vB","filter":"udp","reason":"other","subject":"benchmark","limits":{"max_duration":"10m","max_bytes":"90GiB"}}') ;;
    pcap-agent-scoped)
      # Scoped to the VNI, with a filter on the frames inside it (run in the agent).
      pid=$AGENT_PID
      id=$(agent_capture '{"interface":"vB","tunnel":{"kind":"vxlan","id":5001},"filter":"udp dst port 9","reason":"other","subject":"benchmark","limits":{"max_duration":"10m","max_bytes":"90GiB"}}') ;;
  esac
  sleep 1
  local a t0 b t1
  a=$(rx_packets); t0=$(cpu_ticks "$pid")
  if [ "$rate" -eq 0 ]; then blast "$SECS" "$cfg"; else blast "$SECS" "$cfg" "${rate}pps"; fi
  sleep 0.5
  b=$(rx_packets); t1=$(cpu_ticks "$pid")
  local captured drops rss
  case "${tool%-vxlan}" in
    tcpdump|dumpcap)
      rss=$(peak_rss_kib "$pid")
      kill -INT "$pid"; wait "$pid" 2>/dev/null || true
      if [ "${tool%-vxlan}" = tcpdump ]; then
        captured=$(awk '/packets captured/ {print $1}' "$err")
        drops=$(awk '/dropped by kernel/ {print $1}' "$err")
      else
        captured=$(sed -n 's/.*Packets captured: \([0-9]*\).*/\1/p' "$err" | tail -1)
        drops=$(sed -n "s/.*Packets received\/dropped on interface '[^']*': [0-9]*\/\([0-9]*\).*/\1/p" "$err" | tail -1)
      fi
      rm -f "$SCRATCH"/x.pcap* ;;
    pcap-agent|pcap-agent-scoped)
      local record
      record=$(agent_capture_stop "$id")
      captured=$(jq .stats.written <<<"$record")
      drops=$(jq .stats.dropped_kernel <<<"$record")
      rss=$(peak_rss_kib "$pid")
      agent_capture_purge "$id" ;;
  esac
  echo "$tool,$size,$rate,$run,$((b - a)),${captured:-0},${drops:-0},$((t1 - t0)),$SECS,${rss:-0}" >> "$CSV"
  # Two packets of slack: the link's own control traffic (none is expected with IPv6 off).
  local missing=$(( (b - a) - ${captured:-0} - 2 ))
  [ "$missing" -lt 0 ] && missing=0
  LAST_LOST=$(( missing + ${drops:-0} ))
}

for size in "${SIZES[@]}"; do
  trafgen_cfg "$size" "$SCRATCH/udp$size.cfg"
  trafgen_cfg_vxlan "$size" "$SCRATCH/vxlan$size.cfg"
  for run in $(seq "$RUNS"); do
    for tool in "${TOOLS[@]}"; do
      [[ "$tool" == pcap-agent* ]] && agent_start
      echo "capture: size $size run $run $tool unpaced" >&2
      measure "$tool" "$size" 0 "$run"
      for rate in "${LADDER[@]}"; do
        [ "$LAST_LOST" -gt 0 ] || break
        echo "capture: size $size run $run $tool at $rate pps" >&2
        measure "$tool" "$size" "$rate" "$run"
      done
      if [ "$VXLAN" -eq 1 ]; then
        echo "capture: size $size run $run $tool at $PACED pps (CPU cost)" >&2
        measure "$tool" "$size" "$PACED" "$run"
      fi
      [[ "$tool" == pcap-agent* ]] && agent_stop
    done
  done
done

if [ "$VXLAN" -eq 1 ]; then
  "$ROOT/bench/report-capture.py" "$CSV" "$RUNS" "$SECS" --vxlan "$PACED" |
    "$ROOT/bench/section.py" "$SECTION" "$ROOT/bench/README.md" "sudo bench/capture.sh${ARGS:+ $ARGS}"
else
  "$ROOT/bench/report-capture.py" "$CSV" "$RUNS" "$SECS" |
    "$ROOT/bench/section.py" "$SECTION" "$ROOT/bench/README.md" "sudo bench/capture.sh${ARGS:+ $ARGS}"
  python3 -c "import matplotlib" 2>/dev/null || pip install -q matplotlib
  python3 "$ROOT/bench/plot-capture.py" "$CSV" "$ROOT/bench/capture-rate.png"
fi
echo "bench/README.md updated" >&2
