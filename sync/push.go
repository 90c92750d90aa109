package sync

import (
	"context"
	"log/slog"
	"time"

	"github.com/groupgate/groupgate"
)

// SnapshotWriter is what the Syncer needs from the session layer (every
// session.Backend is one): per-user generations that order writers across
// replicas, a rewrite of every live session of a user that applies only
// while its generation is the latest, and the end of all of them.
type SnapshotWriter interface {
	// NextGenerations takes the next generation of each user; a value
	// taken later is larger, whichever replica takes it.
	NextGenerations(ctx context.Context, userIDs []string) (map[string]int64, error)
	// SetMembershipsIf rewrites the user's sessions unless a generation
	// after gen was taken (applied false, not an error).
	SetMembershipsIf(ctx context.Context, userID string, gen int64, m groupgate.Memberships) (applied bool, n int, err error)
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
}

const (
	pushWorkers        = 8
	pushAttemptTimeout = 5 * time.Second
)

// pusher delivers snapshots to the session layer, ordered per user across
// every replica by generations.
//
// The protocol, for a change C committed to the store that moves user u:
//
//  1. after C commits, the pusher takes g = NextGenerations(u);
//  2. only then it reads u's access from the store;
//  3. it writes with SetMembershipsIf(u, g), which applies only while g is
//     still u's latest generation, atomically with the check.
//
// Why the last snapshot written is never older than a finished change:
// let gmax be the last generation taken for u, by pusher P. A write
// holding g < gmax applies only while the counter is g, so before gmax
// was taken, so before P writes; P's write is not blocked by anyone (no
// later generation exists), so P's is the last write that applies. P read
// the store after taking gmax, which is after every other pusher took its
// generation, which each did after its change committed: P's snapshot
// includes every one of those changes. Hence a pusher that is skipped has
// nothing to do: a later one holds a snapshot including its change, and
// skipping counts as success (its outbox entry is acknowledged).
//
// Failures: if P fails or its process dies after taking gmax, older
// writers are skipped and acknowledged, but P's own outbox entry is not;
// RunOutbox replays it, taking a new generation and reading the store
// then, so the sessions converge on the newest state. (Refresh, for
// changes made outside the Syncer, has no outbox entry: its caller owns
// retrying.) The generation counter and the sessions of a user share one
// Redis Cluster hash slot, so the check and the write are one WATCHed
// transaction on one node; the in-process backend does both under its
// lock. Deleting a user's sessions needs no generation: a later rewrite
// finds no session to write.
type pusher struct {
	w        SnapshotWriter
	log      *slog.Logger
	attempts int
	backoff  time.Duration
}

func newPusher(w SnapshotWriter, log *slog.Logger, attempts int, backoff time.Duration) *pusher {
	return &pusher{w: w, log: log, attempts: attempts, backoff: backoff}
}

// generations takes the next generation of every user in ids. Call it
// after the change commits and before reading what will be pushed.
func (p *pusher) generations(ctx context.Context, ids []string) (map[string]int64, bool) {
	var gens map[string]int64
	ok := p.retry(ctx, "", "next_generations", func(ctx context.Context) error {
		var err error
		gens, err = p.w.NextGenerations(ctx, ids)
		return err
	})
	return gens, ok
}

// retry runs op, retrying a failure a few times with backoff, and reports
// whether it succeeded. A final failure is logged; the outbox entry of the
// change then stays for RunOutbox to finish.
func (p *pusher) retry(ctx context.Context, userID, what string, op func(context.Context) error) bool {
	wait := p.backoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, pushAttemptTimeout)
		err := op(actx)
		cancel()
		if err == nil {
			return true
		}
		if attempt >= p.attempts {
			p.log.ErrorContext(ctx, "session update failed; the outbox will retry it",
				"user", userID, "op", what, "attempts", attempt, "err", err)
			return false
		}
		p.log.WarnContext(ctx, "session update failed, retrying", "user", userID, "op", what, "attempt", attempt, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
		wait *= 2
	}
}

// setMemberships writes m, read under generation gen, to the user's
// sessions and reports whether they now hold m or a newer snapshot's
// writer has taken over.
func (p *pusher) setMemberships(ctx context.Context, userID string, gen int64, m groupgate.Memberships) bool {
	return p.retry(ctx, userID, "set_memberships", func(ctx context.Context) error {
		applied, n, err := p.w.SetMembershipsIf(ctx, userID, gen, m)
		if err == nil {
			p.log.DebugContext(ctx, "sessions updated", "user", userID, "generation", gen, "applied", applied, "sessions", n)
		}
		return err
	})
}

func (p *pusher) deleteSessions(ctx context.Context, userID string) bool {
	return p.retry(ctx, userID, "delete_sessions", func(ctx context.Context) error {
		n, err := p.w.DeleteUserSessions(ctx, userID)
		if err == nil {
			p.log.DebugContext(ctx, "sessions ended", "user", userID, "sessions", n)
		}
		return err
	})
}
