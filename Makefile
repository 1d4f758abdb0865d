# xero-operator: developer entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
# Every build uses the dependency versions in Cargo.lock, never newer ones.
LOCKED := --locked
TESTBED_DIR := .testbed

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: toolchain
toolchain: ## Install the Rust components the checks need (rustfmt, clippy) when missing
	@./hack/toolchain.sh

.PHONY: testbed-bins
testbed-bins: ## Build or reuse etcd, kube-apiserver, kubectl and helm; prints their directory
	@./hack/testbed-bins.sh

.PHONY: testbed-up
testbed-up: ## Start a control plane in the background; kubeconfig in .testbed/kubeconfig
	@./hack/testbed.sh up $(TESTBED_DIR)

.PHONY: testbed-down
testbed-down: ## Stop the control plane started by testbed-up
	@./hack/testbed.sh down $(TESTBED_DIR)

.PHONY: demo
demo: toolchain ## Watch the operator heal a broken Power BI dataset; DEMO_ONCE=1 for a non-interactive check
	@./hack/demo.sh

.PHONY: lint
lint: toolchain ## cargo fmt --check, clippy with warnings as errors, cargo-deny (bans, licenses, sources; offline), actionlint on the workflows
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(LOCKED) --workspace --all-targets -- -D warnings
	# The operator as shipped: the tests' bench-clock feature off.
	$(CARGO) clippy $(LOCKED) -p xero-operator --lib --bins -- -D warnings
	./hack/cargo-deny.sh
	./hack/actionlint.sh

.PHONY: unit
unit: toolchain ## The inner loop: fmt, clippy and the tests that need no control plane (well under a minute warm)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(LOCKED) --workspace --all-targets -- -D warnings
	$(CARGO) test $(LOCKED) --workspace --lib --bins
	$(CARGO) test $(LOCKED) -p powerbi-sim --tests
	$(CARGO) test $(LOCKED) -p xero-operator --test clients_powerbi --test docs -- --skip the_shared_secret_example

.PHONY: test
test: toolchain ## The whole suite: lint, the static binary and its image, unit, integration and end-to-end tests, chart, demo
	XERO_TESTBED_BIN="$$(./hack/testbed-bins.sh)"; export XERO_TESTBED_BIN; \
	$(MAKE) --no-print-directory lint; \
	XERO_IMAGE="$$(./hack/image.sh)"; export XERO_IMAGE; \
	$(CARGO) test $(LOCKED) --workspace; \
	DEMO_ONCE=1 ./hack/demo.sh; \
	./hack/check-no-leftovers.sh

.PHONY: image
image: toolchain ## The container image of the static binary, built without a container daemon: target/image/oci (OCI layout) and target/image/xero-operator-VERSION.tar (docker load, kind load image-archive, skopeo)
	./hack/image.sh

.PHONY: chaos
chaos: ## Kill the operator at random 120 times while refreshes are requested, tokens rotate and Secrets change; prints tokens lost, refreshes started twice, requests unanswered (all must be 0). XERO_CHAOS_SEED replays a run
	export XERO_TESTBED_BIN="$$(./hack/testbed-bins.sh)"; \
	XERO_CHAOS_KILLS=$${XERO_CHAOS_KILLS:-120} $(CARGO) test $(LOCKED) --test chaos -- --nocapture killed_at_random

.PHONY: chart-readme
chart-readme: ## Regenerate charts/xero-operator/README.md from values.yaml (tests/chart_readme.rs checks it)
	XERO_WRITE_CHART_README=1 $(CARGO) test $(LOCKED) --test chart_readme -- --exact the_chart_readme_is_generated_from_values_yaml

.PHONY: crds
crds: ## Regenerate crds/ and the chart's CRD template from src/api
	$(CARGO) run $(LOCKED) --quiet -- crd > crds/xerodatasets.yaml
	./hack/chart-crd.sh

.PHONY: bench
bench: ## Benchmarks (scale, steady state vs a naive poller, slots of a week in both modes, heal latency, footprint); figures in target/bench/summary.json
	export XERO_TESTBED_BIN="$$(./hack/testbed-bins.sh)"; \
	$(CARGO) build $(LOCKED) --release --features bench-clock --bin xero-operator; \
	./hack/static-binary.sh >/dev/null; \
	$(CARGO) run $(LOCKED) --release -p xero-bench
