#!/usr/bin/env bash
# fuzz-all.sh DURATION — runs every Fuzz* target in the product module for DURATION each.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-30s}
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $f ($dur)"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$dur" "$pkg"
  done
done
