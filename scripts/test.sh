#!/usr/bin/env bash
# Run groupgate's checks against real PostgreSQL and Redis.
#
#   scripts/test.sh                       go vet ./... && go test -race -count=1 ./...
#                                         && scripts/fuzz.sh (each fuzz target briefly)
#   scripts/test.sh -run TestX ./store/... vet and test only ./store/..., with -run TestX
#
# Arguments that name packages (., ./x, ../x, ./x/..., or module paths) select
# the packages for both go vet and go test (default ./...); every other
# argument is passed to go test only, after -race -count=1, so -count=3 wins.
#
# Services: PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth) and Redis
# at 127.0.0.1:6379 are used when they answer. Otherwise a private instance
# is started on a free loopback port in a temporary directory and removed on
# exit. Missing server binaries are installed with apt-get (as root), and so
# are Chromium and chromedriver for the browser test of ./cmd/groupgate, and
# nginx for its reverse-proxy tests (which also get a Caddy built with go).
# The tests get them through GROUPGATE_TEST_POSTGRES (admin DSN) and
# GROUPGATE_TEST_REDIS (host:port), read by internal/testenv. Tests that
# need a Redis Cluster or Sentinel, or kill Redis, start private servers
# from redis-server and redis-cli (installed here when missing).
#
# Environment:
#   GROUPGATE_FORCE_PRIVATE=1   ignore shared instances; always start private ones
#   GROUPGATE_KEEP_TMP=1        keep the temporary directory (logs) on exit
#   GROUPGATE_PROXY_TRAEFIK=0   do not build Traefik (its test skips; fails under CI=true)
#   GROUPGATE_PROXY_CACHE=DIR   where built proxies are kept (default ~/.cache/groupgate/proxies)
#   GROUPGATE_TEST_CADDY, _TRAEFIK, _NGINX, _ENVOY, _OAUTH2_PROXY=PATH   use this binary
#                               (oauth2-proxy: the ./bench comparison, built into the cache too)
set -euo pipefail

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

cd "$(dirname "$0")/.."

tmp=""
pg_data=""
redis_pidfile=""

