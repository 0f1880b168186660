#!/usr/bin/env bash
# The web console at fleet scale, on a real s3s-fs on loopback, in one run:
#
#   1. The devices page with DEVICES devices (default 10,000): time to first byte and size of
#      the HTML of PAGES page loads (pages, sorts and filters) once the background listing is
#      done, and how long that first listing took.
#   2. The download of a capture of CAPTURE_MIB MiB (default 1024, in 64 MiB segments,
#      encrypted with the age CLI to the research recipient): `pcap-portal captures fetch`
#      against the console's `capture.pcap` (every segment decrypted and joined), each run
#      RUNS times, with the peak resident memory of each.
#
# As bench/fleet.sh, it runs in a network namespace whose loopback has `quickack` (s3s-fs
# does not set TCP_NODELAY).
#
#   sudo bench/console.sh    # DEVICES=10000 PAGES=30 CAPTURE_MIB=1024 RUNS=3
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
NS=pa-console-bench
source bench/lib.sh

if [ "${PA_BENCH_IN_NS:-}" != 1 ]; then
  cargo build --release --locked --quiet --bins -p pcap-portal -p pcap-tests
  quickack_netns "$NS"
  trap 'ip netns del "$NS"' EXIT
  PA_BENCH_IN_NS=1 ip netns exec "$NS" "$0" "$@"
  exit
fi

DEVICES=${DEVICES:-10000}
PAGES=${PAGES:-30}
CAPTURE_MIB=${CAPTURE_MIB:-1024}
RUNS=${RUNS:-3}
BIN=$ROOT/target/release
S3FS=$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")
[ -x "$S3FS" ] || { echo "s3s-fs is missing: run scripts/setup" >&2; exit 1; }

WORK=$(mktemp -d /var/tmp/pa-console-bench.XXXXXX)
OUT=${OUT:-$ROOT/bench/out/console-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; }
REPORT=$OUT/report.txt
: > "$REPORT"

S3_PORT=$(free_port)
mkdir -p "$WORK/s3/captures"
"$S3FS" --host 127.0.0.1 --port "$S3_PORT" --access-key bench-access --secret-key bench-secret-key \
  "$WORK/s3" > /dev/null 2>&1 &
PIDS+=($!)
ENDPOINT="http://127.0.0.1:$S3_PORT"
wait_port "$S3_PORT"
printf 'access_key_id = "bench-access"\nsecret_access_key = "bench-secret-key"\n' > "$WORK/s3-credentials"
chmod 600 "$WORK/s3-credentials"
"$BIN/pcap-portal" keygen --out "$WORK/keys" > /dev/null
export PCAP_STORE=s3://captures/fleet PCAP_S3_ENDPOINT=$ENDPOINT PCAP_S3_PATH_STYLE=true
export PCAP_S3_CREDENTIALS=$WORK/s3-credentials PCAP_PORTAL_STATE=$WORK/portal
export PCAP_AUTHORIZATION_KEY=$WORK/keys/authorization.key PCAP_RESEARCH_IDENTITY=$WORK/keys/research.age

# 1. The devices page.
"$BIN/pcap-fleet-sim" populate --dir "$WORK" --endpoint "$ENDPOINT" --from 1 --to "$DEVICES"
PASSWORD="bench console password"
for who in alice:admin rita:research; do
  echo "$PASSWORD" | "$BIN/pcap-portal" users add "${who%%:*}" --role "${who#*:}" --password-stdin \
    --users "$WORK/users.json" > /dev/null
done
PORT=$(free_port)
"$BIN/pcap-portal" serve --listen "127.0.0.1:$PORT" --users "$WORK/users.json" 2> "$WORK/serve.log" &
SERVE=$!
PIDS+=($SERVE)
wait_port "$PORT"
URL=http://127.0.0.1:$PORT
login() {
  local token
  token=$(curl -s -c "$WORK/$1.jar" "$URL/login" | grep -o 'name="token" value="[0-9a-f]*"' | cut -d'"' -f4)
  curl -s -o /dev/null -b "$WORK/$1.jar" -c "$WORK/$1.jar" --data-urlencode "name=$1" \
    --data-urlencode "password=$PASSWORD" --data-urlencode "token=$token" "$URL/login"
}
login alice
# The first page waits for the first listing.
first=$(curl -s -o /dev/null -b "$WORK/alice.jar" -w '%{time_starttransfer}' "$URL/devices")
echo "devices $DEVICES first_listing_s $first" | tee -a "$REPORT"
paths=("/devices" "/devices?page=50" "/devices?sort=seen&desc=true" "/devices?q=fw-99"
  "/devices?sort=expires&page=99" "/devices?sort=name&desc=true&page=7")
