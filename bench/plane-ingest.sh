#!/usr/bin/env bash
# plane-ingest.sh — sustained signed heartbeats per second into the plane on
# PostgreSQL, beside one core's Ed25519 verify rate measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/plane-ingest "$@"
