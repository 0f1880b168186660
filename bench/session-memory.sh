#!/usr/bin/env bash
# What sessions cost in memory: the peak RSS of `pcap-agent analyze` over crafted flows that
# stay inspecting (bench/mkflood.py: a SYN, a 6,000-byte request head that never ends, four
# out-of-order segments past a hole), per session, against a file of one such flow (the
# program's own footprint); analyze's table holds them all (its budget is 1 GiB), so this is
# the real cost of an inspected session, allocator included.
#
#   bench/session-memory.sh [--flows N]
#   BASELINE=REV bench/session-memory.sh   # and pcap-agent of REV (built beside), same files
#
# The agent's bound under such a flood (RSS within [sessions] max_bytes and a constant) is
# tested live in tests/tests/sessions.rs; this measures the cost that bound is made of.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
FLOWS=20000
ARGS="$*"
[ "${1:-}" = --flows ] && FLOWS=$2
bench_prepare
./mkflood.py "$OUT/flood-1.pcap" --flows 1
./mkflood.py "$OUT/flood.pcap" --flows "$FLOWS"
AGENTS=("pcap-agent=$BIN/pcap-agent")
[ -n "${BASELINE:-}" ] && AGENTS+=("pcap-agent $BASELINE=$(baseline_bin "$BASELINE" pcap-agent)")

peak_kib() { /usr/bin/time -f %M "$1" analyze "$2" 2>&1 >/dev/null | tail -1; }
{
  echo "Peak RSS of \`pcap-agent analyze\` (GNU time's maximum resident set), $FLOWS crafted flows"
  echo "that stay inspecting, against a file of one; per session = the difference / $FLOWS."
  echo
  echo "| agent | one flow KiB | $FLOWS flows KiB | per session KiB |"
  echo "|---|---|---|---|"
  for entry in "${AGENTS[@]}"; do
    name=${entry%%=*} bin=${entry#*=}
    one=$(peak_kib "$bin" "$OUT/flood-1.pcap")
    all=$(peak_kib "$bin" "$OUT/flood.pcap")
    per=$(echo "scale=1; ($all - $one) / $FLOWS" | bc)
    echo "| $name | $one | $all | **$per** |"
  done
} | "$ROOT/bench/section.py" session-memory "$ROOT/bench/README.md" "${BASELINE:+BASELINE=$BASELINE }bench/session-memory.sh${ARGS:+ $ARGS}"
