package sync

import (
	"context"
	"log/slog"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
)

type lastWriter struct {
	mu    stdsync.Mutex
	last  map[string]groupgate.Memberships
	calls int
}

func (w *lastWriter) SetMemberships(_ context.Context, id string, m groupgate.Memberships) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last[id] = m
	w.calls++
	return 1, nil
}

func (w *lastWriter) DeleteUserSessions(context.Context, string) (int, error) { return 0, nil }

func TestAnOlderSnapshotNeverOverwritesANewerOne(t *testing.T) {
	w := &lastWriter{last: map[string]groupgate.Memberships{}}
	p := newPusher(w, slog.New(slog.DiscardHandler), 1, time.Millisecond)
	ctx := context.Background()
	older := p.begin("u") // read the store first...
	newer := p.begin("u") // ...then a later change read it again
	p.setMemberships(ctx, newer, groupgate.Memberships{Groups: []string{"new"}})
	p.setMemberships(ctx, older, groupgate.Memberships{Groups: []string{"old"}})
	if got := w.last["u"].Groups; len(got) != 1 || got[0] != "new" {
		t.Errorf("sessions hold %v, want the newer snapshot", got)
	}
	if w.calls != 1 {
		t.Errorf("%d deliveries, want 1: the older one is dropped", w.calls)
	}
	if len(p.users) != 0 {
		t.Errorf("%d users still tracked after every ticket ended", len(p.users))
	}
}

func TestAReleasedTicketDoesNotBlockLaterOnes(t *testing.T) {
	w := &lastWriter{last: map[string]groupgate.Memberships{}}
	p := newPusher(w, slog.New(slog.DiscardHandler), 1, time.Millisecond)
	p.release(p.begin("u"))
	p.setMemberships(context.Background(), p.begin("u"), groupgate.Memberships{Groups: []string{"x"}})
	if w.calls != 1 || len(p.users) != 0 {
		t.Errorf("calls = %d, tracked = %d; want 1 and 0", w.calls, len(p.users))
	}
}
