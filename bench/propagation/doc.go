// Package propagation benchmarks how long a mapping removal takes to reach
// every live session: 10,000 users, each with a Redis session, in one
// mapped group. It has no production code; run it with go test -bench.
package propagation
