#!/usr/bin/env bash
# Every benchmark of bench/README.md in one go, each writing its own section or printing its
# tables: capture fidelity and CPU against tcpdump and dumpcap (with the plots), the iperf3
# disturbance, session extraction against tshark, encrypt+upload against age and curl, and
# scaling (concurrent captures, flow table, memory over time). Each script sets up its own
# network namespaces and veth pair and removes them. Needs root; about 45 minutes.
#
#   sudo bench/run.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")"
[ "$(id -u)" -eq 0 ] || { echo "bench/run.sh needs root (network namespaces, raw capture)" >&2; exit 1; }
quick=""
[ "${1:-}" = --quick ] && quick=1
OUT=out
mkdir -p "$OUT"
if [ -n "$quick" ]; then
  ./capture.sh --quick
  ./iperf.sh --runs 2
  ./analyze.sh --runs 1
  SIZE_MIB=64 RUNS=1 DAEMON_MIB=128 ./upload.sh
  RUNS=1 SECS=3 LONG_SECS=20 ./scaling.sh
else
  ./capture.sh
  ./iperf.sh
  ./analyze.sh
  ./upload.sh
  ./scaling.sh
fi
echo "bench/README.md holds the tables of this run (each under the date, commit and command that made it)" >&2
