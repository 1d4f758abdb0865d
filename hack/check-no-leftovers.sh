#!/usr/bin/env bash
# Fails when a testbed process (etcd, kube-apiserver or the watchdog) of a test run is still
# alive. Test control planes live in temporary directories named xero-testbed-*; the watchdog
# stops them when the test binary exits, which may take a moment.
set -euo pipefail
for _ in $(seq 100); do
  if ! pgrep -f 'xero-testbed-' >/dev/null; then
    echo "no testbed process left behind"
    exit 0
  fi
  sleep 0.2
done
echo "testbed processes left behind:" >&2
pgrep -af 'xero-testbed-' >&2
exit 1
