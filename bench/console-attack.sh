#!/usr/bin/env bash
# The web console under attack, on a release build, in one run (and with BASELINE=REV, the
# console of that revision too, built from `git archive` beside this one, on the same attacks):
#
#   1. 150 concurrent wrong logins, each from an address of its own: the console's peak
#      resident memory, and a real login right after;
#   2. 40 parallel wrong logins for one account from one address: how many were hashed (401)
#      and how many throttled (429);
#   3. 100 connections that never finish their headers, plain and then over TLS: how long until
#      the console closed them all, and a real login meanwhile;
#   4. 300 junk 1 MB manifests under one device's captures, the research team's captures page
#      loaded 3 times: the console's resident memory before and after, and its peak.
#
# Every client is on loopback, each from an address of its own in 127/8 (bench/console_attack.py).
#
#   bench/console-attack.sh                  # this tree
#   BASELINE=af204a2 bench/console-attack.sh # and the console of af204a2 on the same attacks
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

cargo build --release --locked --quiet --bin pcap-portal
source bench/lib.sh
CONSOLES=("current:$ROOT/target/release/pcap-portal")
if [ -n "${BASELINE:-}" ]; then
  CONSOLES+=("$BASELINE:$(baseline_bin "$BASELINE" pcap-portal)")
fi

WORK=$(mktemp -d /var/tmp/pa-console-attack.XXXXXX)
OUT=${OUT:-$ROOT/bench/out/console-attack-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
REPORT=$OUT/report.txt
: > "$REPORT"
SERVE=""
cleanup() {
  [ -n "$SERVE" ] && kill "$SERVE" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; }
kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

PASSWORD="bench console password"
export PCAP_STORE=file://$WORK/store PCAP_PORTAL_STATE=$WORK/portal
mkdir -p "$WORK/store"
"${CONSOLES[0]#*:}" keygen --out "$WORK/keys" > /dev/null
export PCAP_AUTHORIZATION_KEY=$WORK/keys/authorization.key PCAP_RESEARCH_IDENTITY=$WORK/keys/research.age
for who in alice:admin rita:research; do
  echo "$PASSWORD" | "${CONSOLES[0]#*:}" users add "${who%%:*}" --role "${who#*:}" --password-stdin \
    --users "$WORK/users.json" > /dev/null
done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$WORK/console.key" -out "$WORK/console.crt" 2> /dev/null

# start BIN [ARGS]: a fresh console (its peak memory is its own); sets SERVE and URL.
start() {
  local bin=$1
  shift
  [ -n "$SERVE" ] && { kill "$SERVE"; wait "$SERVE" 2>/dev/null || true; }
  local port
  port=$(free_port)
  "$bin" serve --listen "127.0.0.1:$port" --users "$WORK/users.json" "$@" 2>> "$WORK/serve.log" &
  SERVE=$!
  wait_port "$port"
  URL=http://127.0.0.1:$port
  case " $* " in *" --tls-cert "*) URL=https://127.0.0.1:$port ;; esac
}
# login NAME: a browser's login with curl (the form's token, if the console has one); the status.
login() {
  local token
  token=$(curl -sk -c "$WORK/$1.jar" "$URL/login" | grep -o 'name="token" value="[0-9a-f]*"' | cut -d'"' -f4 || true)
  curl -sk -o /dev/null -w '%{http_code}' -b "$WORK/$1.jar" -c "$WORK/$1.jar" \
    --data-urlencode "name=$1" --data-urlencode "password=$PASSWORD" --data-urlencode "token=$token" \
    "$URL/login"
}

for console in "${CONSOLES[@]}"; do
  name=${console%%:*}
  bin=${console#*:}
  extra=()
  [ "$name" = current ] && extra=(--cache-budget 16MiB)

  start "$bin"
  echo "$name $(python3 bench/console_attack.py logins "$URL" 150) peak_rss_kib $(kib "$SERVE" VmHWM) real_login_after $(login alice)" | tee -a "$REPORT"

  start "$bin"
  echo "$name $(python3 bench/console_attack.py burst "$URL" 40)" | tee -a "$REPORT"

  start "$bin"
  echo "$name plain $(python3 bench/console_attack.py slow "$URL" 100)" | tee -a "$REPORT"
  start "$bin" --tls-cert "$WORK/console.crt" --tls-key "$WORK/console.key"
  echo "$name tls $(python3 bench/console_attack.py slow "$URL" 100)" | tee -a "$REPORT"

  rm -rf "$WORK/store/captures"
  for i in $(seq 0 299); do
    d=$WORK/store/captures/PA-0001/$(printf '01930000-0000-7000-8000-%012d' "$i")
    mkdir -p "$d"
    head -c 1048576 /dev/zero | tr '\0' '{' > "$d/manifest.json"
  done
  start "$bin" "${extra[@]}"
  login rita > /dev/null
  before=$(kib "$SERVE" VmRSS)
  for _ in 1 2 3; do curl -s -o /dev/null -b "$WORK/rita.jar" "$URL/captures"; done
  echo "$name junk_manifests 300 rss_before_kib $before rss_after_kib $(kib "$SERVE" VmRSS) peak_rss_kib $(kib "$SERVE" VmHWM)" | tee -a "$REPORT"
done
echo "raw figures in $OUT"
