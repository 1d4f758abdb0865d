#!/usr/bin/env bash
# `make image`: the container image of the static binary, built without a container daemon
# (hack/image.py writes the OCI layout). Prints a JSON line with the manifest digest, the
# archive (for `docker load`, `kind load image-archive`, skopeo `oci-archive:`) and the layout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
binary=$(./hack/static-binary.sh)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(git log -1 --format=%ct 2>/dev/null || echo 0)
exec python3 hack/image.py "$binary" "$root/target/image" \
  --version "$version" --revision "$revision" --created "$created"
