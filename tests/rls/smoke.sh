#!/usr/bin/env bash
# `make rls-smoke`: Redis (from .deps/redis) and warden-rls on free ports, a few ShouldRateLimit
# calls through rls-probe checked against a 3-per-minute limit, then both stopped by PID.
#
# usage: tests/rls/smoke.sh RLS_BIN_DIR REDIS_SERVER
set -euo pipefail
bin=${1:?usage: smoke.sh RLS_BIN_DIR REDIS_SERVER}
redis_server=${2:?usage: smoke.sh RLS_BIN_DIR REDIS_SERVER}
tmp=$(mktemp -d)
redis_pid= rls_pid=

cleanup() {
  for pid in $rls_pid $redis_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for WHAT CMD...: up to 10 s
  local what=$1; shift
  for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "rls-smoke: $what did not come up" >&2; exit 1
}

redis_port=$(free_port)
"$redis_server" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
wait_for redis bash -c "exec 3<>/dev/tcp/127.0.0.1/$redis_port && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG"

cat >"$tmp/limits.json" <<JSON
[{"namespace": "smoke", "max_value": 3, "seconds": 60, "conditions": [], "variables": ["principal"], "name": "per-principal"}]
JSON
rls_port=$(free_port)
"$bin/warden-rls" --listen "127.0.0.1:$rls_port" --redis "redis://127.0.0.1:$redis_port" --limits "$tmp/limits.json" \
  --verbose >"$tmp/rls.out" 2>"$tmp/rls.err" &
rls_pid=$!
wait_for warden-rls grep -q '^listening on ' "$tmp/rls.out"
cat "$tmp/rls.out"

failures=0
# check EXPECTED PROBE-ARGS...: EXPECTED is "<overall> <status code>/<remaining> ..."
check() {
  local want=$1; shift
  local out got
  out=$("$bin/rls-probe" --addr "127.0.0.1:$rls_port" --domain smoke "$@" || true)
  got=$(python3 -c 'import json, sys
r = json.loads(sys.argv[1])
print(" ".join([r.get("overall_code", "ERROR:" + str(r.get("grpc_code")))] + ["%s/%s" % (s["code"], s["limit_remaining"]) for s in r.get("statuses", [])]))' "$out")
  if [ "$got" = "$want" ]; then echo "ok   $* -> $out"; else echo "FAIL $* -> $out (want $want)"; failures=$((failures + 1)); fi
}

check "OK OK/1"                --hits 2 --entry principal=alice
check "OVER_LIMIT OVER_LIMIT/1" --hits 2 --entry principal=alice   # over: not counted...
check "OK OK/0"                --entry principal=alice             # ...so one more still fits
check "OVER_LIMIT OVER_LIMIT/0" --entry principal=alice
check "OK OK/2"                --entry principal=bob --entry kind=tool
check "OK OK/0"                --hits 1 --entry principal=dave --descriptor-hits 3   # the descriptor's own hits win
check "OVER_LIMIT OVER_LIMIT/0" --entry principal=dave
check "OVER_LIMIT OK/1 OVER_LIMIT/0" --entry principal=bob --next-descriptor --entry principal=alice
check "OK OK/0"                --entry unrelated=1                # no limit applies
echo "redis dbsize: $("$(dirname "$redis_server")/redis-cli" -p "$redis_port" dbsize)"

# Redis gone: the call fails with UNAVAILABLE (Envoy's failure_mode_deny then decides).
kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; redis_pid=
check "ERROR:Unavailable" --entry principal=carol

kill -TERM "$rls_pid"
rc=0; wait "$rls_pid" || rc=$?; rls_pid=
echo "warden-rls exited $rc on SIGTERM; its log:"; sed 's/^/  /' "$tmp/rls.err"
[ "$rc" = 0 ] || failures=$((failures + 1))
if [ "$failures" -gt 0 ]; then echo "rls-smoke: $failures failed"; exit 1; fi
echo "rls-smoke: all passed"
