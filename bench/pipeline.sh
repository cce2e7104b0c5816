#!/usr/bin/env bash
# pipeline.sh [CORPUS] — documents per second through upload → result on the
# embedded defaults (SQLite, local documents dir, database queue, offline
# analyzer), beside pdftotext's throughput on the same files in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-/tmp/tether-pdf-corpus}
[ -d "$corpus" ] || bench/corpus.sh "$corpus"
port=${BENCH_PORT:-18580}
work=$(mktemp -d /tmp/pipelinebench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
# A built binary, not `go run`: killing go run would orphan the stack.
go build -o "$work/tetherctl" ./cmd/tetherctl
"$work/tetherctl" dev --data-dir "$work/dev" --api-addr "127.0.0.1:$port" \
  --plane-addr "127.0.0.1:$((port + 10))" --agent-status-addr "127.0.0.1:$((port + 11))" > "$work/dev.log" 2>&1 &
for _ in $(seq 1 240); do
  [ -s "$work/dev/dev-token" ] && curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
go run ./bench/pipelinebench -url "http://127.0.0.1:$port" -token-file "$work/dev/dev-token" -corpus "$corpus"
