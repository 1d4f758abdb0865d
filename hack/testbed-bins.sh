#!/usr/bin/env bash
# Builds the testbed binaries (kube-apiserver, kubectl, etcd, helm) from the Go module proxy into
# a cache directory keyed by their versions, and prints that directory. Does nothing when the
# binaries are already there. The wrapper modules under tools/ pin every version.
set -euo pipefail

KUBE_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.19.0

root=$(cd "$(dirname "$0")/.." && pwd)
key="k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}-helm-${HELM_VERSION}"
bin=${XERO_TESTBED_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/xero-operator/testbed/$key}

if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kubectl" ] && [ -x "$bin/etcd" ] && [ -x "$bin/helm" ] &&
  [ -f "$bin/.complete" ]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "testbed-bins: Go is required to build the testbed binaries" >&2; exit 1; }

# Build into a staging directory and move it into place, so an interrupted build never leaves a
# half-filled cache that a later run would trust.
mkdir -p "$(dirname "$bin")"
stage=$(mktemp -d "$(dirname "$bin")/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT

log() { echo "testbed-bins: $*" >&2; }
export CGO_ENABLED=0
# The installed Go builds them, never one downloaded on the fly (the tools' go.mod files need
# 1.26): what runs is what the machine's owner installed.
export GOTOOLCHAIN=local
need=$(sed -n 's/^go //p' "$root/tools/kube/go.mod")
have=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]; then
  echo "testbed-bins: Go $need or newer is required to build the testbed binaries (found $have)" >&2
  exit 1
fi

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
v=k8s.io/component-base/version
kube_ldflags="-s -w -X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
# kubectl reads its own version from client-go's copy of the version package.
cv=k8s.io/client-go/pkg/version
kubectl_ldflags="$kube_ldflags -X $cv.gitVersion=$KUBE_VERSION -X $cv.gitMajor=1 -X $cv.gitMinor=$minor -X $cv.gitTreeState=clean"

start=$(date +%s)
log "building kube-apiserver $KUBE_VERSION (cold: several minutes)"
(cd "$root/tools/kube" && go build -trimpath -ldflags "$kube_ldflags" -o "$stage/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
log "building kubectl $KUBE_VERSION"
(cd "$root/tools/kube" && go build -trimpath -ldflags "$kubectl_ldflags" -o "$stage/kubectl" k8s.io/kubernetes/cmd/kubectl)
log "building etcd $ETCD_VERSION"
(cd "$root/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$stage/etcd" go.etcd.io/etcd/server/v3)
log "building helm $HELM_VERSION"
hv=helm.sh/helm/v3/internal/version
(cd "$root/tools/helm" && go build -trimpath \
  -ldflags "-s -w -X $hv.version=$HELM_VERSION -X $hv.gitTreeState=clean -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
  -o "$stage/helm" helm.sh/helm/v3/cmd/helm)
touch "$stage/.complete"

rm -rf "$bin"
mv "$stage" "$bin"
trap - EXIT
log "built in $(( $(date +%s) - start ))s"
echo "$bin"
