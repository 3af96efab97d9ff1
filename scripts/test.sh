#!/usr/bin/env bash
# Runs every test: the Rust unit and black-box tests, then the browser tests in Chromium
# against a portal built with its wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
export PATH="$HOME/.cargo/bin:$PATH"

echo "==> Rust tests"
cargo test --locked

echo "==> building the site for the browser tests"
cargo leptos build
PORTAL_BIN="$PWD/target/debug/portal" LEPTOS_SITE_ROOT="$PWD/target/site" \
  node --test --test-concurrency=1 end2end/tests/
