#!/usr/bin/env bash
# Fails when a process of a test control plane (etcd, kube-apiserver or the watchdog) is still
# alive. Test control planes live in temporary directories named xero-testbed-*; the watchdog
# stops them when the test binary exits, which may take a moment. Control planes a developer
# started with `make testbed-up` (in .testbed/) are not the tests' and are left alone.
set -euo pipefail
pattern="${TMPDIR:-/tmp}/xero-testbed-"
for _ in $(seq 100); do
  if ! pgrep -f -- "$pattern" >/dev/null; then
    echo "no testbed process left behind"
    exit 0
  fi
  sleep 0.2
done
echo "testbed processes left behind:" >&2
pgrep -af -- "$pattern" >&2
exit 1
