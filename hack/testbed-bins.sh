#!/usr/bin/env bash
# testbed-bins.sh [TOOL...]: builds the testbed binaries from the Go module proxy into a cache
# directory keyed by their versions, and prints that directory. TOOL is any of kube-apiserver,
# kubectl, etcd, helm (default: all four; the demo and a control plane need no helm). A binary
# already in the cache is not built again. The wrapper modules under tools/ pin every version.
#
# kube-apiserver, kubectl and etcd come from one module (tools/kube) and are built by one
# `go build`, which compiles the packages they share (gRPC, protobuf, OpenTelemetry, the etcd
# client, x/net...) once; helm has its own module and build, side by side. A line every 30
# seconds says what is still being built and for how long.
set -euo pipefail

KUBE_VERSION=v1.36.3
# The etcd release Kubernetes names for this version (build/dependencies.yaml) and whose client
# it links: in the same module as kube-apiserver it adds no newer version of anything to the
# API server's build, and shares the packages of gRPC, protobuf, OpenTelemetry and x/* with it
# (a cold build compiles 2,337 packages; 2,577 with etcd v3.6.16 from a module of its own).
ETCD_VERSION=v3.6.8
HELM_VERSION=v3.19.0
ALL_TOOLS="kube-apiserver kubectl etcd helm"

root=$(cd "$(dirname "$0")/.." && pwd)
key="k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}-helm-${HELM_VERSION}"
bin=${XERO_TESTBED_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/xero-operator/testbed/$key}
log() { echo "testbed-bins: $*" >&2; }

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || read -r -a wanted <<<"$ALL_TOOLS"
missing=()
for tool in "${wanted[@]}"; do
  case " $ALL_TOOLS " in *" $tool "*) ;; *) log "unknown tool $tool (known: $ALL_TOOLS)"; exit 2 ;; esac
  # A binary is moved into the cache only once it is whole, so one that is there is complete.
  [ -x "$bin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "$bin"
  exit 0
fi
needs() { case " ${missing[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

command -v go >/dev/null || { log "Go is required to build the testbed binaries"; exit 1; }
export CGO_ENABLED=0
# The compiler and linker collect garbage a quarter as often, for less CPU: on the development
# machine a cold build of the three in one module took 11.0 CPU-minutes instead of 13.4 (the two
# runs shared the cores with different Rust builds, so the figure is rough).
# Peak memory rises: a compile or link process may grow to about 2 GiB (GOMEMLIMIT) before it
# collects more often again, and a few run at once.
export GOGC=${GOGC:-400} GOMEMLIMIT=${GOMEMLIMIT:-2GiB}
# The installed Go builds them, never one downloaded on the fly (the tools' go.mod files need
# 1.26): what runs is what the machine's owner installed.
export GOTOOLCHAIN=local
need=$(sed -n 's/^go //p' "$root/tools/kube/go.mod")
have=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]; then
  log "Go $need or newer is required to build the testbed binaries (found $have)"
  exit 1
fi

# Build into a staging directory and move each binary into place, so an interrupted build never
# leaves a half-written binary that a later run would trust.
mkdir -p "$bin"
stage=$(mktemp -d "$bin/.stage.XXXXXX")
jobs=()
cleanup() {
  for pid in "${jobs[@]}"; do
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done
  rm -rf "$stage"
}
trap cleanup EXIT
# A stop by signal runs the EXIT trap too, which stops the builds.
trap 'exit 130' INT
trap 'exit 143' TERM

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
v=k8s.io/component-base/version
# kubectl reads its own version from client-go's copy of the version package; -X for a package
# a binary does not link is ignored, so one set of flags serves both.
cv=k8s.io/client-go/pkg/version
kube_ldflags="-s -w -X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
kube_ldflags="$kube_ldflags -X $cv.gitVersion=$KUBE_VERSION -X $cv.gitMajor=1 -X $cv.gitMinor=$minor -X $cv.gitTreeState=clean"
hv=helm.sh/helm/v3/internal/version
helm_ldflags="-s -w -X $hv.version=$HELM_VERSION -X $hv.gitTreeState=clean"
helm_ldflags="$helm_ldflags -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"

# build NAME MODULE_DIR LDFLAGS OUTPUT PACKAGE...: one `go build` in the background, its output
# in $stage/NAME.log; OUTPUT is the binary's path, or a directory (ending in /) for several.
names=()
build() {
  local name=$1 dir=$2 ldflags=$3 output=$4
  shift 4
  # -dwarf=false: the linker drops debug information anyway (-w), so the compiler need not
  # make it for the thousands of packages; the binaries are the same otherwise.
  (cd "$root/tools/$dir" && go build -trimpath -gcflags=all=-dwarf=false -ldflags "$ldflags" -o "$output" "$@") \
    >"$stage/$name.log" 2>&1 &
  jobs+=($!)
  names+=("$name")
}
mkdir -p "$stage/out"
kube_pkgs=() kube_names=()
needs kube-apiserver && kube_pkgs+=(k8s.io/kubernetes/cmd/kube-apiserver) kube_names+=(kube-apiserver)
needs kubectl && kube_pkgs+=(k8s.io/kubernetes/cmd/kubectl) kube_names+=(kubectl)
needs etcd && kube_pkgs+=(go.etcd.io/etcd/server/v3) kube_names+=(etcd)
[ ${#kube_pkgs[@]} -eq 0 ] || build "${kube_names[*]}" kube "$kube_ldflags" "$stage/out/" "${kube_pkgs[@]}"
needs helm && build helm helm "$helm_ldflags" "$stage/out/helm" helm.sh/helm/v3/cmd/helm

start=$(date +%s)
log "building ${missing[*]} (Go $have, ${KUBE_VERSION}, etcd ${ETCD_VERSION}, helm ${HELM_VERSION}); a cold build takes several minutes"
failed=0
pending=("${!jobs[@]}")
next_report=$((start + 30))
while [ ${#pending[@]} -gt 0 ]; do
  still=()
  for i in "${pending[@]}"; do
    if kill -0 "${jobs[$i]}" 2>/dev/null; then
      still+=("$i")
    elif wait "${jobs[$i]}"; then
      log "built ${names[$i]} ($(( $(date +%s) - start ))s)"
    else
      log "building ${names[$i]} failed:"
      tail -n 40 "$stage/${names[$i]}.log" >&2
      failed=1
    fi
  done
  pending=("${still[@]}")
  [ "$failed" = 0 ] || exit 1
  if [ ${#pending[@]} -gt 0 ] && [ "$(date +%s)" -ge "$next_report" ]; then
    busy=()
    for i in "${pending[@]}"; do busy+=("${names[$i]}"); done
    log "still building ${busy[*]} ($(( $(date +%s) - start ))s)"
    next_report=$((next_report + 30))
  fi
  [ ${#pending[@]} -eq 0 ] || sleep 1
done
jobs=()
# etcd's main package is its module's root, go.etcd.io/etcd/server/v3: `go build -o DIR/` names
# that binary server.
[ ! -e "$stage/out/server" ] || mv -f "$stage/out/server" "$stage/out/etcd"
for tool in "${missing[@]}"; do
  [ -x "$stage/out/$tool" ] || { log "the build left no $tool"; exit 1; }
  mv -f "$stage/out/$tool" "$bin/$tool"
done
log "built ${missing[*]} in $(( $(date +%s) - start ))s"
echo "$bin"
