#!/usr/bin/env bash
# Installs what this machine lacks to build and run the portal, and skips what is already there.
#   scripts/setup.sh            the build tools: wasm32 target, cargo-leptos, wasm-bindgen, wasm-opt
#   scripts/setup.sh --browser  also what the tests need: Debian's Chromium, playwright-core and
#                               ajv (checks bodies against the event catalog's schemas) for the
#                               browser tests, express and standardwebhooks (npm) plus flask and
#                               standardwebhooks (PyPI) to run the integration guide's receivers,
#                               aiosmtpd (PyPI) for the email test
# Nothing here downloads a prebuilt binary: the Rust tools are built from crates.io, wasm-opt
# comes from npm's binaryen package, Chromium from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LEPTOS_VERSION=0.3.11
BINARYEN_VERSION=132.0.0
# wasm-bindgen's CLI must match the library in Cargo.lock exactly.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

browser=0
[[ "${1:-}" == "--browser" ]] && browser=1

say() { printf '==> %s\n' "$*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [[ "$(cargo leptos --version 2>/dev/null)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]]; then
  # Its lock file needs a newer rustc than the stable one, so it builds with the nightly. A debug
  # build: cargo-leptos only orchestrates, and building it optimised takes six times as long
  # (27 min against 4.6 min on 2 cores).
  if ! rustup toolchain list | grep -q '^nightly'; then
    say "installing a nightly toolchain to build cargo-leptos"
    rustup toolchain install nightly --profile minimal
  fi
  say "building cargo-leptos $CARGO_LEPTOS_VERSION (about 5 minutes, once per machine)"
  cargo +nightly install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads --debug
fi

if [[ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
  # Not --locked: its lock file names a crate version the registry no longer serves. Light
  # optimisation without LTO builds in 2 minutes and still runs fast.
  say "building wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes, once per machine)"
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=2 \
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# Release builds of the wasm run wasm-opt; Debian's binaryen is too old for today's Rust wasm.
if [[ "$(wasm-opt --version 2>/dev/null)" != *"version ${BINARYEN_VERSION%%.*} "* ]]; then
  say "installing wasm-opt (npm binaryen@$BINARYEN_VERSION)"
  as_root npm install --global --no-fund --no-audit "binaryen@$BINARYEN_VERSION"
fi

if [[ $browser -eq 1 ]]; then
  if ! python3 -c 'import aiosmtpd, flask, standardwebhooks' 2>/dev/null; then
    say "installing aiosmtpd, flask and standardwebhooks (scripts/test-requirements.txt)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r scripts/test-requirements.txt
  fi
  if [[ ! -x /usr/bin/chromium ]]; then
    say "installing Chromium from Debian"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  fi
  # Every package end2end/package.json names, installed as its lock file pins them.
  if ! (cd end2end && node -e 'const d = require("./package.json").devDependencies;
      process.exit(Object.keys(d).every((n) => require("fs").existsSync(`node_modules/${n}/package.json`)) ? 0 : 1)'); then
    say "installing playwright-core, ajv, express and standardwebhooks (end2end/package-lock.json)"
    (cd end2end && npm ci --no-fund --no-audit)
  fi
fi
