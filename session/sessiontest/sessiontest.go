// Package sessiontest is the one conformance suite every session.Backend
// passes, with a Clock that tests move instead of sleeping. It owns no
// production code and must not be imported outside tests.
package sessiontest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
)

// Clock is a manually moved clock; pass its Now to session.WithNow.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// start is a fixed instant: backends must judge expiry by the injected
// clock only, whatever the wall clock says.
var start = time.Date(2031, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

// NewBackend builds a fresh, empty backend whose clock is clock.Now.
type NewBackend func(t *testing.T, clock *Clock) session.Backend

type env struct {
	t     *testing.T
	ctx   context.Context
	clock *Clock
	b     session.Backend
}

// Run runs the conformance suite; every subtest gets its own backend.
func Run(t *testing.T, newBackend NewBackend) {
	tests := []struct {
		name string
		fn   func(e *env)
	}{
		{"a saved session loads back unchanged", testRoundTrip},
		{"a loaded record is a copy that callers may change", testCopies},
		{"saving again overwrites the session", testOverwrite},
		{"unknown and malformed IDs are not found", testUnknownIDs},
		{"save refuses records it must not keep", testSaveRefuses},
		{"a session is gone once the clock reaches its expiry", testExpiry},
		{"a deleted session is gone and deleting twice is fine", testDelete},
		{"listing returns the user's live sessions oldest first and no one else's", testList},
		{"ending all sessions of a user ends exactly theirs", testDeleteUser},
		{"new memberships reach every live session of the user and no other", testSetMemberships},
		{"new memberships for a user without sessions rewrite nothing", testSetMembershipsNone},
		{"generations grow per user and each user has its own", testGenerations},
		{"a rewrite holding the user's latest generation applies to every live session", testSetIfCurrent},
		{"a rewrite holding an older generation is skipped, not failed, and changes nothing", testSetIfStale},
		{"a rewrite for a user without sessions applies and rewrites nothing", testSetIfNone},
		{"of concurrent writers, the one that took the latest generation is the snapshot left", testSetIfConcurrent},
		{"a batch of rewrites applies current generations, skips stale ones and touches users without sessions not at all", testBatchMixed},
		{"an empty batch returns no results", testBatchEmpty},
		{"of writers mixing batches and single rewrites, the one that took the latest generation is the snapshot left", testBatchConcurrent},
		{"a login attempt can be taken once", testAttemptOnce},
		{"a login attempt expires with the clock", testAttemptExpiry},
		{"a login attempt needs a positive lifetime", testAttemptTTL},
		{"a replay key is fresh once until its time passes", testRemember},
		{"parallel saves and deletes for one user keep the index exact", testConcurrentIndex},
		{"ending all sessions during logins never leaves an unlisted session", testConcurrentEndAll},
		{"membership rewrites racing logouts never bring a session back", testRewriteVsLogout},
		{"ping succeeds on a reachable backend", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := NewClock(start)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			t.Cleanup(cancel)
			tt.fn(&env{t: t, ctx: ctx, clock: clock, b: newBackend(t, clock)})
		})
	}
}

// record returns a complete session for userID created now, living ttl.
func (e *env) record(userID string, ttl time.Duration) *session.Record {
	e.t.Helper()
	id, err := session.NewID(userID)
	if err != nil {
		e.t.Fatalf("NewID(%q): %v", userID, err)
	}
	now := e.clock.Now()
	return &session.Record{
		ID:       id,
		UserID:   userID,
		Provider: "okta",
		Identity: groupgate.Identity{
			Provider: "okta", Subject: "sub-" + userID, Username: userID,
			Email: userID + "@example.com", DisplayName: "User " + userID,
			Groups: []string{"eng-backend", "eng-all"}, GroupsPresent: true,
		},
		IDToken: "eyJhbGciOiJSUzI1NiJ9.e30.sig-" + userID,
		Memberships: groupgate.Memberships{
			Groups:    []string{"eng-all", "eng-backend"},
			OrgRoles:  map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember},
			RepoRoles: map[string]groupgate.RepoRole{"acme/api": groupgate.RepoRoleWrite},
		},
		CreatedAt: now,
		ExpiresAt: now.Add(ttl),
	}
}

