#!/usr/bin/env bash
# Provides the Rust release rust-toolchain.toml pins, with the components `make test` needs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v rustup >/dev/null; then
  echo "toolchain: rustup not found; install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi
want=$(sed -n 's/^channel = "\(.*\)"$/\1/p' "$root/rust-toolchain.toml")
if ! rustup run "$want" rustc --version >/dev/null 2>&1; then
  # A machine set up without the pin may have this very release as `stable`: use it under the
  # pinned name rather than downloading it again.
  stable=$(rustup run stable rustc --version 2>/dev/null | awk '{print $2}' || true)
  if [ "$stable" = "$want" ]; then
    host=$(rustup run stable rustc -vV | sed -n 's/^host: //p')
    sysroot=$(rustup run stable rustc --print sysroot)
    echo "toolchain: using the installed stable ($stable) as $want" >&2
    ln -sfn "$sysroot" "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$want-$host"
  else
    echo "toolchain: installing Rust $want (stable here: ${stable:-none})" >&2
    RUSTUP_AUTO_INSTALL=1 rustup toolchain install "$want" --profile minimal --component rustfmt,clippy
  fi
fi
missing=()
rustup run "$want" cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
rustup run "$want" cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
if [ ${#missing[@]} -gt 0 ]; then
  echo "toolchain: installing ${missing[*]}" >&2
  rustup component add --toolchain "$want" "${missing[@]}"
fi
