package sync

import (
	"context"
	"log/slog"
	stdsync "sync"
	"time"

	"github.com/groupgate/groupgate"
)

// SnapshotWriter is what the Syncer needs from the session layer: replace
// the memberships cached in every live session of a user, and end them all.
// Both return how many sessions they touched.
type SnapshotWriter interface {
	SetMemberships(ctx context.Context, userID string, m groupgate.Memberships) (int, error)
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
}

const (
	pushWorkers        = 8
	pushAttemptTimeout = 5 * time.Second
)

// pusher delivers snapshots to the session layer in order per user.
//
// Every recomputation takes a ticket before it reads the store; tickets are
// numbered in order. A delivery holds the user's lock and is skipped when a
// later ticket was already delivered: that one read a state at least as new.
// So two changes racing in this process can never leave the older snapshot
// in the sessions. A crash between commit and push is covered by the
// outbox (outbox.go): the entry written with the change stays until a
// delivery succeeds.
type pusher struct {
	w        SnapshotWriter
	log      *slog.Logger
	attempts int
	backoff  time.Duration

	mu    stdsync.Mutex
	seq   uint64
	users map[string]*userPushes
}

type userPushes struct {
	mu        stdsync.Mutex // held while delivering
	refs      int           // open tickets; the entry goes when it reaches 0
	delivered uint64
}

type ticket struct {
	userID string
	seq    uint64
}

func newPusher(w SnapshotWriter, log *slog.Logger, attempts int, backoff time.Duration) *pusher {
	return &pusher{w: w, log: log, attempts: attempts, backoff: backoff, users: map[string]*userPushes{}}
}

// begin takes a ticket for userID. Call it before reading what will be
// pushed, and end every ticket with deliver or release.
func (p *pusher) begin(userID string) ticket {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	u := p.users[userID]
	if u == nil {
		u = &userPushes{}
		p.users[userID] = u
	}
	u.refs++
	return ticket{userID: userID, seq: p.seq}
}

// release ends a ticket without delivering anything.
func (p *pusher) release(t ticket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.users[t.userID]
	u.refs--
	if u.refs == 0 {
		delete(p.users, t.userID)
	}
}

// deliver runs op for t's user unless a later ticket was delivered, retrying
// a failing op a few times with backoff, and reports whether the sessions
// now hold a snapshot at least as new as t's. A final failure is logged;
// the outbox entry of the change then stays for RunOutbox to finish.
func (p *pusher) deliver(ctx context.Context, t ticket, what string, op func(context.Context) (int, error)) bool {
	defer p.release(t)
	p.mu.Lock()
	u := p.users[t.userID]
	p.mu.Unlock()

	u.mu.Lock()
	defer u.mu.Unlock()
	if t.seq < u.delivered {
		return true
	}
	wait := p.backoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, pushAttemptTimeout)
		n, err := op(actx)
		cancel()
		if err == nil {
			u.delivered = t.seq
			p.log.DebugContext(ctx, "sessions updated", "user", t.userID, "op", what, "sessions", n)
			return true
		}
		if attempt >= p.attempts {
			p.log.ErrorContext(ctx, "session update failed; the outbox will retry it",
				"user", t.userID, "op", what, "attempts", attempt, "err", err)
			return false
		}
		p.log.WarnContext(ctx, "session update failed, retrying", "user", t.userID, "op", what, "attempt", attempt, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
		wait *= 2
	}
}

func (p *pusher) setMemberships(ctx context.Context, t ticket, m groupgate.Memberships) bool {
	return p.deliver(ctx, t, "set_memberships", func(ctx context.Context) (int, error) {
		return p.w.SetMemberships(ctx, t.userID, m)
	})
}

func (p *pusher) deleteSessions(ctx context.Context, t ticket) bool {
	return p.deliver(ctx, t, "delete_sessions", func(ctx context.Context) (int, error) {
		return p.w.DeleteUserSessions(ctx, t.userID)
	})
}