func (e *env) save(rec *session.Record) {
	e.t.Helper()
	if err := e.b.Save(e.ctx, rec); err != nil {
		e.t.Fatalf("Save(%s): %v", rec.UserID, err)
	}
}

func (e *env) load(id string) *session.Record {
	e.t.Helper()
	rec, err := e.b.Load(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Load: %v", err)
	}
	return rec
}

func (e *env) wantCode(err error, code groupgate.ErrorCode, what string) {
	e.t.Helper()
	if got := groupgate.ErrorCodeOf(err); got != code {
		e.t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func (e *env) wantNotFound(id string) {
	e.t.Helper()
	rec, err := e.b.Load(e.ctx, id)
	if rec != nil {
		e.t.Fatalf("Load returned a record for a session that should be gone")
	}
	e.wantCode(err, groupgate.NotFound, "Load")
}

// sameRecord compares through JSON, the form backends store, so time
// representations that are Equal compare equal.
func sameRecord(t *testing.T, got, want *session.Record) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Fatalf("record differs\n got: %s\nwant: %s", g, w)
	}
}

func ids(recs []*session.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func (e *env) list(userID string) []*session.Record {
	e.t.Helper()
	recs, err := e.b.ListUserSessions(e.ctx, userID)
	if err != nil {
		e.t.Fatalf("ListUserSessions(%s): %v", userID, err)
	}
	return recs
}

func testRoundTrip(e *env) {
	rec := e.record("alice", time.Hour)
	e.save(rec)
	sameRecord(e.t, e.load(rec.ID), rec)
}

func testCopies(e *env) {
	rec := e.record("alice", time.Hour)
	e.save(rec)
	want := e.record("alice", time.Hour)
	want.ID = rec.ID
	// Changing the saved value or a loaded one must not reach storage.
	rec.Memberships.Groups[0] = "changed-after-save"
	got := e.load(rec.ID)
	got.Memberships.OrgRoles["acme"] = groupgate.OrgRoleAdmin
	got.Identity.Groups = nil
	sameRecord(e.t, e.load(rec.ID), want)
}

func testOverwrite(e *env) {
	rec := e.record("alice", time.Hour)
	e.save(rec)
	rec.Provider = "entra"
	rec.ExpiresAt = rec.ExpiresAt.Add(time.Hour)
	e.save(rec)
	sameRecord(e.t, e.load(rec.ID), rec)
	if n := len(e.list("alice")); n != 1 {
		e.t.Fatalf("overwriting listed %d sessions, want 1", n)
	}
}

func testUnknownIDs(e *env) {
	e.save(e.record("alice", time.Hour))
	unknown, err := session.NewID("alice")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, id := range []string{unknown, "", "garbage", "a.b", unknown + ".x", "{u:x}.y", unknown[:len(unknown)-1] + "*"} {
		e.wantNotFound(id)
	}
}

func testSaveRefuses(e *env) {
	tests := []struct {
		name   string
		change func(r *session.Record)
	}{
		{"a nil record", nil},
		{"an ID issued for another user", func(r *session.Record) { r.UserID = "mallory" }},
		{"an ID not made by NewID", func(r *session.Record) { r.ID = "chosen-by-attacker" }},
		{"a record without a user", func(r *session.Record) { r.UserID = "" }},
		{"a record already expired", func(r *session.Record) { r.ExpiresAt = e.clock.Now() }},
	}
	for _, tt := range tests {
		var rec *session.Record
		if tt.change != nil {
			rec = e.record("alice", time.Hour)
			tt.change(rec)
		}
		e.wantCode(e.b.Save(e.ctx, rec), groupgate.Invalid, "Save of "+tt.name)
	}
	if n := len(e.list("mallory")) + len(e.list("alice")); n != 0 {
		e.t.Fatalf("refused saves left %d sessions", n)
	}
}

func testExpiry(e *env) {
	rec := e.record("alice", time.Hour)
	e.save(rec)
	e.clock.Advance(time.Hour - time.Millisecond)
	e.load(rec.ID)
	e.clock.Advance(time.Millisecond)
	e.wantNotFound(rec.ID)
	if n := len(e.list("alice")); n != 0 {
		e.t.Fatalf("expired session still listed (%d)", n)
	}
}

func testDelete(e *env) {
	rec := e.record("alice", time.Hour)
	other := e.record("alice", time.Hour)
	e.save(rec)
	e.save(other)
	for range 2 {
		if err := e.b.Delete(e.ctx, rec.ID); err != nil {
			e.t.Fatalf("Delete: %v", err)
		}
	}
	e.wantNotFound(rec.ID)
	e.load(other.ID)
	if got := ids(e.list("alice")); !slices.Equal(got, []string{other.ID}) {
		e.t.Fatalf("after delete listed %v, want only the other session", got)
	}
	if err := e.b.Delete(e.ctx, "garbage"); err != nil {
		e.t.Fatalf("Delete of a malformed ID: %v", err)
	}
}

func testList(e *env) {
	first := e.record("alice", 3*time.Hour)
	e.save(first)
	e.clock.Advance(time.Minute)
	short := e.record("alice", time.Hour)
	e.save(short)
	e.clock.Advance(time.Minute)
	last := e.record("alice", 3*time.Hour)
	e.save(last)
	e.save(e.record("bob", 3*time.Hour))

	if got, want := ids(e.list("alice")), ids([]*session.Record{first, short, last}); !slices.Equal(got, want) {
		e.t.Fatalf("listed %v, want %v", got, want)
	}
	e.clock.Advance(time.Hour)
	recs := e.list("alice")
	if got, want := ids(recs), ids([]*session.Record{first, last}); !slices.Equal(got, want) {
		e.t.Fatalf("after one expired, listed %v, want %v", got, want)
	}
	sameRecord(e.t, recs[1], last)
	if got := e.list("nobody"); len(got) != 0 {
		e.t.Fatalf("user without sessions listed %d", len(got))
	}
}

func testDeleteUser(e *env) {
	var alice []*session.Record
	for range 3 {
		r := e.record("alice", 2*time.Hour)
		e.save(r)
		alice = append(alice, r)
	}
	expired := e.record("alice", time.Minute)
	e.save(expired)
	bob := e.record("bob", 2*time.Hour)
	e.save(bob)
	e.clock.Advance(time.Minute)

	n, err := e.b.DeleteUserSessions(e.ctx, "alice")
	if err != nil {
		e.t.Fatalf("DeleteUserSessions: %v", err)
	}
	if n != 3 {
		e.t.Fatalf("DeleteUserSessions ended %d live sessions, want 3", n)
	}
	for _, r := range append(alice, expired) {
		e.wantNotFound(r.ID)
	}
	if got := e.list("alice"); len(got) != 0 {
		e.t.Fatalf("after ending all, %d sessions listed", len(got))
	}
	e.load(bob.ID)
	if n, err := e.b.DeleteUserSessions(e.ctx, "alice"); err != nil || n != 0 {
		e.t.Fatalf("ending all again = %d, %v; want 0, nil", n, err)
	}
	again := e.record("alice", time.Hour)
	e.save(again)
	e.load(again.ID)
}

func testSetMemberships(e *env) {
	a1 := e.record("alice", 2*time.Hour)
	a2 := e.record("alice", 3*time.Hour)
	expired := e.record("alice", time.Minute)
	bob := e.record("bob", 2*time.Hour)
	for _, r := range []*session.Record{a1, a2, expired, bob} {
		e.save(r)
	}
	e.clock.Advance(time.Minute)

	m := groupgate.Memberships{
		Groups:    []string{"bsr-admins"},
		OrgRoles:  map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin, "beta": groupgate.OrgRoleMember},
		RepoRoles: map[string]groupgate.RepoRole{},
	}
	n, err := e.b.SetMemberships(e.ctx, "alice", m)
	if err != nil {
		e.t.Fatalf("SetMemberships: %v", err)
	}
	if n != 2 {
		e.t.Fatalf("SetMemberships rewrote %d sessions, want the 2 live ones", n)
	}
	for _, r := range []*session.Record{a1, a2} {
		want := *r
		want.Memberships = m
		sameRecord(e.t, e.load(r.ID), &want)
	}
	sameRecord(e.t, e.load(bob.ID), bob)
	e.wantNotFound(expired.ID)

	// The rewrite keeps each session's own expiry.
	e.clock.Advance(2*time.Hour - time.Minute)
	e.wantNotFound(a1.ID)
	e.load(a2.ID)
}

