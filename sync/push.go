package sync

import (
	"context"
	"fmt"
	"log/slog"
	stdsync "sync"
	"sync/atomic"
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
	// Generation reads the user's counter without taking a value: the
	// last one taken, or 0 when unknown.
	Generation(ctx context.Context, userID string) (int64, error)
	// SetMembershipsIf rewrites the user's sessions unless a generation
	// after gen was taken (applied false, not an error).
	SetMembershipsIf(ctx context.Context, userID string, gen int64, m groupgate.Memberships) (applied bool, n int, err error)
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
}

// SnapshotBatchWriter is what a SnapshotWriter may also offer (every
// session.Backend does): SetMembershipsIf for many users in a few round
// trips. Each write is checked and applied on its own, as if alone; the
// pusher uses it when present.
type SnapshotBatchWriter interface {
	// SetMembershipsIfBatch returns one result per write, in order; a
	// user's failure is its result's Err, err means none was attempted.
	SetMembershipsIfBatch(ctx context.Context, writes []SnapshotWrite) ([]SnapshotResult, error)
}

// SnapshotWrite and SnapshotResult alias unnamed structs, the same ones
// package session aliases, so its backends satisfy SnapshotBatchWriter
// while neither package imports the other.
type (
	// SnapshotWrite is one user's snapshot, read under generation Gen.
	SnapshotWrite = struct {
		UserID      string
		Gen         int64
		Memberships groupgate.Memberships
	}
	// SnapshotResult is what SetMembershipsIf would have returned.
	SnapshotResult = struct {
		Applied  bool
		Sessions int
		Err      error
	}
)

const (
	pushWorkers        = 8
	pushAttemptTimeout = 5 * time.Second
	// pushBatch is how many users go into one SetMembershipsIfBatch: large
	// enough that round trips stop dominating, small enough that one
	// attempt stays well inside pushAttemptTimeout.
	pushBatch = 500
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
// finds no session to write. A SnapshotBatchWriter runs step 3 for many
// users in one call but checks and writes each user on its own, so the
// argument holds per user unchanged, and a user whose write failed is
// retried alone with the generation it holds.
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

// pushQueue writes snapshots in the background while the caller resolves
// more: add queues one, wait flushes and reports whether every write
// succeeded. With a SnapshotBatchWriter it sends batches of pushBatch
// users, else one user at a time; either way pushWorkers writes run at
// once and each user's write keeps its own result (applied, skipped as
// stale, or failed and retried).
type pushQueue struct {
	p      *pusher
	ctx    context.Context
	bw     SnapshotBatchWriter // nil: one user at a time
	batch  []SnapshotWrite     // being filled by add
	jobs   chan []SnapshotWrite
	wg     stdsync.WaitGroup
	failed atomic.Bool
}

// queue starts a pushQueue with up to pushWorkers workers for users
// writes.
func (p *pusher) queue(ctx context.Context, users int) *pushQueue {
	q := &pushQueue{p: p, ctx: ctx, jobs: make(chan []SnapshotWrite, pushWorkers)}
	size := 1
	if bw, ok := p.w.(SnapshotBatchWriter); ok {
		q.bw, size = bw, pushBatch
	}
	for range min(pushWorkers, (users+size-1)/size) {
		q.wg.Go(q.work)
	}
	return q
}

func (q *pushQueue) work() {
	for writes := range q.jobs {
		if !q.p.write(q.ctx, q.bw, writes) {
			q.failed.Store(true)
		}
	}
}

func (q *pushQueue) add(userID string, gen int64, m groupgate.Memberships) {
	q.batch = append(q.batch, SnapshotWrite{UserID: userID, Gen: gen, Memberships: m})
	if q.bw == nil || len(q.batch) >= pushBatch {
		q.flush()
	}
}

func (q *pushQueue) flush() {
	if len(q.batch) > 0 {
		q.jobs <- q.batch
		q.batch = nil
	}
}

// wait sends what is left, waits for every write and reports whether all
// succeeded.
func (q *pushQueue) wait() bool {
	q.flush()
	close(q.jobs)
	q.wg.Wait()
	return !q.failed.Load()
}

// write delivers writes, through bw when set, else one by one.
func (p *pusher) write(ctx context.Context, bw SnapshotBatchWriter, writes []SnapshotWrite) bool {
	if bw == nil {
		ok := true
		for _, w := range writes {
			ok = p.setMemberships(ctx, w.UserID, w.Gen, w.Memberships) && ok
		}
		return ok
	}
	return p.setMembershipsBatch(ctx, bw, writes)
}

// setMembershipsBatch is setMemberships for many users: each attempt
// sends the writes not yet delivered, so a user that failed is retried
// (with the generation it holds, as setMemberships does) while the
// applied and the skipped are done.
func (p *pusher) setMembershipsBatch(ctx context.Context, bw SnapshotBatchWriter, writes []SnapshotWrite) bool {
	wait := p.backoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, pushAttemptTimeout)
		out, err := bw.SetMembershipsIfBatch(actx, writes)
		cancel()
		if err == nil && len(out) != len(writes) {
			err = fmt.Errorf("session batch returned %d results for %d writes", len(out), len(writes))
		}
		failed := writes
		if err == nil {
			failed = nil
			applied, sessions := 0, 0
			for i, r := range out {
				switch {
				case r.Err != nil:
					failed = append(failed, writes[i])
					if err == nil {
						err = fmt.Errorf("user %s: %w", writes[i].UserID, r.Err)
					}
				case r.Applied:
					applied++
					sessions += r.Sessions
				}
			}
			p.log.DebugContext(ctx, "sessions updated", "users", len(writes), "applied", applied,
				"skipped", len(writes)-applied-len(failed), "failed", len(failed), "sessions", sessions)
		}
		if len(failed) == 0 {
			return true
		}
		if attempt >= p.attempts {
			p.log.ErrorContext(ctx, "session update failed; the outbox will retry it",
				"users", len(failed), "op", "set_memberships_batch", "attempts", attempt, "err", err)
			return false
		}
		p.log.WarnContext(ctx, "session update failed, retrying", "users", len(failed), "op", "set_memberships_batch", "attempt", attempt, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
		wait *= 2
		writes = failed
	}
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
