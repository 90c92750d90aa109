// Package store defines groupgate's durable state behind one interface, the
// union of small per-noun interfaces that callers ask for one at a time.
// Backends live in store/sqlite and store/postgres and pass store/storetest.
// It knows none of its consumers: no HTTP, no sessions, no access rules.
package store
