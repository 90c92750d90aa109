package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	stdsync "sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
)

// Group commit of SCIM user creates (issue 15). Each create must be durable
// before its 201, so on its own it costs a statement, a commit and a WAL
// flush. Creates that arrive while another batch is being written wait for
// it and are then written together, in one statement and one commit: a
// lone create is written at once (no window, no added latency), and under
// load the batch grows by itself. Each call still gets its own answer:
// inserted, or not (a match or a clash, which the caller resolves in its
// own transaction, as before), or its own error.

// maxCreateBatch bounds the rows of one statement (its arrays and its
// plan); IdPs push with a handful of connections, so batches stay small.
const maxCreateBatch = 256

// createFlushTimeout bounds one batch's statement: the batch writes other
// callers' rows too, so it cannot run on one caller's context alone.
const createFlushTimeout = 30 * time.Second

// emailLockClass is the first key of the transaction advisory locks taken
// on email keys (pg_advisory_xact_lock(int, int)); the migration lock uses
// the one-bigint form, a separate key space.
const emailLockClass int32 = 0x67676531

// createBatcher queues the creates of one Store.
type createBatcher struct {
	mu    stdsync.Mutex
	queue []*pendingCreate
	// writing is set while a caller writes a batch; the queue is empty
	// when it is not.
	writing bool
}

// pendingCreate is one CreateUserUnmatched call waiting for its batch.
type pendingCreate struct {
	u       groupgate.User
	byEmail bool
	key     string // groupgate.NormalizeEmail(u.Email)
	ev      groupgate.AuditEvent

	// done is closed when the result is set, or when this call must
	// write the next batch (lead).
	done    chan struct{}
	lead    bool
	created bool
	err     error
}

// createUnmatched queues p and returns once its batch has committed. The
// first caller finding nobody writing writes the queue; when it is done it
// hands the queue to the first caller still waiting, so that exactly one
// batch is written at a time and none waits for a timer.
func (b *createBatcher) createUnmatched(ctx context.Context, s *Store, p *pendingCreate) {
	b.mu.Lock()
	b.queue = append(b.queue, p)
	if b.writing {
		b.mu.Unlock()
		<-p.done
		if !p.lead {
			return
		}
	} else {
		b.writing = true
		b.mu.Unlock()
	}
	// p leads: it is first in the queue, so the batch taken holds it.
	b.mu.Lock()
	batch := b.take()
	b.mu.Unlock()

	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createFlushTimeout)
	s.writeCreates(wctx, s.pool, batch)
	cancel()

	b.mu.Lock()
	if len(b.queue) > 0 {
		next := b.queue[0]
		next.lead = true
		close(next.done)
	} else {
		b.writing = false
	}
	b.mu.Unlock()
	for _, q := range batch {
		if q != p {
			close(q.done)
		}
	}
}

// take removes the next batch from the queue, in arrival order. A call
// whose email key an earlier one in the batch has is left for the next
// batch: email keys are not unique in the table, so two rows with one key
// in one statement would both pass its check, where one after the other
// the second sees the first.
func (b *createBatcher) take() []*pendingCreate {
	var (
		batch []*pendingCreate
		rest  []*pendingCreate
		keys  = map[string]bool{}
	)
	for _, p := range b.queue {
		if len(batch) == maxCreateBatch || (p.key != "" && keys[p.key]) {
			rest = append(rest, p)
			continue
		}
		if p.key != "" {
			keys[p.key] = true
		}
		batch = append(batch, p)
	}
	b.queue = rest
	return batch
}

// batchSender is what a pool and a transaction have for a pipelined batch.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// writeCreates writes batch in one transaction and sets each call's
// result. If the batch fails as a whole (one row the database refuses, a
// deadlock with another replica), each call is written again on its own,
// so that it gets the answer it would have had alone and the other rows
// are not lost with it.
func (s *Store) writeCreates(ctx context.Context, q batchSender, batch []*pendingCreate) {
	inserted, err := s.insertUnmatched(ctx, q, batch)
	if err != nil && len(batch) > 1 {
		for _, p := range batch {
			s.writeCreates(ctx, q, []*pendingCreate{p})
		}
		return
	}
	for _, p := range batch {
		p.created, p.err = inserted[p.u.ID], err
		if err != nil {
			p.err = dbError(err, "create user %q", p.u.UserName)
		}
	}
}

