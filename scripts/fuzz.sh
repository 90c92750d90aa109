#!/usr/bin/env bash
# Run every fuzz target of the module for a bounded time each.
#
#   scripts/fuzz.sh            each target for $GROUPGATE_FUZZTIME (default 3s)
#   scripts/fuzz.sh 10m        each target for 10 minutes (a long run)
#   scripts/fuzz.sh 30s ./scim/...   only the targets under ./scim
#
# scripts/test.sh runs it after the tests with the short default. Targets
# that need PostgreSQL (FuzzSCIMBodies) read GROUPGATE_TEST_POSTGRES like
# the tests do. A crasher is written under the package's testdata/fuzz/
# and the script fails; commit the file as a seed once the bug is fixed.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${1:-${GROUPGATE_FUZZTIME:-3s}}"
shift || true
pkgs=("$@")
[[ ${#pkgs[@]} -gt 0 ]] || pkgs=(./...)

log() { printf 'fuzz.sh: %s\n' "$*" >&2; }

targets=0
start=$SECONDS
while read -r pkg; do
	# go test -list prints the matching names, then "ok <pkg> <time>".
	while read -r name; do
		[[ "$name" == Fuzz* ]] || continue
		targets=$((targets + 1))
		log "$pkg $name for $fuzztime"
		for try in 1 2; do
			if out=$(go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg" 2>&1); then
				break
			fi
			# Go's fuzzer can stop with "context deadline exceeded" when a
			# worker is busy as fuzztime ends; that is no finding (nothing
			# is written under testdata/fuzz), so try once more.
			if [[ $try == 1 && "$out" == *"context deadline exceeded"* && "$out" != *"Failing input written"* ]]; then
				log "$pkg $name: the fuzzer timed out winding down; again"
				continue
			fi
			printf '%s\n' "$out" >&2
			log "FAIL: $pkg $name"
			exit 1
		done
	done < <(go test -list '^Fuzz' "$pkg" 2>/dev/null)
done < <(go list "${pkgs[@]}")
log "$targets targets fuzzed in $((SECONDS - start))s"
[[ $targets -gt 0 ]] || { log "no fuzz targets found"; exit 1; }
