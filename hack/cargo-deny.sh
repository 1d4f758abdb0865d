#!/usr/bin/env bash
# Checks the dependency graph against deny.toml (bans, licenses, sources) without the network.
# cargo-deny itself is built once (from crates.io, at the version below, --locked) into a cache
# outside the repository and reused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=0.20.2
tools=${XDG_CACHE_HOME:-$HOME/.cache}/xero-operator/tools
deny="$tools/bin/cargo-deny"
if ! { [ -x "$deny" ] && "$deny" --version 2>/dev/null | grep -q " $version\$"; }; then
  echo "cargo-deny: building cargo-deny $version (cold: several minutes)" >&2
  CARGO_TARGET_DIR="$tools/build" cargo install cargo-deny --version "$version" --locked \
    --root "$tools" --force >&2
  rm -rf "$tools/build"
fi
cd "$root"
"$deny" --offline --locked check bans licenses sources
