#!/usr/bin/env bash
# The fleet: what a portal listing, the store channel and the doorbell cost with thousands of
# devices, on a real s3s-fs (logging every request it serves, so requests are counted by the
# server, not by the client) and a real Mosquitto, both on loopback, in one run:
#
#   1. `pcap-portal devices list` at 1,000 and 10,000 devices: time and store requests, for the
#      sequential listing (one request at a time, no cache: the request pattern of the listing
#      before the fleet work), the concurrent listing with an empty cache, and again with the
#      cache warm (nothing changed).
#   2. Store requests per device per day by operation, with and without the doorbell, from an
#      idle fleet of simulated agents (pcap-fleet-sim: the agent's own authority, request feed,
#      heartbeat and doorbell code) with time running faster (every interval divided by a factor),
#      priced at S3 Standard's request prices.
#   3. Request -> accepted and revocation -> revoked latency, p50/p99, over LATENCY_DEVICES
#      simulated agents, with and without the doorbell, at the default intervals.
#   4. Resident memory of a real pcap-agent with its doorbell connected and without one.
#
# Everything runs in a network namespace of its own whose loopback routes have `quickack`:
# s3s-fs does not set TCP_NODELAY, so against Linux's delayed ACKs each small GET on a kept-alive
# connection waits 40 ms for its body, which no real S3 endpoint does (it would make any
# listing, sequential or not, measure the test server's sockets).
#
#   sudo bench/fleet.sh    # LATENCY_DEVICES=1000 IDLE_DEVICES=50 IDLE_SECONDS=240 LIST_SIZES="1000 10000"
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
NS=pa-fleet-bench

if [ "${PA_FLEET_IN_NS:-}" != 1 ]; then
  cargo build --release --locked --quiet --bins -p pcap-agent -p pcap-portal -p pcap-tests
  source bench/lib.sh
  quickack_netns "$NS"
  trap 'ip netns del "$NS"' EXIT
  PA_FLEET_IN_NS=1 ip netns exec "$NS" "$0" "$@"
  exit
fi

LATENCY_DEVICES=${LATENCY_DEVICES:-1000}
IDLE_DEVICES=${IDLE_DEVICES:-50}
IDLE_SECONDS=${IDLE_SECONDS:-240}
LIST_SIZES=${LIST_SIZES:-"1000 10000"}
# S3 Standard (us-east-1) request prices, USD per 1,000 requests.
PRICE_PUT_LIST=0.005
PRICE_GET=0.0004

