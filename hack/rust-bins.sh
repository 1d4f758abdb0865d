#!/usr/bin/env bash
# rust-bins.sh [CARGO_ARGS...]: builds the debug binaries a control plane and the demo run
# (xero-testbed, xero-operator, powerbi-sim) in one cargo invocation.
#
# One invocation resolves the dependencies' features once: xero-testbed built on its own needs
# fewer features of hyper, serde_json, jiff and others than with the operator beside it, and
# cargo would then build those crates and everything above them (k8s-openapi, kube) a second
# time. The demo and `make testbed-up` share this build, so each is a no-op after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo build --locked --bins -p xero-testbed -p xero-operator -p powerbi-sim "$@"
