#!/usr/bin/env bash
# test-deps.sh — installs what the test suite needs, idempotently:
#   Debian: chromium (web page tests), poppler-utils (pdftotext, the extraction
#   baseline), and the npm packages pinned in tools/package.json: fauxqs (an
#   S3- and SQS-compatible server) and the AWS CDK CLI.
# Safe to run again: each step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test-deps: installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

stamp=tools/node_modules/.tether-stamp
want=$(sha256sum tools/package-lock.json | cut -d' ' -f1)
if [ ! -x tools/node_modules/.bin/fauxqs ] || [ ! -x tools/node_modules/.bin/cdk ] \
   || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "test-deps: installing npm tools (tools/package-lock.json)"
  npm ci --prefix tools --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# PostgreSQL: the go-svc machine starts it before a session; start it if it stopped.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "test-deps: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi
echo "test-deps: ready"