cleanup() {
	local status=$?
	if [[ -n "$pg_data" && -f "$pg_data/postmaster.pid" ]]; then
		log "stopping private PostgreSQL"
		as_pg "$PG_BIN/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [[ -n "$redis_pidfile" && -f "$redis_pidfile" ]]; then
		log "stopping private Redis"
		local pid
		pid=$(cat "$redis_pidfile")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	if [[ -n "$tmp" ]]; then
		if [[ "${GROUPGATE_KEEP_TMP:-}" == 1 ]]; then
			log "kept $tmp"
		else
			rm -rf "$tmp"
		fi
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

is_root() { [[ "$(id -u)" == 0 ]]; }

# as_pg runs a PostgreSQL server tool: as the postgres OS user when we are
# root, because initdb and postgres refuse to run as root.
as_pg() {
	if is_root; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# port_open HOST PORT: something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

free_port() {
	local port
	for _ in $(seq 200); do
		port=$((20000 + RANDOM % 20000))
		if ! port_open 127.0.0.1 "$port"; then
			echo "$port"
			return
		fi
	done
	die "no free loopback port found"
}

apt_updated=""
apt_install() {
	is_root || die "missing $*; install them (apt-get install -y $*) or run as root"
	command -v apt-get >/dev/null || die "missing $* and no apt-get to install them"
	if [[ -z "$apt_updated" ]]; then
		log "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
		apt_updated=1
	fi
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
}

find_pg_bin() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
			echo "$d"
			return
		fi
	done
}

make_tmp() {
	if [[ -z "$tmp" ]]; then
		tmp=$(mktemp -d "${TMPDIR:-/tmp}/groupgate-test.XXXXXX")
		chmod 755 "$tmp"
	fi
}

shared_postgres_ok() {
	[[ "${GROUPGATE_FORCE_PRIVATE:-}" == 1 ]] && return 1
	port_open 127.0.0.1 5432 || return 1
	# Reachable is not enough: the tests need trust auth as postgres.
	if command -v psql >/dev/null; then
		PGCONNECT_TIMEOUT=5 psql -w -X -q -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1
	fi
}

shared_redis_ok() {
	[[ "${GROUPGATE_FORCE_PRIVATE:-}" == 1 ]] && return 1
	port_open 127.0.0.1 6379 || return 1
	if command -v redis-cli >/dev/null; then
		[[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == PONG ]]
	fi
}

start_private_postgres() {
	PG_BIN=$(find_pg_bin)
	if [[ -z "$PG_BIN" ]]; then
		apt_install postgresql
		PG_BIN=$(find_pg_bin)
		[[ -n "$PG_BIN" ]] || die "postgresql installed but no initdb under /usr/lib/postgresql/*/bin"
	fi
	if is_root && ! id postgres >/dev/null 2>&1; then
		useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
	fi
	make_tmp
	local port
	port=$(free_port)
	pg_data="$tmp/pg"
	mkdir -p "$pg_data"
	if is_root; then chown postgres: "$pg_data"; fi
	chmod 700 "$pg_data"
	log "starting private PostgreSQL on 127.0.0.1:$port in $pg_data"
	as_pg "$PG_BIN/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --no-locale >"$tmp/initdb.log" 2>&1 ||
		{ cat "$tmp/initdb.log" >&2; die "initdb failed"; }
	# Durability is pointless for throw-away test data; speed is not.
	as_pg "$PG_BIN/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w -t 60 start -o \
		"-p $port -k $pg_data -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null ||
		{ cat "$pg_data/server.log" >&2; die "private PostgreSQL did not start"; }
	log "private PostgreSQL pid $(head -1 "$pg_data/postmaster.pid")"
	export GROUPGATE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
}

start_private_redis() {
	if ! command -v redis-server >/dev/null; then
		apt_install redis-server
	fi
	make_tmp
	local port
	port=$(free_port)
	redis_pidfile="$tmp/redis.pid"
	log "starting private Redis on 127.0.0.1:$port in $tmp"
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
		--daemonize yes --pidfile "$redis_pidfile" --logfile "$tmp/redis.log" >/dev/null
	for _ in $(seq 100); do
		if [[ -s "$redis_pidfile" ]] && port_open 127.0.0.1 "$port"; then
			log "private Redis pid $(cat "$redis_pidfile")"
			export GROUPGATE_TEST_REDIS="127.0.0.1:$port"
			return
		fi
		sleep 0.1
	done
	cat "$tmp/redis.log" >&2 || true
	die "private Redis did not start"
}

command -v go >/dev/null || die "go is not installed (groupgate needs Go 1.26; see go.mod)"

if shared_postgres_ok; then
	log "using PostgreSQL at 127.0.0.1:5432"
	export GROUPGATE_TEST_POSTGRES="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
else
	start_private_postgres
fi
if shared_redis_ok; then
	log "using Redis at 127.0.0.1:6379"
	export GROUPGATE_TEST_REDIS="127.0.0.1:6379"
else
	start_private_redis
fi
# The Redis Cluster, Sentinel and restart tests start their own private
# servers from Go (session/sessiontest), each in its test's temporary
# directory, killed with the test binary: they need the binaries even when
# a shared Redis answers. redis-server runs the sentinels too (--sentinel);
# redis-cli (a dependency of redis-server) makes the cluster.
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
	apt_install redis-server
fi

pkgs=()
flags=()
for arg in "$@"; do
	case "$arg" in
	. | ./* | ../* | */... | github.com/*) pkgs+=("$arg") ;;
	*) flags+=("$arg") ;;
	esac
done
full_run=0
[[ ${#pkgs[@]} -gt 0 || ${#flags[@]} -gt 0 ]] || full_run=1
[[ ${#pkgs[@]} -gt 0 ]] || pkgs=(./...)

# The browser test in ./cmd/groupgate drives a headless Chromium through
# chromedriver. Install both when a selected package pattern may include it;
# without them that test skips locally and fails under CI=true.
have_chromium() {
	command -v chromedriver >/dev/null || return 1
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null
}
selects_cmd() {
	local p
	for p in "${pkgs[@]}"; do
		case "$p" in
		./... | ./cmd | ./cmd/* | github.com/groupgate/groupgate/... | github.com/groupgate/groupgate/cmd*) return 0 ;;
		esac
	done
	return 1
}
if selects_cmd && ! have_chromium; then
	if is_root && command -v apt-get >/dev/null; then
		apt_install chromium chromium-driver
	else
		log "Chromium and chromedriver are missing and cannot be installed here: the browser test will skip (and fail under CI=true)"
	fi
fi

# The README walkthrough and dev banner tests run their shell blocks with
# bash, curl and jq, as a newcomer would.
if selects_cmd && ! command -v jq >/dev/null; then
	if is_root && command -v apt-get >/dev/null; then
		apt_install jq curl
	else
		log "jq is missing and cannot be installed here: the README walkthrough test will skip (and fail under CI=true)"
	fi
fi

# The proxy tests in ./cmd/groupgate (TestProxiesRunTheREADMERecipes) run
# the README's recipes (deploy/proxies/) with real reverse proxies: nginx
# from apt, Caddy and Traefik built with the Go toolchain into a cache
# directory that later runs reuse (Traefik's first build is long, about 13
# minutes on two cores; GROUPGATE_PROXY_TRAEFIK=0 leaves it out, and its
# test then skips, or fails under CI=true). Envoy has no package here: its test skips
# with the reason (set GROUPGATE_TEST_ENVOY to a binary to run it).
# The builds run in the background while go vet does.
caddy_version=v2.11.9
traefik_version=v3.6.12
proxy_cache="${GROUPGATE_PROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/groupgate/proxies}"
proxy_builds=()
have_nginx() { command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]]; }
# build_proxy NAME BINARY COMMAND...: run COMMAND in the background unless
# BINARY exists; the test gets BINARY through GROUPGATE_TEST_<NAME>.
build_proxy() {
	local name=$1 bin=$2
	shift 2
	local env="GROUPGATE_TEST_${name^^}"
	if [[ -n "${!env:-}" ]]; then
		log "$name: using \$$env=${!env}"
		return
	fi
	export "$env=$bin"
	[[ -x "$bin" ]] && { log "$name: using $bin"; return; }
	make_tmp
	log "$name: building $bin in the background (log: $tmp/build-$name.log)"
	mkdir -p "$(dirname "$bin")"
	("$@" >"$tmp/build-$name.log" 2>&1) &
	proxy_builds+=("$name:$!")
}
wait_proxy_builds() {
	local b
	for b in "${proxy_builds[@]}"; do
		if wait "${b#*:}"; then
			log "${b%%:*}: built"
		else
			tail -n 20 "$tmp/build-${b%%:*}.log" >&2 || true
			log "${b%%:*}: build failed: its test will skip (and fail under CI=true)"
		fi
	done
}
# build_in_module MODULE@VERSION PKG OUT: build PKG inside the downloaded
# module (Traefik's and oauth2-proxy's go.mod have replace directives, so
# `go install pkg@version` refuses them).
build_in_module() {
	local dir
	dir=$(go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	[[ -n "$dir" ]] || return 1
	(cd "$dir" && GOFLAGS=-buildvcs=false go build -trimpath -o "$3.building" "$2") && mv "$3.building" "$3"
}
build_traefik() { build_in_module "github.com/traefik/traefik/v3@$traefik_version" ./cmd/traefik "$1"; }
if selects_cmd; then
	if ! have_nginx; then
		if is_root && command -v apt-get >/dev/null; then
			apt_install nginx
		else
			log "nginx is missing and cannot be installed here: its proxy test will skip (and fail under CI=true)"
		fi
	fi
	build_proxy caddy "$proxy_cache/caddy-$caddy_version/caddy" \
		env GOBIN="$proxy_cache/caddy-$caddy_version" GOFLAGS=-buildvcs=false go install "github.com/caddyserver/caddy/v2/cmd/caddy@$caddy_version"
	if [[ "${GROUPGATE_PROXY_TRAEFIK:-1}" != 0 ]]; then
		build_proxy traefik "$proxy_cache/traefik-$traefik_version/traefik" build_traefik "$proxy_cache/traefik-$traefik_version/traefik"
	fi
fi

# The harness's comparison with oauth2-proxy (./bench) has a test with the
# real binary: built once into the same cache (a few minutes, in the
# background like the proxies).
oauth2_proxy_version=v7.6.0
selects_bench() {
	local p
	for p in "${pkgs[@]}"; do
		case "$p" in
		./... | ./bench | ./bench/... | github.com/groupgate/groupgate/... | github.com/groupgate/groupgate/bench*) return 0 ;;
		esac
	done
	return 1
}
if selects_bench; then
	build_proxy oauth2_proxy "$proxy_cache/oauth2-proxy-$oauth2_proxy_version/oauth2-proxy" \
		build_in_module "github.com/oauth2-proxy/oauth2-proxy/v7@$oauth2_proxy_version" . "$proxy_cache/oauth2-proxy-$oauth2_proxy_version/oauth2-proxy"
fi

log "go vet ${pkgs[*]}"
go vet "${pkgs[@]}"
wait_proxy_builds
log "go test -race -count=1 ${flags[*]} ${pkgs[*]}"
status=0
go test -race -count=1 "${flags[@]}" "${pkgs[@]}" || status=$?
# The whole suite also fuzzes every target briefly (GROUPGATE_FUZZTIME,
# default 3s each; 0 skips); scripts/fuzz.sh 10m is the long run.
if [[ $status == 0 && $full_run == 1 && "${GROUPGATE_FUZZTIME:-3s}" != 0 ]]; then
	log "fuzz every target for ${GROUPGATE_FUZZTIME:-3s}"
	scripts/fuzz.sh "${GROUPGATE_FUZZTIME:-3s}" || status=$?
fi
exit "$status"
