#!/usr/bin/env bash
# testbed.sh up|down DIR: starts a control plane in the background (kubeconfig in DIR/kubeconfig)
# or stops it again, leaving no process behind.
set -euo pipefail
cmd=${1:?usage: testbed.sh up|down DIR}
dir=${2:?usage: testbed.sh up|down DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

running() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

case $cmd in
up)
  if running; then
    echo "testbed already running (pid $(cat "$dir/pid")); kubeconfig: $dir/kubeconfig"
    exit 0
  fi
  # A control plane needs no helm: it is built only when a test or the chart asks for it.
  XERO_TESTBED_BIN=$(./hack/testbed-bins.sh kube-apiserver kubectl etcd)
  export XERO_TESTBED_BIN
  ./hack/rust-bins.sh --quiet
  mkdir -p "$dir"
  rm -rf "$dir/etcd" "$dir/certs" "$dir/ready"
  nohup target/debug/xero-testbed up --dir "$dir" --crds "${TESTBED_CRDS:-crds}" >"$dir/testbed.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 900); do
    [ -f "$dir/ready" ] && break
    if ! running; then
      echo "testbed failed to start:" >&2
      cat "$dir/testbed.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  [ -f "$dir/ready" ] || { echo "testbed not ready after 90s; see $dir/testbed.log" >&2; exit 1; }
  cat <<MSG
testbed running: $(cat "$dir/ready")
  export KUBECONFIG=$root/$dir/kubeconfig
  export PATH=$XERO_TESTBED_BIN:\$PATH     # kubectl matching the server (and helm, once make testbed-bins built it)
  kubectl get --raw /version
stop it with: make testbed-down
MSG
  ;;
down)
  if ! running; then
    echo "testbed not running"
    rm -f "$dir/pid"
    exit 0
  fi
  pid=$(cat "$dir/pid")
  kill -TERM "$pid"
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  # The watchdog stops etcd and the API server once xero-testbed is gone.
  for _ in $(seq 100); do pgrep -f -- "--data-dir=$dir/etcd|$root/$dir/etcd" >/dev/null || break; sleep 0.1; done
  rm -f "$dir/pid" "$dir/ready"
  echo "testbed stopped"
  ;;
*)
  echo "usage: testbed.sh up|down DIR" >&2
  exit 2
  ;;
esac
