#!/usr/bin/env bash
# Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ from the project's own
# tools: documents signed with the fuzzing key, a demo capture's journal and pcap, configs.
# Run as root (it captures on loopback through scripts/demo). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins --locked --quiet
bin="$PWD/target/debug"
c="$PWD/fuzz/corpus"
mkdir -p "$c"/{control_request,signed_document,journal,sessions,config}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Signed documents: a grant, a revocation and a capture request, all for PA-0001.
export PCAP_STORE="file://$tmp/store" PCAP_AUTHORIZATION_KEY="$PWD/fuzzing/keys/fuzz.key"
"$bin/pcap-portal" authorize PA-0001 --period 1m --allow-unseen >/dev/null
cp "$tmp/store/devices/PA-0001/grant.json" "$c/signed_document/grant.json"
"$bin/pcap-portal" unauthorize PA-0001 >/dev/null
cp "$tmp/store/devices/PA-0001/grant.json" "$c/signed_document/revocation.json"
PCAP_REQUEST_KEY="$PWD/fuzzing/keys/fuzz.key" "$bin/pcap-portal" request PA-0001 --interface eth0 \
  --filter "host 10.1.2.3" --reason unknown_device --subject seed --duration 60s >/dev/null 2>&1
cp "$tmp"/store/devices/PA-0001/requests/*.json "$c/signed_document/request.json"

# Control socket bodies.
printf '%s' '{"interface":"eth0","filter":"host 10.1.2.3","reason":"unknown_device","subject":"seed","limits":{"max_duration":"60s","max_packets":100000,"max_bytes":"100MiB","snaplen":65535,"max_pps":20000,"max_bps":"10MiB"}}' > "$c/control_request/full.json"
printf '%s' '{"interface":"lo","reason":"other"}' > "$c/control_request/minimal.json"
printf '%s' '01a20a99-0000-7000-8000-000000000001' > "$c/control_request/id.txt"

# Configs.
cp config/agent.example.toml "$c/config/example.toml"
cat > "$c/config/minimal.toml" <<TOML
[device]
serial = "PA-0001"
[authorization]
source = "store"
verify_key = "/etc/pcap-agent/keys/authorization.pub"
[upload]
recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
[capture]
interfaces = ["eth0"]
TOML

# A journal and a pcap from the demo's capture (the demo keeps its spool journal).
if [ "$(id -u)" -eq 0 ]; then
  DEMO_DIR="$tmp/demo" ./scripts/demo >/dev/null 2>&1
  cp "$tmp/demo/spool/journal.log" "$c/journal/demo.log"
  cp "$tmp/demo/capture.pcap" "$c/sessions/demo.pcap"
fi
# Fragments, Teredo, NSH, HTTP kept alive with uploads and NTLM, SSDP, DHCPv6, DNS elsewhere.
/usr/bin/python3 fuzz/seeds-sessions.py "$c/sessions" 2>/dev/null

# A small mix of HTTP, TLS, DNS, mail and UDP sessions, as the analyze benchmark makes them.
python3 bench/mkpcap.py "$c/sessions/mixed.pcap" --packets 40 --sessions 4 --udp-flows 4 >/dev/null
# The same mix inside each tunnel the agent takes off, and truncated and corrupted variants of
# each (scapy builds them: Debian's python3-scapy).
python3 bench/mkpcap.py "$tmp/small.pcap" --packets 24 --sessions 2 --udp-flows 2 >/dev/null
/usr/bin/python3 tests/fixtures/encapsulate.py "$tmp/small.pcap" "$tmp/tunnels" --malformed >/dev/null
for f in "$tmp"/tunnels/*.pcap; do
  cp "$f" "$c/sessions/tunnel-$(basename "$f")"
done
echo "seeds in $c:"; find "$c" -type f | sort
