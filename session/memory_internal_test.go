package session

import (
	"context"
	"testing"
	"time"
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
