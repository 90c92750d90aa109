package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// The outbox makes propagation durable. Every access change writes, in its
// own transaction, an entry naming the users (and the groups whose
// members) whose sessions must be rewritten; the push that runs after the
// commit deletes it when every session update succeeded. An entry left
// behind (the process died between commit and push, or Redis was down)
// is replayed by RunOutbox on any replica: replay recomputes from the
// store as it is then, so it is safe to run twice.

const (
	// DefaultOutboxLease is how long a runner owns the entries it claims;
	// a runner that dies holding them lets another take them after it.
	DefaultOutboxLease = 30 * time.Second
	// DefaultOutboxGrace is the age an entry must reach before a runner
	// replays it, so that runners do not race the post-commit push that
	// normally acknowledges it within milliseconds.
	DefaultOutboxGrace = 5 * time.Second
	// outboxBatch is how many entries one claim takes.
	outboxBatch = 64
	// outboxFinishTimeout bounds how long a stopped runner (shutdown)
	// goes on with the batch it claimed, counted from the stop.
	outboxFinishTimeout = 10 * time.Second
	// outboxWarnAttempts is the attempt count from which a stuck entry is
	// logged as an error rather than a warning.
	outboxWarnAttempts = 5
)

// WithOutbox sets the lease of claimed outbox entries and the age an entry
// must reach before RunOutbox replays it (grace 0: at once).
func WithOutbox(lease, grace time.Duration) Option {
	return func(s *Syncer) { s.outboxLease, s.outboxGrace = lease, max(grace, 0) }
}

// outbox returns st's outbox, nil when the store keeps none.
func outbox(st store.Store) store.OutboxStore {
	ob, _ := st.(store.OutboxStore)
	return ob
}

// record writes, inside tx, the entry of a change that must reach the
// sessions of users and of every member of groups, and stores its ID in
// *entry (0 when there is nothing to record or no outbox).
func (s *Syncer) record(ctx context.Context, tx store.Store, entry *int64, users, groups []string) error {
	ob := outbox(tx)
	if ob == nil || (len(users) == 0 && len(groups) == 0) {
		return nil
	}
	e, err := ob.EnqueueOutbox(ctx, store.OutboxEntry{UserIDs: users, Groups: groups})
	if err != nil {
		return fmt.Errorf("record session rewrite in the outbox: %w", err)
	}
	*entry = e.ID
	return nil
}

// recordAudited is record then audit, in one round trip where the store
// can (EnqueueOutboxAudited).
func (s *Syncer) recordAudited(ctx context.Context, tx store.Store, entry *int64, users []string, actor, action, targetType, targetID string, before, after any) error {
	ob := outbox(tx)
	if ob == nil || len(users) == 0 {
		if err := s.record(ctx, tx, entry, users, nil); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, action, targetType, targetID, before, after)
	}
	ev, err := s.auditEvent(actor, action, targetType, targetID, before, after)
	if err != nil {
		return err
	}
	e, err := ob.EnqueueOutboxAudited(ctx, store.OutboxEntry{UserIDs: users}, ev)
	if err != nil {
		return fmt.Errorf("record session rewrite and audit event %s: %w", action, err)
	}
	*entry = e.ID
	return nil
}

// settle runs after a commit: it pushes, and acknowledges entry when the
// push fully succeeded. An unacknowledged entry is left for RunOutbox.
func (s *Syncer) settle(ctx context.Context, entry int64, push func() bool) {
	if s.crashAfterCommit {
		return
	}
	if !push() || entry == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if err := outbox(s.st).AckOutbox(ctx, entry); err != nil {
		// Harmless: a runner will replay it, rewriting the same snapshot.
		s.log.WarnContext(ctx, "acknowledge outbox entry failed", "entry", entry, "err", err)
	}
}

// endSessions ends every session of a deactivated or deleted user.
func (s *Syncer) endSessions(ctx context.Context, userID string) bool {
	ctx = context.WithoutCancel(ctx)
	return s.push.deleteSessions(ctx, userID)
}

// ReplayOutbox processes the pending outbox entries old enough to replay
// (see WithOutbox) until none is left, and returns how many it finished.
// Entries whose push fails again stay, claimed for the lease, and are
// retried after it. Unavailable when the outbox cannot be read. When ctx
// ends it claims no more, finishes the batch in hand (for at most 10 s)
// and returns ctx's error.
func (s *Syncer) ReplayOutbox(ctx context.Context) (int, error) {
	ob := outbox(s.st)
	if ob == nil {
		return 0, nil
	}
	done := 0
	for {
		now := s.now()
		es, err := ob.ClaimOutbox(ctx, now, now.Add(-s.outboxGrace), s.outboxLease, outboxBatch)
		if err != nil {
			return done, fmt.Errorf("claim outbox entries: %w", err)
		}
		if len(es) == 0 {
			return done, nil
		}
		// The batch in hand is finished even when ctx ends meanwhile (a
		// shutdown), within outboxFinishTimeout of its end: abandoned, its
		// entries would wait out their lease before another replica could
		// replay them. Only claiming stops.
		work, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stop := context.AfterFunc(ctx, func() { time.AfterFunc(min(s.outboxLease, outboxFinishTimeout), cancel) })
		n, err := s.replayBatch(work, ob, es)
		stop()
		cancel()
		done += n
		if err != nil {
			return done, err
		}
		if err := ctx.Err(); err != nil {
			return done, err
		}
	}
}

// replayBatch replays claimed entries and acknowledges those finished.
func (s *Syncer) replayBatch(ctx context.Context, ob store.OutboxStore, es []store.OutboxEntry) (int, error) {
	done := 0
	for _, e := range es {
		if !s.replay(ctx, e) {
			level := slog.LevelWarn
			if e.Attempts >= outboxWarnAttempts {
				level = slog.LevelError
			}
			s.log.Log(ctx, level, "outbox entry not finished; it is retried after its lease",
				"entry", e.ID, "attempts", e.Attempts)
			continue
		}
		if err := ob.AckOutbox(ctx, e.ID); err != nil {
			return done, fmt.Errorf("acknowledge outbox entry %d: %w", e.ID, err)
		}
		done++
	}
	return done, nil
}

// replay brings the sessions an entry names in line with the store: users
// that are gone or deactivated lose their sessions, the others (and every
// member of the entry's groups) get a fresh snapshot.
func (s *Syncer) replay(ctx context.Context, e store.OutboxEntry) bool {
	ok := true
	live := make([]string, 0, len(e.UserIDs))
	for _, id := range e.UserIDs {
		u, err := s.st.GetUser(ctx, id)
		switch {
		case groupgate.IsCode(err, groupgate.NotFound) || (err == nil && !u.Active):
			ok = s.endSessions(ctx, id) && ok
		case err != nil:
			s.log.WarnContext(ctx, "outbox replay cannot load user", "user", id, "err", err)
			ok = false
		default:
			live = append(live, id)
		}
	}
	slices.Sort(live)
	return s.syncGroupMembers(ctx, e.Groups, live...) && ok
}

// RunOutbox replays the outbox at once and then every interval until ctx
// ends, which it returns as nil. Run it on every replica: claims with a
// lease keep runners from doing the same entry at the same time.
func (s *Syncer) RunOutbox(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return groupgate.Errorf(groupgate.Invalid, "outbox interval must be positive")
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.ReplayOutbox(ctx)
		switch {
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.ErrorContext(ctx, "outbox replay failed; trying again next round", "err", err)
		case n > 0:
			s.log.InfoContext(ctx, "outbox replayed changes left unfinished", "entries", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
