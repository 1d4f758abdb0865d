#!/usr/bin/env bash
# Checks the dependency graph against deny.toml (bans, licenses, sources); the check itself is
# offline (no advisory database), after a `cargo fetch` of the locked crates.
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
# cargo-deny reads the whole graph (every platform's crates, windows-sys included), which a
# fresh machine's registry lacks until it has fetched them; after that it needs no network.
cargo fetch --locked >&2
"$deny" --offline --locked check bans licenses sources
