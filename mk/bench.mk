## --- bench (not part of `make test`): A/B against bare Envoy; see bench/README.md -------------
# make bench           warden vs bare Envoy: 1 KB modern + legacy tools/call, 1 and 16 connections
# make bench-profile   where the time goes: profiling filter modes, native classify_body timing
#                      and callgrind instruction counts
# Knobs (environment): BENCH_DURATION (s, default 8), BENCH_WARMUP (2), BENCH_REPS (5),
# BENCH_CONNS (1,16), BENCH_PAYLOADS (modern,legacy), BENCH_NICE (0).

BENCH_TARGET_DIR := target/bench
BENCH_REPS       ?= 5
export BENCH_REPS

.PHONY: bench-deps bench-profile bench-profile-build

bench-deps:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	@command -v taskset >/dev/null || { apt-get update -qq && apt-get install -y -qq util-linux; }

bench: deps-py deps-rust bench-deps
	cargo build --release --target wasm32-wasip1 --lib
	$(PY) bench/run.py

bench-profile-build: deps-rust
	cargo build --release --target wasm32-wasip1 --lib
	cargo build --release --target wasm32-wasip1 --manifest-path bench/profile-filter/Cargo.toml --target-dir $(BENCH_TARGET_DIR)
	cargo build --release --manifest-path bench/native/Cargo.toml --target-dir $(BENCH_TARGET_DIR)

bench-profile: deps-py bench-deps bench-profile-build
	@command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
	$(PY) bench/profile.py
