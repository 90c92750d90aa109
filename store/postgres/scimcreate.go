package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
)

// emailLockClass is the first key of the transaction advisory locks taken
// on email keys (pg_advisory_xact_lock(int, int)); the migration lock uses
// the one-bigint form, a separate key space.
const emailLockClass int32 = 0x67676531

// createUserSQL inserts u unless a user has its userName
// (case-insensitively) or, when byEmail ($11), its email key, and its
// audit event from the inserted row, in one statement: the event is
// written exactly when the user is. ON CONFLICT DO NOTHING turns a
// concurrent insert of the same userName after the check into "not
// inserted" instead of an error.
const createUserSQL = `WITH ins AS (
		INSERT INTO users (id, user_name, email, display_name, active, external_id, scim, created_at, updated_at, version,
			verified_email, email_norm)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $8, 1, $9, $10
		WHERE NOT EXISTS (SELECT 1 FROM users WHERE lower(user_name) = lower($2))
		  AND NOT ($11 AND $10 <> '' AND EXISTS (SELECT 1 FROM users WHERE email_norm <> '' AND email_norm = $10))
		ON CONFLICT DO NOTHING
		RETURNING id),
	aud AS (
		INSERT INTO audit_events (actor, action, target_type, target_id, before, after, at)
		SELECT $12, $13, $14, $15, $16, $17, $18 FROM ins
		RETURNING target_id)
	SELECT count(*) FROM aud`

// lockEmailSQL takes the lock of one email key until the transaction ends.
const lockEmailSQL = `SELECT pg_advisory_xact_lock($1::integer, $2::integer)`

// batchSender is what a pool and a transaction have for a pipelined batch.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// insertUnmatched runs createUserSQL for u, with key its email key. With
// byEmail the email key's lock is taken first, in the same round trip and
// transaction (a pipelined batch ends in one Sync: an implicit transaction
// on the pool, the caller's otherwise): the insert's check then runs after
// any other create of that email has committed, and sees it.
func insertUnmatched(ctx context.Context, q batchSender, u groupgate.User, key string, byEmail bool, ev groupgate.AuditEvent) (bool, error) {
	b := &pgx.Batch{}
	lock := byEmail && key != ""
	if lock {
		b.Queue(lockEmailSQL, emailLockClass, emailLockKey(key))
	}
	b.Queue(createUserSQL, u.ID, u.UserName, u.Email, u.DisplayName, u.Active, u.ExternalID, nullJSON(u.SCIM), u.CreatedAt,
		u.VerifiedEmail, key, byEmail, ev.Actor, ev.Action, ev.TargetType, ev.TargetID, nullJSON(ev.Before), nullJSON(ev.After), ev.At)
	br := q.SendBatch(ctx, b)
	var inserted int
	err := func() error {
		if lock {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		return br.QueryRow().Scan(&inserted)
	}()
	// Close reads the rest, the commit included: only then is the user
	// durable.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return inserted > 0, err
}

// emailLockKey is the advisory lock key of an email key: 31 bits of its
// SHA-256. Two keys sharing a lock only wait for each other.
func emailLockKey(key string) int32 {
	sum := sha256.Sum256([]byte(key))
	return int32(binary.BigEndian.Uint32(sum[:4]) >> 1)
}

// LockEmail holds, until the transaction ends, the lock that creates of a
// user with email's key take under match_key email (CreateUserUnmatched
// and sync's matching transaction): with it, the check that no user has
// the email and the insert that follows cannot interleave with another
// create of the same email, on any replica. Email keys are not unique in
// the table (match_key username may share one), so no index can say it.
// Outside a transaction it is Invalid; an empty key locks nothing.
func (s *Store) LockEmail(ctx context.Context, email string) error {
	if s.tx == nil {
		return invalid("LockEmail needs a transaction")
	}
	key := groupgate.NormalizeEmail(email)
	if key == "" {
		return nil
	}
	if _, err := s.tx.Exec(ctx, lockEmailSQL, emailLockClass, emailLockKey(key)); err != nil {
		return dbError(err, "lock email")
	}
	return nil
}
