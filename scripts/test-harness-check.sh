#!/usr/bin/env bash
# Prove scripts/test.sh's private-instance path for real: force private
# PostgreSQL and Redis, run tests that need both with CI=true (so they fail
# rather than skip without them), then check that both servers and their
# temporary directory are gone.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp)
trap 'rm -f "$out"' EXIT

status=0
CI=true GROUPGATE_FORCE_PRIVATE=1 scripts/test.sh -v \
	-run 'TestTokenCreate|TestServeWithRealRedisIsReady' ./cmd/groupgate 2>&1 | tee "$out" || status=$?

fail() { echo "test-harness-check: FAIL: $*" >&2; exit 1; }

[[ $status == 0 ]] || fail "scripts/test.sh exited $status"
grep -q -- '--- PASS: TestTokenCreate/on_PostgreSQL' "$out" || fail "the PostgreSQL test did not pass"
grep -q -- '--- PASS: TestServeWithRealRedisIsReady' "$out" || fail "the Redis test did not pass"

pg_line=$(grep -o 'starting private PostgreSQL on 127.0.0.1:[0-9]* in [^ ]*' "$out") || fail "no private PostgreSQL was started"
redis_line=$(grep -o 'starting private Redis on 127.0.0.1:[0-9]* in [^ ]*' "$out") || fail "no private Redis was started"
pg_port=$(sed 's/.*127.0.0.1:\([0-9]*\).*/\1/' <<<"$pg_line")
redis_port=$(sed 's/.*127.0.0.1:\([0-9]*\).*/\1/' <<<"$redis_line")
dir=$(sed 's/.* in //' <<<"$redis_line")
pg_pid=$(grep -o 'private PostgreSQL pid [0-9]*' "$out" | awk '{print $4}')
redis_pid=$(grep -o 'private Redis pid [0-9]*' "$out" | awk '{print $4}')

[[ $pg_port != 5432 && $redis_port != 6379 ]] || fail "private instances used the shared ports"
for pid in "$pg_pid" "$redis_pid"; do
	[[ -n $pid ]] || fail "a private service's pid was not reported"
	! kill -0 "$pid" 2>/dev/null || fail "process $pid is still running"
done
for port in "$pg_port" "$redis_port"; do
	! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || fail "something still listens on $port"
done
[[ ! -e $dir ]] || fail "$dir was not removed"
echo "test-harness-check: ok (PostgreSQL on $pg_port pid $pg_pid, Redis on $redis_port pid $redis_pid, both stopped, $dir removed)"
