# `make test` is the project's test command (CI runs it through .ci/run).
# Extra arguments: make test ARGS='-run TestX ./store/...'
.PHONY: test test-harness build bench

test:
	scripts/test.sh $(ARGS)

# Proves that scripts/test.sh starts and removes private PostgreSQL/Redis.
test-harness:
	scripts/test-harness-check.sh

build:
	go build -o bin/groupgate ./cmd/groupgate

# Issue 15's performance table (docs/benchmarks.md): quick by default,
# make bench ARGS=-long for the long mode. Needs PostgreSQL and Redis as
# the tests do.
bench:
	go run ./bench $(ARGS)
