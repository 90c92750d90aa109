package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
)

// CreateUsersUnmatched is CreateUserUnmatched for several users in order,
// with one commit for all of them (SCIM Bulk at import speed, issue 15):
// it returns the longest prefix of users it inserted and committed, each
// with its audit event evs[i]. It stops before the first user that
// CreateUserUnmatched would not insert (a userName or, with byEmail, an
// email key already taken, also by an earlier user of the batch); the
// caller runs that one through the full create. A returned user is
// committed; after an error none of them is.
func (s *Store) CreateUsersUnmatched(ctx context.Context, users []groupgate.User, byEmail bool, evs []groupgate.AuditEvent) ([]groupgate.User, error) {
	if len(evs) != len(users) {
		return nil, invalid("one audit event per user is required")
	}
	if s.tx != nil {
		// Its commit is the caller's: the batch would answer for a commit
		// it does not make.
		return nil, invalid("CreateUsersUnmatched commits; call it outside a transaction")
	}
	for _, u := range users {
		if u.UserName == "" {
			return nil, invalid("user name is required")
		}
		if u.ID == "" {
			return nil, invalid("user ID is required")
		}
	}
	users, evs = slices.Clone(users), slices.Clone(evs)
	keys := make([]string, len(users))
	for i := range users {
		now := s.stamp()
		users[i].CreatedAt, users[i].UpdatedAt, users[i].Version = now, now, 1
		if evs[i].At.IsZero() {
			evs[i].At = now
		} else {
			evs[i].At = norm(evs[i].At)
		}
		keys[i] = groupgate.NormalizeEmail(users[i].Email)
	}
	n := len(users)
	for n > 0 {
		inserted, err := s.insertUnmatchedBatch(ctx, users[:n], keys[:n], byEmail, evs[:n])
		if err != nil {
			return nil, dbError(err, "create %d users", n)
		}
		if inserted == n {
			break
		}
		// The batch was rolled back; the prefix before the refused user
		// goes again, alone (it inserts unless a concurrent create took
		// one of its names meanwhile, and then shrinks again).
		n = inserted
	}
	out := users[:n]
	for i := range out {
		if len(out[i].SCIM) == 0 {
			out[i].SCIM = nil
		}
	}
	return out, nil
}

// insertUnmatchedBatch runs createUserSQL for each user in one transaction
// and one round trip, and commits when every one inserted; otherwise it
// rolls back and returns the index of the first that did not. The email
// locks are all taken first, in key order, so that two batches wait for
// each other instead of deadlocking on them.
func (s *Store) insertUnmatchedBatch(ctx context.Context, users []groupgate.User, keys []string, byEmail bool, evs []groupgate.AuditEvent) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	// Rolls back unless committed; a no-op after Commit.
	defer rollback(ctx, tx)
	b := &pgx.Batch{}
	var locks []int32
	if byEmail {
		for _, k := range keys {
			if k != "" {
				locks = append(locks, emailLockKey(k))
			}
		}
		slices.Sort(locks)
		locks = slices.Compact(locks)
		for _, l := range locks {
			b.Queue(lockEmailSQL, emailLockClass, l)
		}
	}
	for i, u := range users {
		ev := evs[i]
		b.Queue(createUserSQL, u.ID, u.UserName, u.Email, u.DisplayName, u.Active, u.ExternalID, nullJSON(u.SCIM), u.CreatedAt,
			u.VerifiedEmail, keys[i], byEmail, ev.Actor, ev.Action, ev.TargetType, ev.TargetID, nullJSON(ev.Before), nullJSON(ev.After), ev.At)
	}
	br := tx.SendBatch(ctx, b)
	first := len(users)
	err = func() error {
		for range locks {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		for i := range users {
			var inserted int
			if err := br.QueryRow().Scan(&inserted); err != nil {
				return err
			}
			if inserted == 0 && first == len(users) {
				first = i
			}
		}
		return nil
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if first < len(users) {
		return first, nil
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return first, nil
}
