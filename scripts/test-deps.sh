#!/usr/bin/env bash
# test-deps.sh — brings up what the test suite needs, idempotently, on a fresh
# machine or one where it ran before (each step checks before it acts):
#   Debian: chromium (web page tests), poppler-utils (pdftotext, the extraction
#     baseline), postgresql (the production database), and podman with runc
#     (internal/imagebuild runs the images under their runtime contract; runc,
#     because crun refuses hosts whose cgroups are in hybrid mode);
#   PostgreSQL: a cluster started on 127.0.0.1:5432 with the role and the
#     `test` database the tests use (skipped when TETHER_TEST_POSTGRES_URL
#     names another server);
#   npm (tools/package.json): fauxqs (an S3- and SQS-compatible server) and
#     the AWS CDK CLI;
#   PyPI (tools/requirements.txt, hash-pinned): moto's server (the AWS API
#     emulator), cfn-lint, checkov and the AWS CLI, in the venv tools/venv;
#     and (tools/requirements-api.txt, hash-pinned) schemathesis, the API
#     fuzzer, in its own venv tools/venv-api.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "test-deps: $*"; }
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

# --- Debian packages --------------------------------------------------------
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
if [ -z "${TETHER_TEST_POSTGRES_URL:-}" ] && ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
  need_apt+=(postgresql)
fi
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
command -v podman >/dev/null 2>&1 || need_apt+=(podman)
command -v runc >/dev/null 2>&1 || need_apt+=(runc)
command -v nsenter >/dev/null 2>&1 || need_apt+=(util-linux)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- PostgreSQL on 127.0.0.1:5432 -------------------------------------------
# The tests connect as tether_test (password auth over TCP, as Debian's default
# pg_hba.conf allows for 127.0.0.1) and create one schema per test in `test`.
pg_user=tether_test
pg_url="postgres://${pg_user}:${pg_user}@127.0.0.1:5432/test"
as_postgres() { if [ -n "$SUDO" ]; then sudo -u postgres "$@"; else runuser -u postgres -- "$@"; fi; }
if [ -z "${TETHER_TEST_POSTGRES_URL:-}" ]; then
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  # The package makes a cluster when it installs; make one if it did not, or
  # if it was dropped since.
  if [ ! -d "/etc/postgresql/$version/main" ]; then
    say "creating PostgreSQL $version cluster main"
    $SUDO pg_createcluster "$version" main --port 5432 >/dev/null
  fi
  port=$($SUDO pg_conftool -s "$version" main show port 2>/dev/null || echo 5432)
  if [ "$port" != 5432 ]; then
    say "PostgreSQL $version/main listens on $port; moving it to 5432"
    $SUDO pg_conftool "$version" main set port 5432
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main stop >/dev/null 2>&1 || true
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "starting PostgreSQL $version/main"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    pg_isready -h 127.0.0.1 -p 5432 >/dev/null || { say "PostgreSQL did not start; see /var/log/postgresql/"; exit 1; }
  fi
  psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p 5432 "$@"; }
  # CREATEROLE: the credential-rotation tests make roles of their own.
  if [ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$pg_user'")" != 1 ]; then
    say "creating role $pg_user"
    psql_admin -c "CREATE ROLE $pg_user LOGIN CREATEROLE PASSWORD '$pg_user'"
  elif [ "$(psql_admin -tAc "SELECT rolcreaterole FROM pg_roles WHERE rolname = '$pg_user'")" != t ]; then
    psql_admin -c "ALTER ROLE $pg_user CREATEROLE"
  fi
  if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
    say "creating database test"
    psql_admin -c "CREATE DATABASE test OWNER $pg_user"
  fi
  # The proof that counts: the tests' own URL connects.
  if ! psql "$pg_url" -X -q -tAc 'SELECT 1' >/dev/null; then
    say "cannot connect to $pg_url; check pg_hba.conf allows password auth from 127.0.0.1"
    exit 1
  fi
fi

# --- npm tools ---------------------------------------------------------------
stamp=tools/node_modules/.tether-stamp
want=$(sha256sum tools/package-lock.json | cut -d' ' -f1)
if [ ! -x tools/node_modules/.bin/fauxqs ] || [ ! -x tools/node_modules/.bin/cdk ] \
   || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing npm tools (tools/package-lock.json)"
  npm ci --prefix tools --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# --- Python tools --------------------------------------------------------------
# python_venv VENV REQUIREMENTS PROBE: (re)build VENV from the hash-pinned
# REQUIREMENTS unless PROBE (a file the venv must have) exists and the venv
# was built from these very requirements.
python_venv() {
  local venv=$1 reqs=$2 probe=$3 stamp=$1/.tether-stamp want
  want=$(sha256sum "$reqs" | cut -d' ' -f1)
  if [ ! -x "$venv/bin/$probe" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing Python tools into $venv ($reqs)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes -r "$reqs"
    echo "$want" > "$stamp"
  fi
}
python_venv tools/venv tools/requirements.txt moto_server
python_venv tools/venv-api tools/requirements-api.txt schemathesis
say "ready"
