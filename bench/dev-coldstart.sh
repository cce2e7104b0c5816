#!/usr/bin/env bash
# dev-coldstart.sh — how long a fresh clone's first `tetherctl dev` takes to
# answer on its API, against the baseline of building the same three
# binaries (`go build` of docsvc, tether-plane and tether-agent) with the
# same empty Go build cache, side by side in one run. Modules are taken from
# the module cache as they are (a clean clone on a machine that has them);
# only the build cache starts empty, which is what makes the first run slow.
#
# The ratio says what tetherctl dev adds to the unavoidable compile: building
# tetherctl itself (go run), preparing the vendor side (keys, a license, a
# signed release), migrating, and starting five processes.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/devcoldstart.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# Baseline: the three binaries from an empty build cache.
start=$(now)
GOCACHE="$work/cache-build" go build -o "$work/bin/" ./cmd/docsvc ./cmd/tether-plane ./cmd/tether-agent
build=$(python3 -c "print($(now) - $start)")

# tetherctl dev from another empty build cache, until its API answers.
api=$(freeport); plane=$(freeport); status=$(freeport)
start=$(now)
GOCACHE="$work/cache-dev" go run ./cmd/tetherctl dev --data-dir "$work/dev" \
  --api-addr "127.0.0.1:$api" --plane-addr "127.0.0.1:$plane" --agent-status-addr "127.0.0.1:$status" \
  < /dev/null > "$work/dev.log" 2>&1 &
until curl -fsS -o /dev/null "http://127.0.0.1:$api/healthz" 2>/dev/null; do
  if ! kill -0 $! 2>/dev/null; then echo "tetherctl dev exited:"; tail -20 "$work/dev.log"; exit 1; fi
  sleep 0.5
done
dev=$(python3 -c "print($(now) - $start)")

printf 'cold build of the three binaries:     %6.1f s\n' "$build"
printf 'cold tetherctl dev to a healthy API:  %6.1f s\n' "$dev"
printf 'ratio (dev / build):                  %6.2f\n' "$(python3 -c "print($dev / $build)")"
