package sync

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
)

// flaky fails the next writes it is told to, then passes on to Memory;
// before lets a test act just before a write reaches the backend.
type flaky struct {
	*session.Memory
	fail   int
	before func()
}

func (f *flaky) SetMembershipsIf(ctx context.Context, userID string, gen int64, m groupgate.Memberships) (bool, int, error) {
	if f.before != nil {
		f.before()
	}
	if f.fail > 0 {
		f.fail--
		return false, 0, errors.New("redis down")
	}
	return f.Memory.SetMembershipsIf(ctx, userID, gen, m)
}

func groups(names ...string) groupgate.Memberships { return groupgate.Memberships{Groups: names} }

func newSession(t *testing.T, mem *session.Memory, userID string) string {
	t.Helper()
	id, err := session.NewID(userID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := mem.Save(context.Background(), &session.Record{ID: id, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestPusherOrdersSnapshotsByGeneration(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// run delivers "old" (read under the first generation) and "new"
		// (under the second) in some order and returns both results.
		run func(p *pusher, w *flaky, older, newer int64) (oldOK, newOK bool)
	}{
		{"an older snapshot arriving last is skipped, and that counts as delivered", func(p *pusher, _ *flaky, older, newer int64) (bool, bool) {
			n := p.setMemberships(ctx, "u", newer, groups("new"))
			return p.setMemberships(ctx, "u", older, groups("old")), n
		}},
		{"an older snapshot arriving first is overwritten by the newer", func(p *pusher, _ *flaky, older, newer int64) (bool, bool) {
			o := p.setMemberships(ctx, "u", older, groups("old"))
			return o, p.setMemberships(ctx, "u", newer, groups("new"))
		}},
		{"an older write that failed and is retried after the newer one gives way", func(p *pusher, w *flaky, older, newer int64) (bool, bool) {
			w.fail = 1
			var newOK bool
			w.before = func() {
				w.before = nil
				newOK = p.setMemberships(ctx, "u", newer, groups("new"))
			}
			return p.setMemberships(ctx, "u", older, groups("old")), newOK
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := session.NewMemory()
			id := newSession(t, mem, "u")
			w := &flaky{Memory: mem}
			p := newPusher(w, slog.New(slog.DiscardHandler), 3, time.Millisecond)
			g1, ok := p.generations(ctx, []string{"u"})
			if !ok {
				t.Fatal("no generation")
			}
			g2, _ := p.generations(ctx, []string{"u"})
			oldOK, newOK := tt.run(p, w, g1["u"], g2["u"])
			if !oldOK || !newOK {
				t.Errorf("delivered old=%v new=%v, want both true", oldOK, newOK)
			}
			rec, err := mem.Load(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rec.Memberships.Groups, []string{"new"}) {
				t.Errorf("session holds %v, want the newer snapshot", rec.Memberships.Groups)
			}
		})
	}
}

// noGenerations cannot take generations, as when Redis is down.
type noGenerations struct{ *session.Memory }

func (noGenerations) NextGenerations(context.Context, []string) (map[string]int64, error) {
	return nil, errors.New("redis down")
}

func TestAPushWithoutAGenerationFails(t *testing.T) {
	p := newPusher(noGenerations{session.NewMemory()}, slog.New(slog.DiscardHandler), 2, time.Millisecond)
	if _, ok := p.generations(context.Background(), []string{"u"}); ok {
		t.Fatal("generations reported success while the backend refused them")
	}
}
