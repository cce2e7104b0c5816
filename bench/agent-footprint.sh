#!/usr/bin/env bash
# agent-footprint.sh [SECONDS] — tether-agent's steady footprint: binary size,
# resident memory (goal < 25 MB) and CPU while idle, measured against a real
# local plane (tether-plane serve) and a static fake docsvc (/readyz and
# /metrics files served by python3), with --heartbeat 1s so the window holds
# one heartbeat, one diagnostics poll and one ledger append per second:
# sixty times the production rate, so "idle" here is a pessimistic bound.
#
# RSS is sampled from /proc/<pid>/status every 5 s after a 10 s warm-up;
# CPU is the agent's utime+stime ticks (/proc/<pid>/stat fields 14-15) over
# the window, divided by CLK_TCK and the window length.
set -euo pipefail
cd "$(dirname "$0")/.."
window=${1:-60}
work=$(mktemp -d /tmp/agentfootprint.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
plane_port=$(freeport); docsvc_port=$(freeport); status_port=$(freeport)
plane="http://127.0.0.1:$plane_port"

go build -trimpath -ldflags='-s -w' -o "$work/tether-agent" ./cmd/tether-agent
go build -o "$work/tether-plane" ./cmd/tether-plane

"$work/tether-plane" keys init --dir "$work/keys" --root-keys 1 --root-threshold 1 >/dev/null
"$work/tether-plane" release publish --keys "$work/keys" --repo "$work/repo" --channel stable \
  --version 1.1.0 --min-from 1.0.0 --image api=registry.example/docsvc@sha256:$(printf 'ab%.0s' $(seq 32)) >/dev/null
"$work/tether-plane" serve --data-dir "$work/plane" --addr "127.0.0.1:$plane_port" --repo "$work/repo" \
  --keys "$work/keys" --heartbeat-interval 1s > "$work/plane.log" 2>&1 &
for _ in $(seq 1 100); do
  [ -s "$work/plane/admin-token" ] && curl -fsS -o /dev/null "$plane/healthz" 2>/dev/null && break
  sleep 0.2
done
"$work/tether-plane" license issue --keys "$work/keys" --customer "Footprint Bench" \
  --expires "$(date -u -d '+1 year' +%F)" --out "$work/license.json" \
  --plane-url "$plane" --admin-token-file "$work/plane/admin-token" >/dev/null

mkdir -p "$work/docsvc"
cat > "$work/docsvc/readyz" <<'JSON'
{"status":"ok","checks":{"database":{"status":"ok"},"blob":{"status":"ok"},"queue":{"status":"ok"},"ai_provider":{"status":"ok","detail":"local "},"worker":{"status":"ok"}},"queue":{"visible":0,"in_flight":0,"dead_letter":0,"oldest_age_seconds":0}}
JSON
cat > "$work/docsvc/metrics" <<'PROM'
docsvc_http_requests_total{route="GET /readyz",code="200"} 100
docsvc_documents{status="succeeded"} 1200
docsvc_documents{status="failed"} 3
docsvc_stored_bytes 4200000000
docsvc_schema_version 3
docsvc_build_info{version="1.0.0"} 1
PROM
python3 -m http.server "$docsvc_port" --bind 127.0.0.1 --directory "$work/docsvc" > /dev/null 2>&1 &
for _ in $(seq 1 50); do curl -fsS -o /dev/null "http://127.0.0.1:$docsvc_port/readyz" 2>/dev/null && break; sleep 0.1; done

"$work/tether-agent" run --data-dir "$work/agent" --plane-url "$plane" --license "$work/license.json" \
  --license-public-key "$work/keys/license.pub" --trusted-root "$work/keys/root.json" --channel stable \
  --docsvc-url "http://127.0.0.1:$docsvc_port" --heartbeat 1s --status-addr "127.0.0.1:$status_port" \
  > "$work/agent.log" 2>&1 &
agent=$!

sleep 10
kill -0 "$agent" 2>/dev/null || { echo "agent exited:"; tail -5 "$work/agent.log"; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$agent/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$agent/status"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s.%N); max_rss=0; samples=()
end=$(( $(date +%s) + window ))
while [ "$(date +%s)" -lt "$end" ]; do
  r=$(rss_kb); samples+=("$r"); [ "$r" -gt "$max_rss" ] && max_rss=$r
  sleep 5
done
t1=$(ticks); s1=$(date +%s.%N); last_rss=$(rss_kb)
status=$(curl -fsS "http://127.0.0.1:$status_port/status.json")

echo "tether-agent footprint over ${window}s (heartbeat 1s, after 10s warm-up)"
printf '  binary size (stripped):  %.1f MB (%s bytes)\n' "$(echo "$(stat -c %s "$work/tether-agent") / 1000000" | bc -l)" "$(stat -c %s "$work/tether-agent")"
printf '  RSS steady (last):       %.1f MiB\n' "$(echo "$last_rss / 1024" | bc -l)"
printf '  RSS max over window:     %.1f MiB  (goal < 25 MB)\n' "$(echo "$max_rss / 1024" | bc -l)"
printf '  RSS samples (KB):        %s\n' "${samples[*]}"
printf '  CPU:                     %s ticks in %.1fs = %.2f%% of one core\n' "$((t1 - t0))" \
  "$(echo "$s1 - $s0" | bc -l)" "$(echo "($t1 - $t0) / $hz / ($s1 - $s0) * 100" | bc -l)"
echo "  status.json:             $status"