BIN=$ROOT/target/release
S3FS=$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")
[ -x "$S3FS" ] || { echo "s3s-fs is missing: run scripts/setup" >&2; exit 1; }
command -v mosquitto >/dev/null || { echo "mosquitto is missing: run scripts/setup" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /var/tmp/pa-fleet-bench.XXXXXX)
OUT=${OUT:-$ROOT/bench/out/fleet-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The store, logging each request it routes.
S3_PORT=$(free_port)
mkdir -p "$WORK/s3/captures"
RUST_LOG=s3s::ops=debug "$S3FS" --host 127.0.0.1 --port "$S3_PORT" \
  --access-key fleet-access --secret-key fleet-secret-key "$WORK/s3" > "$WORK/s3.log" 2>&1 &
PIDS+=($!)
ENDPOINT="http://127.0.0.1:$S3_PORT"
# The same store, unlogged, where requests wait as for a remote store (see above).
SLOW_PORT=$(free_port)
"$S3FS" --host 127.0.0.2 --port "$SLOW_PORT" \
  --access-key fleet-access --secret-key fleet-secret-key "$WORK/s3" > /dev/null 2>&1 &
PIDS+=($!)
printf 'access_key_id = "fleet-access"\nsecret_access_key = "fleet-secret-key"\n' > "$WORK/s3-credentials"
chmod 600 "$WORK/s3-credentials"

# The broker (anonymous on loopback here; the ACL a production broker needs is in the README
# and in the tests).
MQTT_PORT=$(free_port)
printf 'user root\nlistener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n' \
  "$MQTT_PORT" > "$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" > "$WORK/mosquitto.log" 2>&1 &
PIDS+=($!)
BROKER="mqtt://127.0.0.1:$MQTT_PORT"
for _ in $(seq 50); do
  curl -s -o /dev/null "$ENDPOINT/" && (exec 3<>"/dev/tcp/127.0.0.1/$MQTT_PORT") 2>/dev/null && break
  sleep 0.1
done

"$BIN/pcap-portal" keygen --out "$WORK/keys" > /dev/null
export PCAP_STORE=s3://captures/fleet PCAP_S3_ENDPOINT=$ENDPOINT PCAP_S3_PATH_STYLE=true
export PCAP_S3_CREDENTIALS=$WORK/s3-credentials PCAP_PORTAL_STATE=$WORK/portal
export PCAP_AUTHORIZATION_KEY=$WORK/keys/authorization.key
SIM=("$BIN/pcap-fleet-sim")
sim() { "${SIM[@]}" "$1" --dir "$WORK" --endpoint "$ENDPOINT" "${@:2}"; }
served() { grep -c "resolved route" "$WORK/s3.log" || true; }

# 1. devices list.
REPORT="$OUT/report.txt"
: > "$REPORT"
listed=0
for n in $LIST_SIZES; do
  sim populate --from $((listed + 1)) --to "$n"
  listed=$n
  for mode in sequential concurrent warm; do
    case $mode in
      sequential) args=(--concurrency 1 --no-cache) ;;
      concurrent) args=(--no-cache) ;;
      warm) args=() ; "$BIN/pcap-portal" devices list > /dev/null ;;   # fills the cache
    esac
    before=$(served)
    start=$(date +%s.%N)
    rows=$("$BIN/pcap-portal" "${args[@]}" devices list | tail -n +2 | wc -l)
    end=$(date +%s.%N)
    after=$(served)
    echo "list $n $mode $(echo "$end - $start" | bc) $((after - before)) $rows" | tee -a "$REPORT"
  done
  # With a round trip per request, at the first size only (sequentially it takes minutes).
  if [ "$n" = "${LIST_SIZES%% *}" ]; then
    for mode in sequential concurrent; do
      case $mode in
        sequential) args=(--concurrency 1 --no-cache) ;;
        concurrent) args=(--no-cache) ;;
      esac
      start=$(date +%s.%N)
      rows=$(PCAP_S3_ENDPOINT=http://127.0.0.2:$SLOW_PORT "$BIN/pcap-portal" "${args[@]}" devices list | tail -n +2 | wc -l)
      end=$(date +%s.%N)
      echo "slowlist $n $mode $(echo "$end - $start" | bc) - $rows" | tee -a "$REPORT"
    done
  fi
done

# 2. Requests per device per day, idle, with and without the doorbell.
# Each run starts from a fresh store and fresh devices: no request or ledger left over.
fresh() {
  rm -rf "$WORK/sim" "$WORK/s3/captures/fleet"
  sim populate --from 1 --to "$1" > /dev/null
}

# Time runs SCALE times faster: 10x without a doorbell (30 s polls become 3 s, still three
# of the feed's 1 s ticks), 60x with it (15-minute polls become 15 s, the hourly heartbeat 60 s).
for bell in without with; do
  fresh "$IDLE_DEVICES"
  if [ $bell = with ]; then scale=60; else scale=10; fi
  args=(--devices "$IDLE_DEVICES" --scale $scale --seconds "$IDLE_SECONDS" --s3-log "$WORK/s3.log")
  [ $bell = with ] && args+=(--doorbell "$BROKER")
  sim requests "${args[@]}" | sed "s/^/requests $bell $scale /" | tee -a "$REPORT"
done

# 3. Latency.
for bell in without with; do
  fresh "$LATENCY_DEVICES"
  args=(--devices "$LATENCY_DEVICES")
  [ $bell = with ] && args+=(--doorbell "$BROKER")
  sim latency "${args[@]}" | sed "s/^/latency $bell /" | tee -a "$REPORT"
done

# 4. A real agent's memory, with and without its doorbell, after 20 s idle.
agent_rss() {
  local name=$1 doorbell=$2 dir=$WORK/agent-$1
  mkdir -p "$dir"
  cat > "$dir/agent.toml" <<TOML
[device]
serial = "MEM-$name"
[authorization]
source = "store"
verify_key = "$WORK/keys/authorization.pub"
[requests]
verify_key = "$WORK/keys/request.pub"
[upload]
store = "s3://captures/fleet"
recipients = ["$(cat "$WORK/keys/research.age.pub")"]
[upload.s3]
endpoint = "$ENDPOINT"
path_style = true
credentials_file = "$WORK/s3-credentials"
[control]
socket = "$dir/control.sock"
[paths]
state_dir = "$dir/state"
spool_dir = "$dir/spool"
[capture]
interfaces = ["lo"]
$doorbell
TOML
  "$BIN/pcap-agent" run --config "$dir/agent.toml" > "$dir/log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  sleep 20
  echo "memory $name $(awk '/VmRSS/ {print $2}' /proc/$pid/status) $(awk '/VmHWM/ {print $2}' /proc/$pid/status)" | tee -a "$REPORT"
  kill "$pid"
}
agent_rss without ""
agent_rss with "[doorbell]
url = \"$BROKER\""

python3 bench/report-fleet.py "$REPORT" "$PRICE_PUT_LIST" "$PRICE_GET" "$IDLE_SECONDS" "$IDLE_DEVICES" "$LATENCY_DEVICES" \
  | "$ROOT/bench/section.py" fleet "$ROOT/bench/README.md" "sudo bench/fleet.sh"
