#!/usr/bin/env bash
# Installs the Rust components `make test` needs when the machine lacks them.
set -euo pipefail
if ! command -v cargo >/dev/null; then
  echo "toolchain: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi
missing=()
cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
if [ ${#missing[@]} -gt 0 ]; then
  echo "toolchain: installing ${missing[*]}" >&2
  rustup component add "${missing[@]}"
fi
