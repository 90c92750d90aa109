package postgres

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

var _ store.OutboxStore = (*Store)(nil)

const outboxColumns = `id, user_ids, groups, created_at, attempts, claimed_until`

func scanOutbox(r pgx.CollectableRow) (store.OutboxEntry, error) {
	var (
		e      store.OutboxEntry
		leased pgtype.Timestamptz
	)
	if err := r.Scan(&e.ID, &e.UserIDs, &e.Groups, &e.CreatedAt, &e.Attempts, &leased); err != nil {
		return store.OutboxEntry{}, err
	}
	e.CreatedAt = e.CreatedAt.UTC()
	e.ClaimedUntil = leaseTime(leased)
	if len(e.UserIDs) == 0 {
		e.UserIDs = nil
	}
	if len(e.Groups) == 0 {
		e.Groups = nil
	}
	return e, nil
}

// leaseTime reads claimed_until, which is -infinity until a claim.
func leaseTime(t pgtype.Timestamptz) time.Time {
	if t.InfinityModifier != pgtype.Finite || !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func strs(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// EnqueueOutbox takes the entry's ID from the identity column.
//
// Like AppendAudit it runs without a savepoint inside InTx: its one caller
// (the syncer) writes it in the transaction of the change it records and
// gives that transaction up when the write fails, so a savepoint would
// only add two round trips to every change (a login among them, issue
// 15). A failure here leaves the caller's transaction aborted.
func (s *Store) EnqueueOutbox(ctx context.Context, e store.OutboxEntry) (store.OutboxEntry, error) {
	if len(e.UserIDs) == 0 && len(e.Groups) == 0 {
		return store.OutboxEntry{}, groupgate.Errorf(groupgate.Invalid, "an outbox entry names no users and no groups")
	}
	e.UserIDs = append([]string(nil), e.UserIDs...)
	e.Groups = append([]string(nil), e.Groups...)
	e.CreatedAt, e.Attempts, e.ClaimedUntil = s.stamp(), 0, time.Time{}
	err := s.q().QueryRow(ctx, `INSERT INTO sync_outbox (user_ids, groups, created_at) VALUES ($1, $2, $3) RETURNING id`,
		strs(e.UserIDs), strs(e.Groups), e.CreatedAt).Scan(&e.ID)
	if err != nil {
		return store.OutboxEntry{}, dbError(err, "enqueue outbox entry")
	}
	return e, nil
}

// EnqueueOutboxAudited writes both rows in one statement, without a
// savepoint inside InTx (see EnqueueOutbox).
func (s *Store) EnqueueOutboxAudited(ctx context.Context, e store.OutboxEntry, ev groupgate.AuditEvent) (store.OutboxEntry, error) {
	if len(e.UserIDs) == 0 && len(e.Groups) == 0 {
		return store.OutboxEntry{}, groupgate.Errorf(groupgate.Invalid, "an outbox entry names no users and no groups")
	}
	e.UserIDs = append([]string(nil), e.UserIDs...)
	e.Groups = append([]string(nil), e.Groups...)
	e.CreatedAt, e.Attempts, e.ClaimedUntil = s.stamp(), 0, time.Time{}
	if ev.At.IsZero() {
		ev.At = e.CreatedAt
	} else {
		ev.At = norm(ev.At)
	}
	err := s.q().QueryRow(ctx, `WITH aud AS (
			INSERT INTO audit_events (actor, action, target_type, target_id, before, after, at)
			VALUES ($4, $5, $6, $7, $8, $9, $10))
		INSERT INTO sync_outbox (user_ids, groups, created_at) VALUES ($1, $2, $3) RETURNING id`,
		strs(e.UserIDs), strs(e.Groups), e.CreatedAt,
		ev.Actor, ev.Action, ev.TargetType, ev.TargetID, nullJSON(ev.Before), nullJSON(ev.After), ev.At).Scan(&e.ID)
	if err != nil {
		return store.OutboxEntry{}, dbError(err, "enqueue outbox entry with audit event %q", ev.Action)
	}
	return e, nil
}

// ListOutbox lists pending entries by ID, which grows with creation.
func (s *Store) ListOutbox(ctx context.Context, limit int) ([]store.OutboxEntry, error) {
	lim := int64(math.MaxInt64)
	if limit > 0 {
		lim = int64(limit)
	}
	rows, err := s.q().Query(ctx, `SELECT `+outboxColumns+` FROM sync_outbox ORDER BY id LIMIT $1`, lim)
	if err != nil {
		return nil, dbError(err, "list outbox entries")
	}
	es, err := pgx.CollectRows(rows, scanOutbox)
	if err != nil {
		return nil, dbError(err, "list outbox entries")
	}
	return es, nil
}

func (s *Store) OutboxStats(ctx context.Context) (int, time.Time, error) {
	var (
		n      int
		oldest *time.Time
	)
	if err := s.q().QueryRow(ctx, `SELECT count(*), min(created_at) FROM sync_outbox`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, dbError(err, "count outbox entries")
	}
	if oldest == nil {
		return n, time.Time{}, nil
	}
	return n, oldest.UTC(), nil
}

// ClaimOutbox locks the candidate rows with SKIP LOCKED, so concurrent
// runners on other replicas pass over rows being claimed instead of
// waiting for them or taking them twice.
func (s *Store) ClaimOutbox(ctx context.Context, now, createdBefore time.Time, lease time.Duration, limit int) ([]store.OutboxEntry, error) {
	if limit <= 0 {
		return nil, groupgate.Errorf(groupgate.Invalid, "outbox claim needs a positive limit")
	}
	var es []store.OutboxEntry
	err := s.atomic(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `UPDATE sync_outbox o SET attempts = o.attempts + 1, claimed_until = $1
			FROM (SELECT id FROM sync_outbox WHERE created_at <= $2 AND claimed_until <= $3
			      ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) c
			WHERE o.id = c.id
			RETURNING o.id, o.user_ids, o.groups, o.created_at, o.attempts, o.claimed_until`,
			norm(now.Add(lease)), norm(createdBefore), norm(now), limit)
		if err != nil {
			return err
		}
		es, err = pgx.CollectRows(rows, scanOutbox)
		return err
	})
	if err != nil {
		return nil, dbError(err, "claim outbox entries")
	}
	slices.SortFunc(es, func(a, b store.OutboxEntry) int { return cmp.Compare(a.ID, b.ID) })
	return es, nil
}

// AckOutbox deletes the entry, if still there.
func (s *Store) AckOutbox(ctx context.Context, id int64) error {
	err := s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `DELETE FROM sync_outbox WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return dbError(err, "acknowledge outbox entry %d", id)
	}
	return nil
}
