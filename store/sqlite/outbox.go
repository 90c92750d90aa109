package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

var _ store.OutboxStore = (*Store)(nil)

const outboxColumns = `id, user_ids, groups, created_at, attempts, claimed_until`

func scanOutbox(rows *sql.Rows) (store.OutboxEntry, error) {
	var (
		e               store.OutboxEntry
		users, groups   string
		created, leased int64
	)
	if err := rows.Scan(&e.ID, &users, &groups, &created, &e.Attempts, &leased); err != nil {
		return store.OutboxEntry{}, err
	}
	if err := json.Unmarshal([]byte(users), &e.UserIDs); err != nil {
		return store.OutboxEntry{}, err
	}
	if err := json.Unmarshal([]byte(groups), &e.Groups); err != nil {
		return store.OutboxEntry{}, err
	}
	e.CreatedAt = fromMicros(created)
	if leased != 0 {
		e.ClaimedUntil = fromMicros(leased)
	}
	return e, nil
}

func jsonStrings(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
}

// EnqueueOutbox stores e with the next ID.
func (s *Store) EnqueueOutbox(ctx context.Context, e store.OutboxEntry) (store.OutboxEntry, error) {
	if len(e.UserIDs) == 0 && len(e.Groups) == 0 {
		return store.OutboxEntry{}, groupgate.Errorf(groupgate.Invalid, "an outbox entry names no users and no groups")
	}
	e.UserIDs = append([]string(nil), e.UserIDs...)
	e.Groups = append([]string(nil), e.Groups...)
	e.CreatedAt, e.Attempts, e.ClaimedUntil = s.stamp(), 0, time.Time{}
	err := s.write(ctx, func(q queryer) error {
		if err := q.QueryRowContext(ctx, `INSERT INTO sync_outbox (user_ids, groups, created_at) VALUES (?, ?, ?) RETURNING id`,
			jsonStrings(e.UserIDs), jsonStrings(e.Groups), micros(e.CreatedAt)).Scan(&e.ID); err != nil {
			return s.wrap(ctx, err, "enqueue outbox entry")
		}
		return nil
	})
	if err != nil {
		return store.OutboxEntry{}, err
	}
	return e, nil
}

// EnqueueOutboxAudited makes both writes in one write transaction (or
// the caller's): in process, there is no round trip to save.
func (s *Store) EnqueueOutboxAudited(ctx context.Context, e store.OutboxEntry, ev groupgate.AuditEvent) (store.OutboxEntry, error) {
	if len(e.UserIDs) == 0 && len(e.Groups) == 0 {
		return store.OutboxEntry{}, groupgate.Errorf(groupgate.Invalid, "an outbox entry names no users and no groups")
	}
	var out store.OutboxEntry
	err := s.InTx(ctx, func(tx store.Store) error {
		var err error
		if out, err = tx.EnqueueOutbox(ctx, e); err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, ev)
		return err
	})
	if err != nil {
		return store.OutboxEntry{}, err
	}
	return out, nil
}

// ListOutbox lists pending entries by ID, which grows with creation.
func (s *Store) ListOutbox(ctx context.Context, limit int) ([]store.OutboxEntry, error) {
	lim := int64(-1)
	if limit > 0 {
		lim = int64(limit)
	}
	return query(ctx, s, scanOutbox, "outbox entries",
		`SELECT `+outboxColumns+` FROM sync_outbox ORDER BY id LIMIT ?`, lim)
}

func (s *Store) OutboxStats(ctx context.Context) (int, time.Time, error) {
	type stats struct {
		n      int
		oldest sql.NullInt64
	}
	got, err := query(ctx, s, func(rows *sql.Rows) (stats, error) {
		var st stats
		return st, rows.Scan(&st.n, &st.oldest)
	}, "outbox statistics", `SELECT count(*), min(created_at) FROM sync_outbox`)
	if err != nil {
		return 0, time.Time{}, err
	}
	if len(got) == 0 || !got[0].oldest.Valid {
		return 0, time.Time{}, nil
	}
	return got[0].n, fromMicros(got[0].oldest.Int64), nil
}

// ClaimOutbox takes entries in one write transaction: SQLite has a single
// writer, so two runners can never claim the same row.
func (s *Store) ClaimOutbox(ctx context.Context, now, createdBefore time.Time, lease time.Duration, limit int) ([]store.OutboxEntry, error) {
	if limit <= 0 {
		return nil, groupgate.Errorf(groupgate.Invalid, "outbox claim needs a positive limit")
	}
	var out []store.OutboxEntry
	err := s.write(ctx, func(q queryer) error {
		rows, err := q.QueryContext(ctx, `UPDATE sync_outbox SET attempts = attempts + 1, claimed_until = ?
			WHERE id IN (SELECT id FROM sync_outbox WHERE created_at <= ? AND claimed_until <= ? ORDER BY id LIMIT ?)
			RETURNING `+outboxColumns,
			micros(now.Add(lease)), micros(createdBefore), micros(now), limit)
		if err != nil {
			return s.wrap(ctx, err, "claim outbox entries")
		}
		out, err = scanAll(rows, scanOutbox)
		if err != nil {
			return s.wrap(ctx, err, "claim outbox entries")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// RETURNING gives no order guarantee.
	sortOutbox(out)
	return out, nil
}

func sortOutbox(es []store.OutboxEntry) {
	slices.SortFunc(es, func(a, b store.OutboxEntry) int { return cmp.Compare(a.ID, b.ID) })
}

// AckOutbox deletes the entry, if still there.
func (s *Store) AckOutbox(ctx context.Context, id int64) error {
	return s.write(ctx, func(q queryer) error {
		if _, err := q.ExecContext(ctx, `DELETE FROM sync_outbox WHERE id = ?`, id); err != nil {
			return s.wrap(ctx, err, "acknowledge outbox entry %d", id)
		}
		return nil
	})
}