// createUsersSQL inserts each input row whose userName (case-insensitively)
// no user has yet, nor, when by_email, whose email key, and an audit event
// for each row inserted, in one statement: an event is written exactly
// when its user is. ON CONFLICT DO NOTHING covers a concurrent insert of
// the same userName after the NOT EXISTS check, and a second row of the
// batch with the userName of an earlier one: "not inserted" then, not an
// error that would abort the batch.
const createUsersSQL = `WITH input AS (
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::text[],
			$8::timestamptz[], $9::text[], $10::text[], $11::boolean[])
			WITH ORDINALITY AS t(id, user_name, email, display_name, active, external_id, scim, at, verified_email, email_norm, by_email, ord)),
	ins AS (
		INSERT INTO users (id, user_name, email, display_name, active, external_id, scim, created_at, updated_at, version,
			verified_email, email_norm)
		SELECT i.id, i.user_name, i.email, i.display_name, i.active, i.external_id, i.scim::json, i.at, i.at, 1,
			i.verified_email, i.email_norm
		FROM input i
		WHERE NOT EXISTS (SELECT 1 FROM users WHERE lower(user_name) = lower(i.user_name))
		  AND NOT (i.by_email AND i.email_norm <> '' AND EXISTS (SELECT 1 FROM users WHERE email_norm <> '' AND email_norm = i.email_norm))
		ORDER BY i.ord
		ON CONFLICT DO NOTHING
		RETURNING id),
	aud AS (
		INSERT INTO audit_events (actor, action, target_type, target_id, before, after, at)
		SELECT a.actor, a.action, a.target_type, a.target_id, a.before::json, a.after::json, a.at
		FROM unnest($12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::timestamptz[])
			WITH ORDINALITY AS a(actor, action, target_type, target_id, before, after, at, ord)
		JOIN ins ON ins.id = a.target_id
		ORDER BY a.ord
		RETURNING target_id)
	SELECT target_id FROM aud`

// lockEmailsSQL takes the email locks of a batch in the order given
// (sorted by every caller, so that two batches never wait on each other).
const lockEmailsSQL = `SELECT pg_advisory_xact_lock($1::integer, k) FROM unnest($2::integer[]) WITH ORDINALITY AS t(k, ord) ORDER BY ord`

// insertUnmatched runs the batch's statements in one round trip and one
// implicit transaction (a pipelined batch ends in a single Sync), and
// returns the IDs it inserted.
func (s *Store) insertUnmatched(ctx context.Context, q batchSender, batch []*pendingCreate) (map[string]bool, error) {
	n := len(batch)
	var (
		ids, names, emails, displays, externals, verified, keys = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		docs                        = make([]*string, n)
		actives, byEmail            = make([]bool, n), make([]bool, n)
		ats, evAts                  = make([]time.Time, n), make([]time.Time, n)
		actors, actions, types, tgt = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		befores, afters             = make([]*string, n), make([]*string, n)
		locks                       []int32
	)
	for i, p := range batch {
		u := p.u
		ids[i], names[i], emails[i], displays[i], externals[i], verified[i], keys[i] =
			u.ID, u.UserName, u.Email, u.DisplayName, u.ExternalID, u.VerifiedEmail, p.key
		docs[i] = nullText(u.SCIM)
		actives[i], byEmail[i], ats[i] = u.Active, p.byEmail, u.CreatedAt
		ev := p.ev
		actors[i], actions[i], types[i], tgt[i], evAts[i] = ev.Actor, ev.Action, ev.TargetType, ev.TargetID, ev.At
		befores[i], afters[i] = nullText(ev.Before), nullText(ev.After)
		if p.byEmail && p.key != "" {
			locks = append(locks, emailLockKey(p.key))
		}
	}
	b := &pgx.Batch{}
	if len(locks) > 0 {
		slices.Sort(locks)
		b.Queue(lockEmailsSQL, emailLockClass, slices.Compact(locks))
	}
	b.Queue(createUsersSQL, ids, names, emails, displays, actives, externals, docs, ats, verified, keys, byEmail,
		actors, actions, types, tgt, befores, afters, evAts)
	br := q.SendBatch(ctx, b)
	inserted := make(map[string]bool, n)
	err := func() error {
		if len(locks) > 0 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, id := range got {
			inserted[id] = true
		}
		return nil
	}()
	// Close reads the rest, the commit included: only then is a row
	// durable.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return inserted, nil
}

// nullText is nullJSON for an array element: NULL for an empty blob.
func nullText(b []byte) *string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	return &s
}

// emailLockKey is the advisory lock key of an email key: the first 31
// bits of its SHA-256. Two keys sharing a lock only wait for each other.
func emailLockKey(key string) int32 {
	sum := sha256.Sum256([]byte(key))
	return int32(binary.BigEndian.Uint32(sum[:4]) >> 1)
}

// LockEmail holds, until the transaction ends, the lock that creates of a
// user with email's key take under match_key email (createUsersSQL's
// batches and sync's matching transaction): with it, the check that no
// user has the email and the insert that follows cannot interleave with
// another create of the same email, on any replica. Email keys are not
// unique in the table (match_key username may share one), so no index can
// say it. Outside a transaction it is Invalid; an empty key locks nothing.
func (s *Store) LockEmail(ctx context.Context, email string) error {
	if s.tx == nil {
		return invalid("LockEmail needs a transaction")
	}
	key := groupgate.NormalizeEmail(email)
	if key == "" {
		return nil
	}
	if _, err := s.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::integer, $2::integer)`, emailLockClass, emailLockKey(key)); err != nil {
		return dbError(err, "lock email")
	}
	return nil
}