for i in $(seq "$PAGES"); do
  path=${paths[$(( (i - 1) % ${#paths[@]} ))]}
  curl -s -o /dev/null -b "$WORK/alice.jar" -w "page %{time_starttransfer} %{size_download} $path\n" \
    "$URL$path" >> "$OUT/pages.txt"
done
python3 - "$OUT/pages.txt" <<'EOF' | tee -a "$REPORT"
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
ttfb = sorted(float(r[1]) for r in rows)
size = [int(r[2]) for r in rows]
p95 = ttfb[min(len(ttfb) - 1, int(len(ttfb) * 0.95))]
print(f"pages {len(rows)} ttfb_median_s {statistics.median(ttfb):.4f} ttfb_p95_s {p95:.4f} "
      f"ttfb_max_s {ttfb[-1]:.4f} html_max_kib {max(size) / 1024:.1f}")
EOF
echo "console_rss_after_pages_mib $(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$SERVE/status)" | tee -a "$REPORT"

# 2. A capture of CAPTURE_MIB MiB, written into s3s-fs's directory as the uploader leaves it.
SEG_MIB=64
SEGMENTS=$(( (CAPTURE_MIB + SEG_MIB - 1) / SEG_MIB ))
ID=$(python3 -c 'import uuid; print(uuid.uuid4())')
DIR=$WORK/s3/captures/fleet/captures/FLEET-00001/$ID
mkdir -p "$DIR"
# One 64 MiB pcap of 1514-byte frames, encrypted once per segment (age picks a new file key
# each time, so every segment is a distinct object).
python3 - "$WORK/seg.pcap" $(( SEG_MIB * 1024 * 1024 )) <<'EOF'
import struct, sys
out, size = sys.argv[1], int(sys.argv[2])
frame = bytes(range(256)) * 5 + bytes(1514 - 1280)
with open(out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    written, n = 24, 0
    while written + 16 + len(frame) <= size:
        f.write(struct.pack("<IIII", 1764547200 + n // 100000, n % 100000, len(frame), len(frame)))
        f.write(frame)
        written += 16 + len(frame)
        n += 1
EOF
RECIPIENT=$(cat "$WORK/keys/research.age.pub")
files=()
for seq in $(seq "$SEGMENTS"); do
  name=$(printf '%06d.pcap.age' "$seq")
  age -r "$RECIPIENT" -o "$DIR/$name" "$WORK/seg.pcap"
  files+=("$name")
done
python3 - "$DIR" "$ID" "$(stat -c %s "$WORK/seg.pcap")" "${files[@]}" <<'EOF'
import hashlib, json, os, sys
d, cid, plain, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
files = [{"name": n, "state": "uploaded", "size": os.path.getsize(f"{d}/{n}"), "sha256": sha(f"{d}/{n}")} for n in names]
m = {"schema": "1.0", "capture_id": cid, "serial": "FLEET-00001", "agent_version": "0.1.0",
     "origin": "remote", "request": {"interface": "eth0", "reason": "other"},
     "interface": "eth0", "effective_filter": "", "link_type": "EN10MB",
     "limits": {"max_duration": "1h", "snaplen": 65535},
     "started_at": "2026-12-01T00:00:00Z", "ended_at": "2026-12-01T00:10:00Z", "state": "stopped",
     "stop_reason": "duration",
     "stats": {"received": 0, "written": 0, "bytes_written": 0, "dropped_rate_limit": 0,
               "dropped_kernel": 0, "dropped_interface": 0, "segments": len(names)},
     "segments": [{"seq": i + 1, "name": n, "packets": 0, "plaintext_bytes": plain} for i, n in enumerate(names)],
     "segments_lost": 0, "files": files, "completed_at": "2026-12-01T00:10:01Z"}
with open(f"{d}/manifest.json", "w") as f:
    json.dump(m, f)
EOF
rm -f "$WORK/seg.pcap"
BYTES=$(du -cb "$DIR"/*.age | tail -1 | cut -f1)
login rita
peak() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
for run in $(seq "$RUNS"); do
  rm -rf "$WORK/fetched" "$WORK/download.pcap"
  /usr/bin/time -f '%e %M' -o "$WORK/fetch.time" \
    "$BIN/pcap-portal" captures fetch "FLEET-00001/$ID" --out "$WORK/fetched" > /dev/null 2>&1
  read -r secs kib < "$WORK/fetch.time"
  echo "fetch run $run bytes $BYTES seconds $secs mib_s $(echo "scale=1; $BYTES / 1048576 / $secs" | bc) peak_rss_mib $(echo "scale=1; $kib / 1024" | bc)" | tee -a "$REPORT"
  rm -rf "$WORK/fetched"
  # The console's memory before (its high-water mark is reset between runs by restarting it).
  kill "$SERVE"; wait "$SERVE" 2>/dev/null || true
  "$BIN/pcap-portal" serve --listen "127.0.0.1:$PORT" --users "$WORK/users.json" 2>> "$WORK/serve.log" &
  SERVE=$!
  PIDS+=($SERVE)
  wait_port "$PORT"
  login rita
  before=$(peak "$SERVE")
  result=$(curl -s -o "$WORK/download.pcap" -b "$WORK/rita.jar" -w '%{http_code} %{time_total} %{size_download}' \
    "$URL/captures/FLEET-00001/$ID/capture.pcap")
  read -r code secs size <<< "$result"
  [ "$code" = 200 ] || { echo "download failed: $result" >&2; exit 1; }
  echo "console run $run bytes $BYTES seconds $secs mib_s $(echo "scale=1; $BYTES / 1048576 / $secs" | bc) plain_bytes $size peak_rss_mib_before $before peak_rss_mib $(peak "$SERVE")" | tee -a "$REPORT"
  rm -f "$WORK/download.pcap"
done
python3 - "$REPORT" <<'EOF' | tee -a "$REPORT"
import statistics, sys
runs = {"fetch": [], "console": []}
for line in open(sys.argv[1]):
    w = line.split()
    if w and w[0] in runs and w[1] == "run":
        runs[w[0]].append(float(w[w.index("mib_s") + 1]))
f, c = statistics.median(runs["fetch"]), statistics.median(runs["console"])
print(f"download median fetch {f:.1f} MiB/s console {c:.1f} MiB/s ratio {c / f:.2f}")
EOF
echo "raw figures in $OUT"
