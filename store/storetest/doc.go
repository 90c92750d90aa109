// Package storetest is the one conformance suite every store.Store backend
// must pass (Run) and the benchmarks they share (Bench), both built from the
// store contract. It owns no storage and must not reach into a backend's SQL.
package storetest
