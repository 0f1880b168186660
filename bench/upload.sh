#!/usr/bin/env bash
# Encrypt-and-upload throughput and memory, against the tools a user would otherwise combine:
#   age     the age CLI encrypting the file to disk (encryption alone, no upload)
#   curl    curl -T of the plain file to the same S3 server (upload alone, no encryption;
#           UNSIGNED-PAYLOAD, so the server checks nothing)
#   curl+sha  sha256sum, then curl -T with the SHA-256 as a checksum the server verifies
#           (the integrity pcap-agent asks for)
#   agent   pcap-agent's spool writer (age encryption, O_DIRECT, SHA-256 at sealing) then its
#           uploader (multipart, 8 MiB parts, SHA-256 checksums the server verifies)
# on one file of random bytes, all to s3s-fs on loopback, in the same run, RUNS times each,
# interleaved. Then the agent daemon itself uploads a 1 GiB capture while its resident memory
# is sampled every 50 ms (target: flat, at most 64 MiB).
#
#   sudo bench/upload.sh            # SIZE_MIB=512 RUNS=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

SIZE_MIB=${SIZE_MIB:-512}
RUNS=${RUNS:-3}
DAEMON_MIB=${DAEMON_MIB:-1024}
OUT=${OUT:-bench/out/upload-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

cargo build --release --locked --quiet --bins -p pcap-agent -p pcap-portal
cargo build --release --locked --quiet -p pcap-uploader --example upload_bench
S3FS=$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")
[ -x "$S3FS" ] || { echo "s3s-fs is missing: run scripts/setup" >&2; exit 1; }

WORK=$(mktemp -d /var/tmp/pa-upload-bench.XXXXXX)
S3_PID=""
DAEMON=""
cleanup() {
  [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null
  [ -n "$S3_PID" ] && kill "$S3_PID" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

AK=bench-access
SK=bench-secret-key
PORT=$((20000 + RANDOM % 20000))
mkdir -p "$WORK/s3/bench"
"$S3FS" --host 127.0.0.1 --port "$PORT" --access-key "$AK" --secret-key "$SK" "$WORK/s3" >/dev/null 2>&1 &
S3_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.05; done
ENDPOINT="http://127.0.0.1:$PORT"
printf 'access_key_id = "%s"\nsecret_access_key = "%s"\n' "$AK" "$SK" > "$WORK/creds"
chmod 600 "$WORK/creds"

age-keygen -o "$WORK/id.txt" 2>/dev/null
RECIPIENT=$(age-keygen -y "$WORK/id.txt")
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$WORK/input.bin"
echo "input: $SIZE_MIB MiB of random bytes, $RUNS runs each, s3s-fs on $ENDPOINT"

# Wall seconds and peak RSS (KiB) of a command, as "seconds kib".
timed() { /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null; cat "$WORK/time"; }
s3_ticks() { awk '{print $14 + $15}' "/proc/$S3_PID/stat"; }

: > "$OUT/runs.tsv"
for run in $(seq "$RUNS"); do
  rm -f "$WORK/out.age"
  read -r s m < <(timed age -r "$RECIPIENT" -o "$WORK/out.age" "$WORK/input.bin")
  printf 'age\t%s\t%s\t0\n' "$s" "$m" >> "$OUT/runs.tsv"

  t0=$(s3_ticks)
  read -r s m < <(timed curl -sS --fail --aws-sigv4 "aws:amz:us-east-1:s3" -u "$AK:$SK" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$WORK/input.bin" "$ENDPOINT/bench/curl-$run")
  printf 'curl\t%s\t%s\t%s\n' "$s" "$m" "$(( $(s3_ticks) - t0 ))" >> "$OUT/runs.tsv"

  t0=$(s3_ticks)
  start=$(date +%s.%N)
  sha=$(sha256sum "$WORK/input.bin" | cut -d' ' -f1)
  b64=$(echo "$sha" | xxd -r -p | base64)
  read -r _ m < <(timed curl -sS --fail --aws-sigv4 "aws:amz:us-east-1:s3" -u "$AK:$SK" \
    -H "x-amz-content-sha256: $sha" -H "x-amz-checksum-sha256: $b64" \
    -T "$WORK/input.bin" "$ENDPOINT/bench/curlsha-$run")
  s=$(echo "$(date +%s.%N) - $start" | bc)
  printf 'curl+sha\t%.2f\t%s\t%s\n' "$s" "$m" "$(( $(s3_ticks) - t0 ))" >> "$OUT/runs.tsv"

  rm -rf "$WORK/spool" "$WORK/s3/bench/pa"
  t0=$(s3_ticks)
  seal=$("$ROOT/target/release/examples/upload_bench" seal "$WORK/spool" "$RECIPIENT" "$WORK/input.bin")
  up=$("$ROOT/target/release/examples/upload_bench" upload "$WORK/spool" "s3://bench/pa" "$ENDPOINT" "$WORK/creds")
  ticks=$(( $(s3_ticks) - t0 ))
  s=$(jq -n --argjson a "$seal" --argjson b "$up" '$a.seconds + $b.seconds')
  m=$(jq -n --argjson b "$up" '[$b.rss_peak_first_half_kib, $b.rss_peak_second_half_kib] | max')
  printf 'agent\t%s\t%s\t%s\n' "$s" "$m" "$ticks" >> "$OUT/runs.tsv"
  printf 'agent-seal\t%s\t0\t0\n' "$(jq -n --argjson a "$seal" '$a.seconds')" >> "$OUT/runs.tsv"
  printf 'agent-upload\t%s\t%s\t%s\n' "$(jq -n --argjson b "$up" '$b.seconds')" "$m" "$ticks" >> "$OUT/runs.tsv"
  # The agent's object decrypts to the input.
  obj=$(find "$WORK/s3/bench/pa" -name '000001.pcap.age')
  cmp <(age -d -i "$WORK/id.txt" "$obj") "$WORK/input.bin"
  echo "run $run done"
done

# --- the daemon uploading a 1 GiB capture -------------------------------------------------
D="$WORK/daemon"
mkdir -p "$D"
"$BIN/pcap-portal" keygen --out "$D/keys" >/dev/null
head -c "$((DAEMON_MIB << 20))" /dev/urandom > "$WORK/big.bin"
rm -f "$WORK/input.bin" "$WORK/out.age"
"$ROOT/target/release/examples/upload_bench" seal "$D/spool" "$(cat "$D/keys/research.age.pub")" "$WORK/big.bin" >/dev/null
rm -f "$WORK/big.bin"
cat > "$D/agent.toml" <<TOML
[device]
serial = "BENCH"
[authorization]
source = "file://$D/grant.json"
verify_key = "$D/keys/authorization.pub"
[upload]
store = "s3://bench/daemon"
recipients = ["$(cat "$D/keys/research.age.pub")"]
[upload.s3]
endpoint = "$ENDPOINT"
path_style = true
credentials_file = "$WORK/creds"
[control]
socket = "$D/control.sock"
[paths]
state_dir = "$D/state"
spool_dir = "$D/spool"
[capture]
interfaces = ["lo"]
[logging]
level = "warn"
TOML
"$BIN/pcap-agent" run --config "$D/agent.toml" 2>"$D/agent.log" &
DAEMON=$!
start=$(date +%s.%N)
: > "$OUT/daemon-rss.tsv"
uploaded=""
for _ in $(seq 12000); do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$DAEMON/status" 2>/dev/null || echo 0)
  printf '%s\t%s\n' "$(echo "$(date +%s.%N) - $start" | bc)" "$rss" >> "$OUT/daemon-rss.tsv"
  if [ -S "$D/control.sock" ]; then
    state=$(curl -s --unix-socket "$D/control.sock" http://localhost/v1/spool \
      | jq -r '[.files[] | select(.name == "000001.pcap.age") | .state][0] // ""')
    if [ "$state" = uploaded ] || [ "$state" = deleted ]; then uploaded=yes; break; fi
  fi
  sleep 0.05
done
daemon_s=$(echo "$(date +%s.%N) - $start" | bc)
kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=""
[ -n "$uploaded" ] || { echo "the daemon did not upload the capture; log:" >&2; cat "$D/agent.log" >&2; exit 1; }

SECTION=("$ROOT/bench/section.py" upload "$ROOT/bench/README.md" "sudo SIZE_MIB=$SIZE_MIB RUNS=$RUNS DAEMON_MIB=$DAEMON_MIB bench/upload.sh")
python3 - "$OUT" "$SIZE_MIB" "$RUNS" "$DAEMON_MIB" "$daemon_s" <<'PY' | "${SECTION[@]}"
import statistics, sys
out, size, runs, dmib, dsec = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
rows = {}
for line in open(f"{out}/runs.tsv"):
    tool, s, m, ticks = line.split("\t")
    rows.setdefault(tool, []).append((float(s), int(m), int(ticks)))
med = {t: statistics.median(r[0] for r in v) for t, v in rows.items()}
print(f"\n| tool ({size} MiB, {runs} runs) | seconds, median (min–max) | MiB/s | peak RSS MiB | s3s-fs CPU s | agent ÷ tool (time) |")
print("|---|---|---|---|---|---|")
for t in ["age", "curl", "curl+sha", "agent-seal", "agent-upload", "agent"]:
    v = rows[t]; s = [r[0] for r in v]
    rss = max(r[1] for r in v) / 1024
    cpu = statistics.median(r[2] for r in v) / 100
    ratio = med["agent"] / med[t]
    print(f"| {t} | {med[t]:.2f} ({min(s):.2}–{max(s):.2}) | {size / med[t]:.0f} | {rss:.1f} | {cpu:.2f} | {ratio:.2f} |")
samples = [tuple(map(float, l.split("\t"))) for l in open(f"{out}/daemon-rss.tsv")]
rss = [r for _, r in samples if r > 0]
half = len(rss) // 2
print(f"\ndaemon uploading a {dmib} MiB capture: {dsec:.1f} s ({dmib / dsec:.0f} MiB/s), "
      f"RSS at start {rss[0] / 1024:.1f} MiB, peak first half {max(rss[:half]) / 1024:.1f} MiB, "
      f"peak second half {max(rss[half:]) / 1024:.1f} MiB, {len(rss)} samples")
PY
echo "raw figures in $OUT"
