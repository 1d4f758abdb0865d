#!/usr/bin/env bash
# Builds xero-operator the way the Dockerfile does (release, --locked, the C runtime linked in
# with `-C target-feature=+crt-static` on x86_64- or aarch64-unknown-linux-gnu) and checks that the result is
# statically linked and runs: what the distroless/static image needs, checked without Docker.
# Prints the binary's path.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# This machine's architecture (x86_64 or aarch64): the release builds each on a machine of its own.
target=$(uname -m)-unknown-linux-gnu
cd "$root"

# RUSTFLAGS apply to the target only when --target is given, so build scripts and proc macros
# stay dynamic and the host build cache is not invalidated.
# --version names the commit it was built from.
revision=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || true)
# XERO_AUDITABLE=1 (the release): built by cargo-auditable, which embeds the dependency list in
# the binary for SBOM tools and scanners (syft, trivy, cargo audit bin) to read.
build=(build)
[ "${XERO_AUDITABLE:-0}" != 1 ] || build=(auditable build)
XERO_OPERATOR_REVISION="$revision" RUSTFLAGS="-C target-feature=+crt-static" \
  "${CARGO:-cargo}" "${build[@]}" --release --locked --target "$target" --bin xero-operator >&2
binary="$root/target/$target/release/xero-operator"

if readelf -l "$binary" | grep -q 'Requesting program interpreter'; then
  echo "static-binary: $binary needs a dynamic loader" >&2
  exit 1
fi
if readelf -d "$binary" 2>/dev/null | grep -q '(NEEDED)'; then
  echo "static-binary: $binary needs shared libraries:" >&2
  readelf -d "$binary" | grep '(NEEDED)' >&2
  exit 1
fi
# It runs with an empty environment (as in the image): version (with the commit), and the CRD it
# would install.
version=$(env -i "$binary" --version)
echo "$version" >&2
if [ -n "$revision" ] && ! grep -q "($revision)" <<<"$version"; then
  echo "static-binary: '$binary --version' does not name the commit $revision: $version" >&2
  exit 1
fi
env -i "$binary" crd | grep -q '^kind: CustomResourceDefinition$' || {
  echo "static-binary: '$binary crd' did not print the CRD" >&2
  exit 1
}
# The benchmarks' clock flags are not in a release build.
refused=$(env -i "$binary" run --time-scale 2 2>&1 || true)
if ! grep -q "unexpected argument '--time-scale'" <<<"$refused"; then
  echo "static-binary: $binary accepts --time-scale; it must be built without the bench-clock feature" >&2
  exit 1
fi
echo "$binary"