func testSetMembershipsNone(e *env) {
	e.save(e.record("bob", time.Hour))
	n, err := e.b.SetMemberships(e.ctx, "alice", groupgate.Memberships{Groups: []string{"x"}})
	if err != nil || n != 0 {
		e.t.Fatalf("SetMemberships for a user without sessions = %d, %v; want 0, nil", n, err)
	}
}

func (e *env) next(userIDs ...string) map[string]int64 {
	e.t.Helper()
	gens, err := e.b.NextGenerations(e.ctx, userIDs)
	if err != nil {
		e.t.Fatalf("NextGenerations(%v): %v", userIDs, err)
	}
	if len(gens) != len(userIDs) {
		e.t.Fatalf("NextGenerations(%v) = %v, want one per user", userIDs, gens)
	}
	return gens
}

func (e *env) setIf(userID string, gen int64, m groupgate.Memberships) (bool, int) {
	e.t.Helper()
	applied, n, err := e.b.SetMembershipsIf(e.ctx, userID, gen, m)
	if err != nil {
		e.t.Fatalf("SetMembershipsIf(%s, %d): %v", userID, gen, err)
	}
	return applied, n
}

func groupsOf(names ...string) groupgate.Memberships {
	return groupgate.Memberships{Groups: names, OrgRoles: map[string]groupgate.OrgRole{}, RepoRoles: map[string]groupgate.RepoRole{}}
}

