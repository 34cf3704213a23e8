# A real Envoy global rate limit service for the e2e tests: tests/rls/ (warden-rls = Kuadrant's
# limitador behind envoy.service.ratelimit.v3.RateLimitService, and rls-probe, a one-shot client),
# its own cargo project built into target/rls, with its counters in Debian's redis-server
# unpacked project-locally into the git-ignored .deps/redis (no system-wide install).
# tests/e2e/rls_service.py starts both for a test.

RLS_DIR       := target/rls
RLS_BIN       := $(RLS_DIR)/release/warden-rls
RLS_PROBE     := $(RLS_DIR)/release/rls-probe
RLS_LIMITADOR := $(RLS_DIR)/vendor/limitador-0.14.0
REDIS_DIR     := .deps/redis
REDIS_SERVER  := $(REDIS_DIR)/bin/redis-server
RLS_SRC       := tests/rls/Cargo.toml tests/rls/Cargo.lock $(wildcard tests/rls/src/*.rs tests/rls/src/bin/*.rs)

.PHONY: deps-redis rls rls-smoke

# apt-get download + dpkg -x of redis-server, redis-tools and the libraries the machine lacks.
$(REDIS_DIR)/.stamp: tests/rls/fetch-redis.sh
	tests/rls/fetch-redis.sh $(REDIS_DIR)
	touch $@

deps-redis: $(REDIS_DIR)/.stamp

# The published limitador 0.14.0 with two cfgs widened (see tests/rls/patch-limitador.sh).
$(RLS_LIMITADOR)/.stamp: tests/rls/patch-limitador.sh
	tests/rls/patch-limitador.sh $(RLS_DIR)/vendor
	touch $@

$(RLS_DIR)/.stamp: $(RLS_LIMITADOR)/.stamp $(RLS_SRC)
	cargo build --release --locked --manifest-path tests/rls/Cargo.toml --target-dir $(RLS_DIR)
	touch $@

rls: $(RLS_DIR)/.stamp

# Redis + warden-rls on free ports, a few ShouldRateLimit calls through rls-probe (OK until the
# limit, OVER_LIMIT after it, over-limit calls not counted, UNAVAILABLE once Redis is gone), then
# both stopped by PID.
rls-smoke: rls deps-redis
	tests/rls/smoke.sh $(RLS_DIR)/release $(REDIS_SERVER)

# The e2e layer's correlation tests start warden-rls and Redis (tests/e2e/test_correlation.py).
test-e2e: rls deps-redis
