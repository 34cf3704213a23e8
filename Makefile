# mcp-warden: the two commands a new user needs are `make run` and `make test`.
# Everything they need is installed on first use into git-ignored, project-local folders
# (.venv for Python + Envoy, .node for Node 22 + npm packages, the rustup wasm target).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON        ?= python3
VENV          := .venv
PY            := $(VENV)/bin/python
ENVOY         := $(VENV)/bin/envoy
WASM          := target/wasm32-wasip1/release/mcp_warden.wasm
WASM_FAULT    := target/fault-injection/wasm32-wasip1/release/mcp_warden.wasm
WARDEN        := target/release/warden
RUN_DIR       := .run

export GATEWAY_PORT  ?= 10000
export ADMIN_PORT    ?= 9901
export UPSTREAM_PORT ?= 8080
export SINK_PORT     ?= 4317

.PHONY: help build build-fault deps deps-py deps-peers deps-rust run up down test test-unit test-differential test-e2e test-summary validate bench clippy fmt-check

help:
	@echo "make run    - build, then run Envoy + mcp-warden + demo MCP server (+ receipt sink) in the foreground"
	@echo "make up     - the same in the background (PIDs and logs in .run/); make down stops it"
	@echo "make test   - every test layer (unit, wasm32, fake host, real Envoy e2e, conformance)"
	@echo "make bench  - throughput and latency against bare Envoy and Envoy's C++ MCP filter + RBAC"
	@echo "make soak   - minutes of varied load: memory flat, every receipt at the sink, no errors"
	@echo "make build  - build the filter (.wasm) and host tools"

## --- dependencies (installed once, then offline) ---------------------------------------

$(VENV)/.stamp: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

# The project's Python helpers (python/wardenkit) on the venv's path, so scripts/, bench/ and
# tests/ import them without sys.path edits.
$(VENV)/.wardenkit-stamp: $(VENV)/.stamp
	$(PY) -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "wardenkit.pth").write_text("$(CURDIR)/python\n")'
	touch $@

deps-py: $(VENV)/.stamp $(VENV)/.wardenkit-stamp

# MCP servers that cannot share the main venv's pins (FastMCP + fastmcp-tasks: see
# requirements-peers.txt), for the task-binding e2e test.
PEERS_VENV := .venv-peers
$(PEERS_VENV)/.stamp: requirements-peers.txt requirements-peers-nodeps.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install -q --no-deps -r requirements-peers.txt
	$(PEERS_VENV)/bin/pip install -q --no-deps -r requirements-peers-nodeps.txt
	touch $@

deps-peers: $(PEERS_VENV)/.stamp

$(RUN_DIR)/.rust-target:
	@mkdir -p $(RUN_DIR)
	rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
	touch $@

deps-rust: $(RUN_DIR)/.rust-target

deps: deps-py deps-rust

## --- build ----------------------------------------------------------------------------

build: deps-rust
	cargo build --release --target wasm32-wasip1 -p mcp-warden
	cargo build --release -p warden-cli
	@printf 'mcp_warden.wasm: %s bytes\n' "$$(stat -c %s $(WASM))"

# A second .wasm that panics on request, only for the fail-closed e2e test.
build-fault: deps-rust
	cargo build --release --target wasm32-wasip1 -p mcp-warden --features fault-injection --target-dir target/fault-injection

validate: build deps-py
	@rm -f $(RUN_DIR)/validate.log; for f in envoy/*.yaml; do \
	  $(PY) scripts/render_envoy.py $$f > $(RUN_DIR)/validate.yaml && \
	  $(ENVOY) --mode validate -c $(RUN_DIR)/validate.yaml -l error >/dev/null && echo "envoy validate OK: $$f" | tee -a $(RUN_DIR)/validate.log || { echo "envoy validate FAILED: $$f"; exit 1; }; \
	done

# No panics in the data path: clippy denies unwrap/expect/panic/indexing outside tests (Cargo.toml
# [workspace.lints]) and ambient clocks in the core (clippy.toml); checked natively and for the
# filter target.
clippy: deps-rust
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --target wasm32-wasip1 -p mcp-warden -- -D warnings

# rustfmt.toml: the house style; a diff fails the layer.
fmt-check:
	cargo fmt --all --check

## --- run ------------------------------------------------------------------------------

run: build deps
	$(PY) scripts/gateway.py run

up: build deps
	$(PY) scripts/gateway.py up

down:
	@if [ -x $(PY) ]; then $(PY) scripts/gateway.py down; fi

## --- test -----------------------------------------------------------------------------

# Each test layer keeps its output in .run/<layer>.log; `make test` ends with the count of tests
# every layer ran, and fails if one ran none (scripts/test_summary.py).
test-unit:
	@mkdir -p $(RUN_DIR)
	set -o pipefail; cargo test --workspace --all-targets 2>&1 | tee $(RUN_DIR)/test-unit.log

test-e2e: build build-fault deps deps-peers
	set -o pipefail; $(VENV)/bin/pytest -q tests/e2e 2>&1 | tee $(RUN_DIR)/test-e2e.log

# One view of every message against real parsers: the corpus and thousands of generated mutations
# through the filter's classifier and the Python mcp 2.3.0, TS SDK v2 and TS SDK 1.x servers
# (tests/differential/); whatever an SDK executes of what the filter forwards must be what it read.
test-differential: build deps deps-node
	@mkdir -p $(RUN_DIR)
	set -o pipefail; $(VENV)/bin/pytest -q -s tests/differential 2>&1 | tee $(RUN_DIR)/test-differential.log

test-summary:
	@$(PY) scripts/test_summary.py $(RUN_DIR)

# Every layer: formatting, clippy, native unit + corpus + fake host, the corpus on wasm32 under Node, every Envoy
# config validated with the fresh .wasm, e2e through real Envoy with real peers, and the official
# conformance suite (direct vs through the gateway).
test: deps fmt-check clippy test-unit test-wasm32 validate test-differential test-e2e test-conformance test-summary

-include mk/*.mk
