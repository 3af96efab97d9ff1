#!/usr/bin/env bash
# Builds the portal and serves it on http://127.0.0.1:3000 with SQLite in ./data/.
# On the first start it creates a partner and prints how to sign in.
# Extra arguments go to `portal serve` (for example --addr 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

cargo leptos build --release
portal=target/release/portal

if [[ "$($portal partner list --json)" == "[]" ]]; then
  echo
  echo "First start: creating a partner to sign in with."
  $portal partner create --name "Demo Partner" --email demo@example.com
  echo "Keep this password: it is shown only now."
else
  echo
  echo "Sign in with a user you created before; make another with"
  echo "  $portal partner create --name NAME --email EMAIL"
fi
echo
echo "Open http://127.0.0.1:3000 (Ctrl-C stops the portal)."
exec $portal serve "$@"
