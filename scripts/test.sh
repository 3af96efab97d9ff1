#!/usr/bin/env bash
# Runs every test: the Rust unit and black-box tests on SQLite, the same suite again on
# PostgreSQL when a server is reachable, then the browser tests in Chromium against a portal
# built with its wasm.
#
# PostgreSQL: TEST_DATABASE_URL (default postgres://root@127.0.0.1:5432/postgres) names a
# server and a database to connect to; each test makes a database of its own there, and they
# are dropped at the end. When the server is down and this machine has a cluster, it is started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
export PATH="$HOME/.cargo/bin:$PATH"
# A one-off run (CI, a fresh clone) gains nothing from incremental builds, and their caches
# took 12 of a debug target's 27 GB: a CI machine ran out of disk while linking.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

echo "==> Rust tests on SQLite"
cargo test --locked

PG_URL="${TEST_DATABASE_URL:-postgres://root@127.0.0.1:5432/postgres}"
pg_ready() { command -v psql >/dev/null && psql "$PG_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; }
if ! pg_ready && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  echo "==> starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
fi
drop_test_databases() {
  psql "$PG_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'portal\_test\_%'" |
    while read -r db; do psql "$PG_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; done
}
if pg_ready; then
  echo "==> Rust tests on PostgreSQL ($PG_URL)"
  drop_test_databases
  # The whole suite again (the unit tests are quick; the same selection needs no rebuild).
  TEST_DATABASE_URL="$PG_URL" cargo test --locked
  drop_test_databases
else
  echo "==> SKIPPED the PostgreSQL run: no server answers at $PG_URL (set TEST_DATABASE_URL)"
fi

echo "==> building the site for the browser tests"
cargo leptos build
# Each test has a deadline, and a file's process ends when its tests have, so a failing test
# is reported instead of holding the run open.
PORTAL_BIN="$PWD/target/debug/portal" LEPTOS_SITE_ROOT="$PWD/target/site" \
  node --test --test-concurrency=1 --test-timeout=300000 --test-force-exit end2end/tests/