func testGenerations(e *env) {
	first := e.next("alice", "bob")
	second := e.next("alice")
	if second["alice"] <= first["alice"] {
		e.t.Fatalf("alice's generation went from %d to %d, want it to grow", first["alice"], second["alice"])
	}
	// bob's counter did not move with alice's: his first value still holds.
	bob := e.record("bob", time.Hour)
	e.save(bob)
	if applied, n := e.setIf("bob", first["bob"], groupsOf("b")); !applied || n != 1 {
		e.t.Fatalf("bob's rewrite with his latest generation = %v, %d; want applied to 1 session", applied, n)
	}
	if got := e.next(); len(got) != 0 {
		e.t.Fatalf("NextGenerations() = %v, want empty", got)
	}
}

func testSetIfCurrent(e *env) {
	a1 := e.record("alice", 2*time.Hour)
	a2 := e.record("alice", 3*time.Hour)
	bob := e.record("bob", 2*time.Hour)
	for _, r := range []*session.Record{a1, a2, bob} {
		e.save(r)
	}
	g := e.next("alice")["alice"]
	m := groupsOf("bsr-admins")
	if applied, n := e.setIf("alice", g, m); !applied || n != 2 {
		e.t.Fatalf("SetMembershipsIf = %v, %d; want applied to the 2 live sessions", applied, n)
	}
	for _, r := range []*session.Record{a1, a2} {
		want := *r
		want.Memberships = m
		sameRecord(e.t, e.load(r.ID), &want)
	}
	sameRecord(e.t, e.load(bob.ID), bob)
	// The same generation may write again (a retry after a failure).
	if applied, _ := e.setIf("alice", g, groupsOf("again")); !applied {
		e.t.Fatal("a second write with the still-latest generation was skipped")
	}
}

