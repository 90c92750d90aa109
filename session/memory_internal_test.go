package session

import (
	"context"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
)

func TestMemorySweepDropsExpiredEntriesDuringWrites(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewMemory(WithNow(func() time.Time { return now }), WithSweepInterval(time.Minute))

	save := func(userID string, ttl time.Duration) string {
		t.Helper()
		id, err := NewID(userID)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Save(ctx, &Record{ID: id, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	save("alice", time.Second)
	live := save("bob", time.Hour)
	if err := m.PutAttempt(ctx, "a", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Remember(ctx, "r", now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}

	now = now.Add(30 * time.Second)
	save("carol", time.Hour) // within the sweep interval: nothing dropped yet
	if got := len(m.sessions); got != 3 {
		t.Fatalf("before the sweep interval %d sessions kept, want 3", got)
	}

	now = now.Add(time.Minute)
	save("dave", time.Hour)
	if got := len(m.sessions); got != 3 {
		t.Fatalf("after the sweep %d sessions kept, want 3 (alice's dropped)", got)
	}
	if _, ok := m.byUser["alice"]; ok {
		t.Fatal("the sweep left alice's empty index behind")
	}
	if len(m.attempts) != 0 || len(m.replay) != 0 {
		t.Fatalf("the sweep kept %d attempts and %d replay keys, want none", len(m.attempts), len(m.replay))
	}
	if _, ok := m.sessions[live]; !ok {
		t.Fatal("the sweep dropped a live session")
	}
}

// The decoded records Memory keeps are shared by nobody: not with the
// snapshot a writer passed, nor between two sessions of one user.
func TestMemoryKeepsItsOwnCopyOfMemberships(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewMemory(WithNow(func() time.Time { return now }))
	var ids []string
	for range 2 {
		id, err := NewID("alice")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Save(ctx, &Record{ID: id, UserID: "alice", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	ms := groupgate.Memberships{Groups: []string{"eng"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember}}
	if n, err := m.SetMemberships(ctx, "alice", ms); err != nil || n != 2 {
		t.Fatalf("SetMemberships = %d, %v; want 2 sessions", n, err)
	}
	ms.Groups[0] = "changed-by-the-writer"
	ms.OrgRoles["acme"] = groupgate.OrgRoleAdmin

	first, err := m.Load(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	first.Memberships.Groups[0] = "changed-by-a-reader"
	first.Memberships.OrgRoles["acme"] = groupgate.OrgRoleOwner

	for _, id := range ids {
		rec, err := m.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if g, r := rec.Memberships.Groups, rec.Memberships.OrgRoles["acme"]; len(g) != 1 || g[0] != "eng" || r != groupgate.OrgRoleMember {
			t.Fatalf("session %s has groups %v and acme role %q, want [eng] and member", redactID(id), g, r)
		}
	}
}
