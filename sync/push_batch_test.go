package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/session"
)

// Every session backend offers the batch path; the aliases would let a
// drift in either package's struct silently fall back to one user at a
// time, so the compiler checks it here.
var (
	_ SnapshotBatchWriter = (*session.Memory)(nil)
	_ SnapshotBatchWriter = (*session.Redis)(nil)
	_ SnapshotBatchWriter = (*session.Cache)(nil)
)

// batchFlaky passes batches on to Memory, recording who was sent in each
// call; it fails the first call of every batch whole (down) or given
// users' writes (failUser, a count per user) first.
type batchFlaky struct {
	*session.Memory
	mu       stdsync.Mutex
	calls    [][]string
	down     bool
	seen     map[string]bool // first users of the batches failed whole
	failUser map[string]int
}

func (b *batchFlaky) SetMembershipsIfBatch(ctx context.Context, writes []SnapshotWrite) ([]SnapshotResult, error) {
	b.mu.Lock()
	sent := make([]string, len(writes))
	for i, w := range writes {
		sent[i] = w.UserID
	}
	b.calls = append(b.calls, sent)
	if b.down && len(writes) > 0 && !b.seen[writes[0].UserID] {
		b.seen[writes[0].UserID] = true
		b.mu.Unlock()
		return nil, errors.New("redis down")
	}
	var pass []SnapshotWrite
	var at []int
	out := make([]SnapshotResult, len(writes))
	for i, w := range writes {
		if b.failUser[w.UserID] > 0 {
			b.failUser[w.UserID]--
			out[i].Err = errors.New("redis busy")
			continue
		}
		pass = append(pass, w)
		at = append(at, i)
	}
	b.mu.Unlock()
	res, err := b.Memory.SetMembershipsIfBatch(ctx, pass)
	if err != nil {
		return nil, err
	}
	for k, i := range at {
		out[i] = res[k]
	}
	return out, nil
}

func TestPushQueueBatches(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		down     bool
		failUser map[string]int
		wantOK   bool
		// extra is how many more times than the first (and than every
		// batch-wide failure) each user was sent.
		extra map[string]int
	}{
		{"every write goes out once in batches of at most pushBatch and all succeed", false, nil, true, nil},
		{"a whole batch that failed is sent again and then succeeds", true, nil, true, nil},
		{"only the users that failed are sent again, and succeed", false, map[string]int{"u7": 1, "u900": 2}, true, map[string]int{"u7": 1, "u900": 2}},
		{"a user failing every attempt fails the push while the others are delivered", false, map[string]int{"u3": 99}, false, map[string]int{"u3": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := session.NewMemory()
			const users = 1200
			ids := make([]string, users)
			sess := map[string]string{}
			for i := range ids {
				ids[i] = fmt.Sprint("u", i)
			}
			for _, u := range []string{"u0", "u3", "u7", "u900", "u1199"} {
				sess[u] = newSession(t, mem, u)
			}
			w := &batchFlaky{Memory: mem, down: tt.down, seen: map[string]bool{}, failUser: tt.failUser}
			p := newPusher(w, slog.New(slog.DiscardHandler), 3, time.Millisecond)
			gens, ok := p.generations(ctx, ids)
			if !ok {
				t.Fatal("no generations")
			}
			// u0's snapshot is stale: a later writer took a generation.
			if _, err := mem.NextGenerations(ctx, []string{"u0"}); err != nil {
				t.Fatal(err)
			}
			q := p.queue(ctx, users)
			for _, id := range ids {
				q.add(id, gens[id], groups("g-"+id))
			}
			if got := q.wait(); got != tt.wantOK {
				t.Fatalf("wait() = %v, want %v", got, tt.wantOK)
			}
			sent := map[string]int{}
			for _, c := range w.calls {
				if len(c) > pushBatch {
					t.Fatalf("a batch of %d users, want at most %d", len(c), pushBatch)
				}
				for _, u := range c {
					sent[u]++
				}
			}
			for _, id := range ids {
				want := 1 + tt.extra[id]
				if tt.down {
					want++
				}
				if got := sent[id]; got != want {
					t.Fatalf("user %s was sent %d times, want %d", id, got, want)
				}
			}
			for u, id := range sess {
				rec, err := mem.Load(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				want := []string{"g-" + u}
				if u == "u0" || tt.failUser[u] >= p.attempts {
					want = nil // stale, or never delivered
				}
				if !slices.Equal(rec.Memberships.Groups, want) {
					t.Errorf("%s's session holds %v, want %v", u, rec.Memberships.Groups, want)
				}
			}
		})
	}
}