func testSetIfStale(e *env) {
	a := e.record("alice", time.Hour)
	e.save(a)
	older := e.next("alice")["alice"]
	newer := e.next("alice")["alice"]
	// The older writer comes first but after the newer took its value.
	if applied, n := e.setIf("alice", older, groupsOf("old")); applied || n != 0 {
		e.t.Fatalf("older generation before the newer write = %v, %d; want skipped", applied, n)
	}
	sameRecord(e.t, e.load(a.ID), a)
	if applied, _ := e.setIf("alice", newer, groupsOf("new")); !applied {
		e.t.Fatal("the newest generation's write was skipped")
	}
	if applied, _ := e.setIf("alice", older, groupsOf("old")); applied {
		e.t.Fatal("the older generation overwrote the newer snapshot")
	}
	want := *a
	want.Memberships = groupsOf("new")
	sameRecord(e.t, e.load(a.ID), &want)
	// A generation never taken is not current either.
	if applied, _ := e.setIf("alice", newer+1000, groupsOf("made-up")); applied {
		e.t.Fatal("a generation nobody took was accepted")
	}
}

func testSetIfNone(e *env) {
	e.save(e.record("bob", time.Hour))
	g := e.next("alice")["alice"]
	if applied, n := e.setIf("alice", g, groupsOf("x")); !applied || n != 0 {
		e.t.Fatalf("SetMembershipsIf for a user without sessions = %v, %d; want applied, 0", applied, n)
	}
}

func testSetIfConcurrent(e *env) {
	a := e.record("alice", time.Hour)
	e.save(a)
	const writers = 24
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		latest int64
	)
	for i := range writers {
		wg.Go(func() {
			gens, err := e.b.NextGenerations(e.ctx, []string{"alice"})
			if err != nil {
				e.t.Errorf("NextGenerations: %v", err)
				return
			}
			g := gens["alice"]
			mu.Lock()
			latest = max(latest, g)
			mu.Unlock()
			// Spread the writes so that older ones often land last.
			time.Sleep(time.Duration((writers-i)%5) * time.Millisecond)
			if _, _, err := e.b.SetMembershipsIf(e.ctx, "alice", g, groupsOf(fmt.Sprint(g))); err != nil {
				e.t.Errorf("SetMembershipsIf(%d): %v", g, err)
			}
		})
	}
	wg.Wait()
	if e.t.Failed() {
		return
	}
	if got, want := e.load(a.ID).Memberships.Groups, []string{fmt.Sprint(latest)}; !slices.Equal(got, want) {
		e.t.Fatalf("after %d racing writers the session holds %v, want the latest generation's %v", writers, got, want)
	}
}

func (e *env) setBatch(writes ...session.SnapshotWrite) []session.SnapshotResult {
	e.t.Helper()
	out, err := e.b.SetMembershipsIfBatch(e.ctx, writes)
	if err != nil {
		e.t.Fatalf("SetMembershipsIfBatch: %v", err)
	}
	if len(out) != len(writes) {
		e.t.Fatalf("SetMembershipsIfBatch returned %d results for %d writes", len(out), len(writes))
	}
	return out
}

