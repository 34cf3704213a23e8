## --- fuzz (not part of `make test`): coverage-guided fuzzing of the wire layer ------------------
# make fuzz                 every target in fuzz/fuzz_targets for FUZZ_SECONDS each (default 60)
# make fuzz FUZZ_TARGETS=sse_decoder FUZZ_SECONDS=600
# cargo-fuzz is installed once into .tools/; it needs nightly flags, which the stable toolchain
# accepts with RUSTC_BOOTSTRAP=1. A crash stops the run and leaves its input in
# fuzz/artifacts/<target>/ (keep it as a fixture once fixed).

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= classify_body sse_decoder list_filter uri_normalize content_scan correlate
CARGO_FUZZ   := .tools/bin/cargo-fuzz

.PHONY: fuzz

$(CARGO_FUZZ):
	cargo install --root .tools --locked cargo-fuzz --version 0.13.1 || cargo install --root .tools cargo-fuzz --version 0.13.1

fuzz: $(CARGO_FUZZ)
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  mkdir -p fuzz/corpus/$$t; \
	  RUSTC_BOOTSTRAP=1 $(CARGO_FUZZ) run --fuzz-dir fuzz $$t fuzz/corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=5 -rss_limit_mb=1024 -malloc_limit_mb=256 || exit 1; \
	done
