# Shared helpers of the benchmark scripts: the test network, traffic, process accounting and
# an agent running inside the capture namespace. Sourced, not run.
# Topology (as in BASELINE.md): netns ${NS_A} (vA 10.77.0.1) <-veth-> netns ${NS_B} (vB 10.77.0.2),
# static neighbour entries; UDP goes to a port with no listener.

NS_A="pa-bench-a"
NS_B="pa-bench-b"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/release"
HZ=$(getconf CLK_TCK)

# Installs what is missing of the tools $@ (COMMAND, or COMMAND=DEBIAN_PACKAGE), builds the
# release binaries and creates the raw-figures directory $OUT (bench/out).
bench_prepare() {
  local missing=() spec
  for spec in "$@"; do
    command -v "${spec%%=*}" >/dev/null || missing+=("${spec#*=}")
  done
  [ ${#missing[@]} -eq 0 ] || apt-get install -y -qq "${missing[@]}" >/dev/null
  (cd "$ROOT" && cargo build --release --locked --bins --quiet)
  OUT="$ROOT/bench/out"
  mkdir -p "$OUT"
}

# baseline_bin REV BIN: the release binary BIN built from revision REV (git archive into
# target/baseline-src-REV, built into target/baseline), for a before/after in one run.
baseline_bin() {
  local rev=$1 bin=$2 src="$ROOT/target/baseline-src-$1"
  if [ ! -d "$src" ]; then
    mkdir -p "$src"
    (cd "$ROOT" && git archive "$rev") | tar -x -C "$src"
  fi
  (cd "$src" && CARGO_TARGET_DIR="$ROOT/target/baseline-$rev" cargo build --release --locked --quiet --bin "$bin")
  echo "$ROOT/target/baseline-$rev/release/$bin"
}

net_up() {
  net_down
  ip netns add "$NS_A"
  ip netns add "$NS_B"
  # No IPv6 on the test link: neighbour discovery would add packets nobody sent.
  for ns in "$NS_A" "$NS_B"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  ip link add vA netns "$NS_A" type veth peer name vB netns "$NS_B"
  ip -n "$NS_A" link set vA address 00:00:00:00:00:01
  ip -n "$NS_B" link set vB address 00:00:00:00:00:02
  ip -n "$NS_A" addr add 10.77.0.1/24 dev vA
  ip -n "$NS_B" addr add 10.77.0.2/24 dev vB
  for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
  ip -n "$NS_A" link set vA up
  ip -n "$NS_B" link set vB up
  ip -n "$NS_A" neigh replace 10.77.0.2 lladdr 00:00:00:00:00:02 dev vA nud permanent
  ip -n "$NS_B" neigh replace 10.77.0.1 lladdr 00:00:00:00:00:01 dev vB nud permanent
}

net_down() {
  ip netns del "$NS_A" 2>/dev/null || true
  ip netns del "$NS_B" 2>/dev/null || true
}

# trafgen config for UDP frames of $1 bytes (without FCS) in file $2.
trafgen_cfg() {
  local size=$1 out=$2
  local fill=$((size - 42))
  cat > "$out" <<CFG
{
  eth(da=00:00:00:00:00:02, sa=00:00:00:00:00:01, type=0x0800),
  ipv4(saddr=10.77.0.1, daddr=10.77.0.2, ttl=64, proto=17),
  udp(sp=4000, dp=9),
  fill(0x41, $fill),
}
CFG
}

# trafgen config for VXLAN carrier frames of $1 bytes in file $2: UDP to 4789, VNI 5001, around
# an Ethernet/IPv4/UDP frame of $1 - 50 bytes (the frames of trafgen_cfg, 50 bytes shorter).
trafgen_cfg_vxlan() {
  local size=$1 out=$2
  local inner=$((size - 50))
  local fill=$((inner - 42))
  local ip_len=$((inner - 14)) udp_len=$((inner - 34))
  # The inner IPv4 header's checksum: 10.88.0.1 -> 10.88.0.2, UDP, TTL 64, id 0, DF clear.
  local sum=$((0x4500 + ip_len + 0x4011 + 0x0a58 + 0x0001 + 0x0a58 + 0x0002))
  sum=$(( (sum & 0xffff) + (sum >> 16) )); sum=$(( (sum & 0xffff) + (sum >> 16) ))
  local csum=$(( ~sum & 0xffff ))
  b16() { printf '0x%02x, 0x%02x' $(($1 >> 8)) $(($1 & 0xff)); }
  cat > "$out" <<CFG
{
  eth(da=00:00:00:00:00:02, sa=00:00:00:00:00:01, type=0x0800),
  ipv4(saddr=10.77.0.1, daddr=10.77.0.2, ttl=64, proto=17),
  udp(sp=4000, dp=4789),
  0x08, 0x00, 0x00, 0x00, 0x00, 0x13, 0x89, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11, 0x08, 0x00,
  0x45, 0x00, $(b16 $ip_len), 0x00, 0x00, 0x00, 0x00, 0x40, 0x11, $(b16 $csum),
  0x0a, 0x58, 0x00, 0x01, 0x0a, 0x58, 0x00, 0x02,
  0x0f, 0xa0, 0x00, 0x09, $(b16 $udp_len), 0x00, 0x00,
  fill(0x41, $fill),
}
CFG
}

rx_packets() { ip netns exec "$NS_B" cat /sys/class/net/vB/statistics/rx_packets; }

# CPU ticks (user+system, all threads) of process $1.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Peak resident memory of process $1, in KiB.
peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Sends for $1 seconds: trafgen pinned to CPU 0, config $2, optional rate $3 (e.g. 100000pps).
blast() {
  local secs=$1 cfg=$2 rate=${3:-}
  local args=(--no-sock-mem --dev vA --conf "$cfg" --cpus 1 -q)
  [ -n "$rate" ] && args+=(-b "$rate")
  timeout "$secs" ip netns exec "$NS_A" taskset -c 0 trafgen "${args[@]}" >/dev/null 2>&1 || true
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print 0} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'; }
minmax() { sort -n | awk 'NR==1{min=$1} {max=$1} END {printf "%s–%s", min, max}'; }

# --- pcap-agent inside the capture namespace -------------------------------------------------

AGENT_DIR=""
AGENT_PID=""

# Starts the agent in the capture namespace, pinned to CPU 1 unless $1 is "unpinned".
agent_start() {
  local pin=(taskset -c 1)
  [ "${1:-}" = unpinned ] && pin=()
  AGENT_DIR=$(mktemp -d /var/tmp/pa-bench.XXXXXX)
  "$BIN/pcap-portal" keygen --out "$AGENT_DIR/keys" >/dev/null
  PCAP_STORE="file://$AGENT_DIR/store" PCAP_AUTHORIZATION_KEY="$AGENT_DIR/keys/authorization.key" \
    "$BIN/pcap-portal" authorize BENCH-1 --period 1m --allow-unseen >/dev/null
  cat > "$AGENT_DIR/agent.toml" <<TOML
[device]
serial = "BENCH-1"
[authorization]
source = "file://$AGENT_DIR/store/devices/BENCH-1/grant.json"
verify_key = "$AGENT_DIR/keys/authorization.pub"
[upload]
store = "file://$AGENT_DIR/store"
recipients = ["$(cat "$AGENT_DIR/keys/research.age.pub")"]
[control]
socket = "$AGENT_DIR/control.sock"
[paths]
state_dir = "$AGENT_DIR/state"
spool_dir = "$AGENT_DIR/spool"
[capture]
interfaces = ["vB"]
max_concurrent = 8
buffer_size = "64MiB"
rotate_size = "64MiB"
[capture.ceilings]
max_duration = "1h"
max_packets = 1000000000
max_bytes = "100GiB"
max_pps = 100000000
max_bps = "100GiB"
[logging]
level = "warn"
TOML
  # AGENT_BIN: another build of the agent (a baseline's), same config.
  ip netns exec "$NS_B" "${pin[@]}" "${AGENT_BIN:-$BIN/pcap-agent}" run --config "$AGENT_DIR/agent.toml" 2>"$AGENT_DIR/agent.log" &
  AGENT_PID=$!
  for _ in $(seq 100); do [ -S "$AGENT_DIR/control.sock" ] && break; sleep 0.05; done
}

agent_stop() {
  [ -n "$AGENT_PID" ] && kill -TERM "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
  AGENT_PID=""
  [ -n "$AGENT_DIR" ] && rm -rf "$AGENT_DIR"
  AGENT_DIR=""
}

# POSTs capture request JSON $1; prints the capture id.
agent_capture() {
  curl -sS --unix-socket "$AGENT_DIR/control.sock" -X POST -d "$1" http://localhost/v1/captures | jq -r .id
}

# Stops capture $1 and prints its final record.
agent_capture_stop() {
  curl -sS --unix-socket "$AGENT_DIR/control.sock" -X DELETE "http://localhost/v1/captures/$1"
}

# Removes the sealed segments of capture $1 (the benchmark has no uploader to do it).
agent_capture_purge() { rm -rf "$AGENT_DIR/spool/$1"; }

# Creates the network namespace $1 whose loopback routes have `quickack`: s3s-fs does not set
# TCP_NODELAY, so against Linux's delayed ACKs each small GET on a kept-alive connection would
# wait 40 ms for its body, which no real S3 endpoint does. 127.0.0.2 keeps delayed ACKs: there
# each small GET waits about 40 ms, as a request to a remote store waits for its round trip.
quickack_netns() {
  ip netns del "$1" 2>/dev/null || true
  ip netns add "$1"
  ip -n "$1" link set lo up
  local route
  for route in 127.0.0.0/8 127.0.0.1; do
    ip -n "$1" route replace local "$route" dev lo proto kernel scope host src 127.0.0.1 table local quickack 1
  done
  ip -n "$1" route replace local 127.0.0.2 dev lo proto kernel scope host src 127.0.0.1 table local
}