func testBatchMixed(e *env) {
	a1 := e.record("alice", 2*time.Hour)
	a2 := e.record("alice", 3*time.Hour)
	bob := e.record("bob", time.Hour)
	dave := e.record("dave", time.Hour)
	for _, r := range []*session.Record{a1, a2, bob, dave} {
		e.save(r)
	}
	first := e.next("alice", "bob", "carol", "dave")
	bobNewer := e.next("bob")["bob"]
	out := e.setBatch(
		session.SnapshotWrite{UserID: "alice", Gen: first["alice"], Memberships: groupsOf("a")},
		session.SnapshotWrite{UserID: "bob", Gen: first["bob"], Memberships: groupsOf("stale")},
		session.SnapshotWrite{UserID: "carol", Gen: first["carol"], Memberships: groupsOf("c")},
		session.SnapshotWrite{UserID: "dave", Gen: first["dave"] + 1000, Memberships: groupsOf("made-up")},
	)
	want := []session.SnapshotResult{
		{Applied: true, Sessions: 2}, // alice: current, both sessions
		{},                           // bob: a later generation was taken
		{Applied: true},              // carol: current, no session
		{},                           // dave: a generation nobody took
	}
	for i, w := range want {
		if out[i] != w {
			e.t.Fatalf("result %d = %+v, want %+v (all: %+v)", i, out[i], w, out)
		}
	}
	for _, r := range []*session.Record{a1, a2} {
		w := *r
		w.Memberships = groupsOf("a")
		sameRecord(e.t, e.load(r.ID), &w)
	}
	sameRecord(e.t, e.load(bob.ID), bob)
	sameRecord(e.t, e.load(dave.ID), dave)
	if got := e.list("carol"); len(got) != 0 {
		e.t.Fatalf("carol has %d sessions after a batch rewrite, want none", len(got))
	}
	// bob's newer writer still applies, in a batch of one, and the same
	// users may be written again while their generation is current.
	out = e.setBatch(
		session.SnapshotWrite{UserID: "bob", Gen: bobNewer, Memberships: groupsOf("b")},
		session.SnapshotWrite{UserID: "alice", Gen: first["alice"], Memberships: groupsOf("again")},
	)
	if !out[0].Applied || out[0].Sessions != 1 || out[0].Err != nil || !out[1].Applied || out[1].Sessions != 2 {
		e.t.Fatalf("second batch = %+v, want bob applied to 1 session and alice to 2", out)
	}
	w := *bob
	w.Memberships = groupsOf("b")
	sameRecord(e.t, e.load(bob.ID), &w)
}

func testBatchEmpty(e *env) {
	if out := e.setBatch(); len(out) != 0 {
		e.t.Fatalf("empty batch = %+v, want no results", out)
	}
}

func testBatchConcurrent(e *env) {
	a := e.record("alice", time.Hour)
	b := e.record("bob", time.Hour)
	e.save(a)
	e.save(b)
	const writers = 24
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		latest = map[string]int64{}
	)
	for i := range writers {
		wg.Go(func() {
			gens, err := e.b.NextGenerations(e.ctx, []string{"alice", "bob"})
			if err != nil {
				e.t.Errorf("NextGenerations: %v", err)
				return
			}
			mu.Lock()
			for u, g := range gens {
				latest[u] = max(latest[u], g)
			}
			mu.Unlock()
			time.Sleep(time.Duration((writers-i)%5) * time.Millisecond)
			if i%2 == 0 {
				if _, _, err := e.b.SetMembershipsIf(e.ctx, "alice", gens["alice"], groupsOf(fmt.Sprint(gens["alice"]))); err != nil {
					e.t.Errorf("SetMembershipsIf: %v", err)
				}
			}
			writes := []session.SnapshotWrite{{UserID: "bob", Gen: gens["bob"], Memberships: groupsOf(fmt.Sprint(gens["bob"]))}}
			if i%2 == 1 {
				writes = append(writes, session.SnapshotWrite{UserID: "alice", Gen: gens["alice"], Memberships: groupsOf(fmt.Sprint(gens["alice"]))})
			}
			out, err := e.b.SetMembershipsIfBatch(e.ctx, writes)
			if err != nil {
				e.t.Errorf("SetMembershipsIfBatch: %v", err)
				return
			}
			for _, r := range out {
				if r.Err != nil {
					e.t.Errorf("SetMembershipsIfBatch: %v", r.Err)
				}
			}
		})
	}
	wg.Wait()
	if e.t.Failed() {
		return
	}
	for _, r := range []*session.Record{a, b} {
		if got, want := e.load(r.ID).Memberships.Groups, []string{fmt.Sprint(latest[r.UserID])}; !slices.Equal(got, want) {
			e.t.Fatalf("after %d racing writers %s's session holds %v, want the latest generation's %v", writers, r.UserID, got, want)
		}
	}
}

