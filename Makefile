# `make test` is the project's test command (CI runs it through .ci/run).
# Extra arguments: make test ARGS='-run TestX ./store/...'
.PHONY: test test-harness build

test:
	scripts/test.sh $(ARGS)

# Proves that scripts/test.sh starts and removes private PostgreSQL/Redis.
test-harness:
	scripts/test-harness-check.sh

build:
	go build -o bin/groupgate ./cmd/groupgate
