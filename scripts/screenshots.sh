#!/usr/bin/env bash
# Writes a screenshot of every page at a desktop width (1280 px) and a phone's (390 px) to
# docs/screenshots/, `{page}-desktop.png` and `{page}-phone.png`: the browser test that checks
# every page with axe and for sideways scrolling (end2end/tests/screens.test.mjs) saves each
# page it checks. Uses the same tools as the tests (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
export PATH="$HOME/.cargo/bin:$PATH"
cargo leptos build
mkdir -p docs/screenshots
SCREENSHOTS_DIR="$PWD/docs/screenshots" PORTAL_BIN="$PWD/target/debug/portal" LEPTOS_SITE_ROOT="$PWD/target/site" \
  node --test --test-concurrency=1 --test-timeout=300000 --test-force-exit end2end/tests/screens.test.mjs
echo "==> screenshots in docs/screenshots/"