func testAttemptOnce(e *env) {
	value := []byte(`{"state":"s1","nonce":"n1"}`)
	if err := e.b.PutAttempt(e.ctx, "state-1", value, 10*time.Minute); err != nil {
		e.t.Fatalf("PutAttempt: %v", err)
	}
	want := string(value)
	value[0] = 'X' // the backend must have kept its own copy
	got, err := e.b.TakeAttempt(e.ctx, "state-1")
	if err != nil {
		e.t.Fatalf("TakeAttempt: %v", err)
	}
	if string(got) != want {
		e.t.Fatalf("TakeAttempt = %q, want %q", got, want)
	}
	_, err = e.b.TakeAttempt(e.ctx, "state-1")
	e.wantCode(err, groupgate.NotFound, "second TakeAttempt")
	_, err = e.b.TakeAttempt(e.ctx, "never-stored")
	e.wantCode(err, groupgate.NotFound, "TakeAttempt of an unknown key")

	// Concurrent callbacks carrying the same state: exactly one wins.
	if err := e.b.PutAttempt(e.ctx, "state-2", []byte("v"), time.Minute); err != nil {
		e.t.Fatalf("PutAttempt: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Go(func() {
			if _, err := e.b.TakeAttempt(e.ctx, "state-2"); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		e.t.Fatalf("%d concurrent takes succeeded, want 1", wins)
	}
}

func testAttemptExpiry(e *env) {
	if err := e.b.PutAttempt(e.ctx, "state", []byte("v"), 10*time.Minute); err != nil {
		e.t.Fatalf("PutAttempt: %v", err)
	}
	e.clock.Advance(10 * time.Minute)
	_, err := e.b.TakeAttempt(e.ctx, "state")
	e.wantCode(err, groupgate.NotFound, "TakeAttempt after expiry")
}

func testAttemptTTL(e *env) {
	for _, ttl := range []time.Duration{0, -time.Second} {
		e.wantCode(e.b.PutAttempt(e.ctx, "k", []byte("v"), ttl), groupgate.Invalid, fmt.Sprintf("PutAttempt with ttl %v", ttl))
	}
}

func testRemember(e *env) {
	until := e.clock.Now().Add(5 * time.Minute)
	steps := []struct {
		key     string
		advance time.Duration
		fresh   bool
	}{
		{"assertion-1", 0, true},
		{"assertion-1", 0, false},
		{"assertion-2", 0, true},
		{"assertion-1", 5*time.Minute - time.Millisecond, false},
		{"assertion-2", 0, false},
	}
	for i, s := range steps {
		e.clock.Advance(s.advance)
		fresh, err := e.b.Remember(e.ctx, s.key, until)
		if err != nil {
			e.t.Fatalf("step %d: Remember(%s): %v", i, s.key, err)
		}
		if fresh != s.fresh {
			e.t.Fatalf("step %d: Remember(%s) fresh = %v, want %v", i, s.key, fresh, s.fresh)
		}
	}
	// Once its time has passed a key is forgotten and may be remembered again.
	e.clock.Advance(time.Millisecond)
	fresh, err := e.b.Remember(e.ctx, "assertion-1", e.clock.Now().Add(time.Minute))
	if err != nil || !fresh {
		e.t.Fatalf("Remember after the window = %v, %v; want fresh", fresh, err)
	}
	_, err = e.b.Remember(e.ctx, "assertion-3", e.clock.Now())
	e.wantCode(err, groupgate.Invalid, "Remember with a window already over")

	var wg sync.WaitGroup
	var mu sync.Mutex
	freshCount := 0
	for range 8 {
		wg.Go(func() {
			if ok, err := e.b.Remember(e.ctx, "assertion-race", e.clock.Now().Add(time.Minute)); err == nil && ok {
				mu.Lock()
				freshCount++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if freshCount != 1 {
		e.t.Fatalf("%d concurrent Remember calls saw the key fresh, want 1", freshCount)
	}
}

func testConcurrentIndex(e *env) {
	const n = 24
	recs := make([]*session.Record, n)
	for i := range recs {
		recs[i] = e.record("alice", time.Hour)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i, r := range recs {
		wg.Go(func() {
			if err := e.b.Save(e.ctx, r); err != nil {
				errs <- err
				return
			}
			if i%2 == 0 {
				if err := e.b.Delete(e.ctx, r.ID); err != nil {
					errs <- err
				}
			}
			if i%5 == 0 {
				if _, err := e.b.SetMemberships(e.ctx, "alice", groupgate.Memberships{Groups: []string{"g"}}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatalf("concurrent operation: %v", err)
	}
	var want []string
	for i, r := range recs {
		if i%2 == 1 {
			want = append(want, r.ID)
			continue
		}
		// A membership rewrite racing a logout must not bring it back.
		e.wantNotFound(r.ID)
	}
	slices.Sort(want)
	got := ids(e.list("alice"))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		e.t.Fatalf("listed %d sessions, want the %d survivors exactly\n got %v\nwant %v", len(got), len(want), got, want)
	}
	ended, err := e.b.DeleteUserSessions(e.ctx, "alice")
	if err != nil || ended != len(want) {
		e.t.Fatalf("DeleteUserSessions = %d, %v; want %d", ended, err, len(want))
	}
}

func testConcurrentEndAll(e *env) {
	// The race is short; a few rounds make a lost index entry likely to show.
	for round := range 5 {
		if !raceEndAll(e) {
			e.t.Fatalf("round %d failed", round)
		}
	}
}

func raceEndAll(e *env) bool {
	const n = 16
	recs := make([]*session.Record, n)
	for i := range recs {
		recs[i] = e.record("alice", time.Hour)
	}
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Go(func() {
			if err := e.b.Save(e.ctx, r); err != nil {
				e.t.Errorf("Save: %v", err)
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			if _, err := e.b.DeleteUserSessions(e.ctx, "alice"); err != nil {
				e.t.Errorf("DeleteUserSessions: %v", err)
			}
		})
	}
	wg.Wait()
	if e.t.Failed() {
		return false
	}
	// Whatever survived the race must be known to the index, or a later
	// "end all sessions" (SCIM deactivation) would miss it.
	listed := ids(e.list("alice"))
	for i, r := range recs {
		_, err := e.b.Load(e.ctx, r.ID)
		if err == nil && !slices.Contains(listed, r.ID) {
			e.t.Errorf("session %d survived but is not listed", i)
			return false
		}
		if err != nil && !groupgate.IsCode(err, groupgate.NotFound) {
			e.t.Errorf("Load: %v", err)
			return false
		}
	}
	if _, err := e.b.DeleteUserSessions(e.ctx, "alice"); err != nil {
		e.t.Errorf("DeleteUserSessions: %v", err)
		return false
	}
	for _, r := range recs {
		if _, err := e.b.Load(e.ctx, r.ID); !groupgate.IsCode(err, groupgate.NotFound) {
			e.t.Errorf("session survived ending all: %v", err)
			return false
		}
	}
	return true
}

func testRewriteVsLogout(e *env) {
	for round := range 5 {
		recs := make([]*session.Record, 8)
		for i := range recs {
			recs[i] = e.record("alice", time.Hour)
			e.save(recs[i])
		}
		var wg sync.WaitGroup
		for _, r := range recs {
			wg.Go(func() {
				if err := e.b.Delete(e.ctx, r.ID); err != nil {
					e.t.Errorf("Delete: %v", err)
				}
			})
			wg.Go(func() {
				if _, err := e.b.SetMemberships(e.ctx, "alice", groupgate.Memberships{Groups: []string{"g"}}); err != nil {
					e.t.Errorf("SetMemberships: %v", err)
				}
			})
		}
		wg.Wait()
		for i, r := range recs {
			if _, err := e.b.Load(e.ctx, r.ID); !groupgate.IsCode(err, groupgate.NotFound) {
				e.t.Fatalf("round %d: session %d after logout: %v, want NotFound", round, i, err)
			}
		}
	}
}

func testPing(e *env) {
	if err := e.b.Ping(e.ctx); err != nil {
		e.t.Fatalf("Ping: %v", err)
	}
}
