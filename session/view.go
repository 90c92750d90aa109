package session

import "sync/atomic"

// View is a session record shared by its readers: the local cache hands
// the same View to every hit on an entry until the entry is dropped (an
// invalidation, the TTL), so whoever holds one must not change its record.
// Load hands out copies for callers that want to change them; a View is
// for the forward-auth hot path, which only reads.
//
// A View also keeps one value derived from its record, computed by the
// first reader that asks for it (web renders the identity headers there),
// so that every later hit reuses it. Since a change to the session drops
// the cache entry, and with it the View, a derived value never outlives
// the record it was computed from.
type View struct {
	rec     *Record
	derived atomic.Pointer[derivedValue]
}

type derivedValue struct{ v any }

// Record is the shared record: read it, never change it.
func (v *View) Record() *Record { return v.rec }

// Derived returns the value build computed from the record, calling
// build at most once per View unless readers race on the first call (then
// one result wins and is kept). Every caller of one View must pass the
// same build: the View keeps one value, not one per function.
func (v *View) Derived(build func(*Record) any) any {
	if d := v.derived.Load(); d != nil {
		return d.v
	}
	d := &derivedValue{v: build(v.rec)}
	if v.derived.CompareAndSwap(nil, d) {
		return d.v
	}
	return v.derived.Load().v
}
