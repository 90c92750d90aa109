package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

const userColumns = `u.id, u.user_name, u.email, u.display_name, u.active, u.external_id, u.scim, u.created_at, u.updated_at, u.version, u.verified_email`

func scanUser(row pgx.Row) (groupgate.User, error) {
	var u groupgate.User
	var scim []byte
	err := row.Scan(&u.ID, &u.UserName, &u.Email, &u.DisplayName, &u.Active, &u.ExternalID, &scim, &u.CreatedAt, &u.UpdatedAt, &u.Version, &u.VerifiedEmail)
	if err != nil {
		return groupgate.User{}, err
	}
	if len(scim) > 0 {
		u.SCIM = scim
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, nil
}

// getUser reads one user by a WHERE clause over alias u.
func getUser(ctx context.Context, q querier, what, where string, args ...any) (groupgate.User, error) {
	u, err := scanUser(q.QueryRow(ctx, `SELECT `+userColumns+` FROM users u `+where, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return groupgate.User{}, notFound("user %s not found", what)
	}
	if err != nil {
		return groupgate.User{}, dbError(err, "load user %s", what)
	}
	return u, nil
}

func (s *Store) CreateUser(ctx context.Context, u groupgate.User) (groupgate.User, error) {
	if u.UserName == "" {
		return groupgate.User{}, invalid("user name is required")
	}
	if u.ID == "" {
		u.ID = store.NewID()
	}
	now := s.stamp()
	u.CreatedAt, u.UpdatedAt, u.Version = now, now, 1
	err := s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO users (id, user_name, email, display_name, active, external_id, scim, created_at, updated_at, version,
			verified_email, email_norm) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			u.ID, u.UserName, u.Email, u.DisplayName, u.Active, u.ExternalID, nullJSON(u.SCIM), u.CreatedAt, u.UpdatedAt, u.Version,
			u.VerifiedEmail, groupgate.NormalizeEmail(u.Email))
		return err
	})
	if err != nil {
		return groupgate.User{}, dbError(err, "create user %q", u.UserName)
	}
	if len(u.SCIM) == 0 {
		u.SCIM = nil
	}
	return u, nil
}

func (s *Store) GetUser(ctx context.Context, id string) (groupgate.User, error) {
	return getUser(ctx, s.q(), id, `WHERE u.id = $1`, id)
}

func (s *Store) GetUserByUserName(ctx context.Context, userName string) (groupgate.User, error) {
	return getUser(ctx, s.q(), "named "+userName, `WHERE lower(u.user_name) = lower($1)`, userName)
}

// ListUsersByEmail returns every user whose stored email key equals
// groupgate.NormalizeEmail(email), by creation then ID; none for an empty
// email. Never lower(): the key is computed in Go only.
func (s *Store) ListUsersByEmail(ctx context.Context, email string) ([]groupgate.User, error) {
	key := groupgate.NormalizeEmail(email)
	if key == "" {
		return []groupgate.User{}, nil
	}
	rows, err := s.q().Query(ctx, `SELECT `+userColumns+` FROM users u WHERE u.email_norm = $1 ORDER BY u.created_at, u.id`, key)
	if err != nil {
		return nil, dbError(err, "list users by email")
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (groupgate.User, error) { return scanUser(r) })
	if err != nil {
		return nil, dbError(err, "list users by email")
	}
	if users == nil {
		users = []groupgate.User{}
	}
	return users, nil
}

func (s *Store) GetUserByExternalID(ctx context.Context, externalID string) (groupgate.User, error) {
	if externalID == "" {
		return groupgate.User{}, notFound("user with an empty external ID not found")
	}
	return getUser(ctx, s.q(), "with external ID "+externalID, `WHERE u.external_id = $1`, externalID)
}

func (s *Store) GetUserByIdentity(ctx context.Context, provider, subject string) (groupgate.User, error) {
	return getUser(ctx, s.q(), "of "+provider+" subject "+subject,
		`JOIN user_identities i ON i.user_id = u.id WHERE i.provider = $1 AND i.subject = $2`, provider, subject)
}

// UpdateUser locks the row (FOR NO KEY UPDATE: see UpdateGroupSet), so
// concurrent updates of one user apply one after the other and none is lost.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*groupgate.User) error) (groupgate.User, error) {
	var out groupgate.User
	err := s.atomic(ctx, func(q querier) error {
		cur, err := getUser(ctx, q, id, `WHERE u.id = $1 FOR NO KEY UPDATE`, id)
		if err != nil {
			return err
		}
		next := cur
		next.SCIM = append([]byte(nil), cur.SCIM...)
		if err := fn(&next); err != nil {
			return err
		}
		if next.UserName == "" {
			return invalid("user name is required")
		}
		next.ID, next.CreatedAt = cur.ID, cur.CreatedAt
		next.UpdatedAt = s.stamp()
		next.Version = cur.Version + 1
		_, err = q.Exec(ctx, `UPDATE users SET user_name = $2, email = $3, display_name = $4, active = $5,
			external_id = $6, scim = $7, updated_at = $8, version = $9, verified_email = $10, email_norm = $11 WHERE id = $1`,
			next.ID, next.UserName, next.Email, next.DisplayName, next.Active, next.ExternalID, nullJSON(next.SCIM), next.UpdatedAt, next.Version,
			next.VerifiedEmail, groupgate.NormalizeEmail(next.Email))
		if err != nil {
			return dbError(err, "update user %s", id)
		}
		if len(next.SCIM) == 0 {
			next.SCIM = nil
		}
		out = next
		return nil
	})
	if err != nil {
		return groupgate.User{}, err
	}
	return out, nil
}

// DeleteUser relies on ON DELETE CASCADE for identities, group set, manual
// roles and API tokens.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "users", "user", id)
}

// deleteByID deletes one row of table by id; NotFound when none.
func (s *Store) deleteByID(ctx context.Context, table, noun, id string) error {
	var deleted int64
	err := s.write(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `DELETE FROM `+table+` WHERE id = $1`, id)
		deleted = tag.RowsAffected()
		return err
	})
	if err != nil {
		return dbError(err, "delete %s %s", noun, id)
	}
	if deleted == 0 {
		return notFound("%s %s not found", noun, id)
	}
	return nil
}

func (s *Store) ListUsers(ctx context.Context, opts store.ListOptions) ([]groupgate.User, error) {
	limit, offset := page(opts)
	rows, err := s.q().Query(ctx, `SELECT `+userColumns+` FROM users u ORDER BY u.created_at, u.id LIMIT $1 OFFSET $2`, limit, offset)
	if err != nil {
		return nil, dbError(err, "list users")
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (groupgate.User, error) { return scanUser(r) })
	if err != nil {
		return nil, dbError(err, "list users")
	}
	return users, nil
}

func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.q().QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, dbError(err, "count users")
	}
	return n, nil
}

// LinkIdentity inserts the link unless (provider, subject) is linked
// already, then tells "linked to this user" from "linked to another".
func (s *Store) LinkIdentity(ctx context.Context, userID, provider, subject string) error {
	if provider == "" || subject == "" {
		return invalid("identity provider and subject are required")
	}
	return s.atomic(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `INSERT INTO user_identities (provider, subject, user_id, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (provider, subject) DO NOTHING`,
			provider, subject, userID, s.stamp())
		if err != nil {
			if hasCode(err, codeForeignKeyViolation) {
				return invalid("link identity: user %s does not exist", userID)
			}
			return dbError(err, "link identity %s/%s", provider, subject)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var owner string
		err = q.QueryRow(ctx, `SELECT user_id FROM user_identities WHERE provider = $1 AND subject = $2`, provider, subject).Scan(&owner)
		if err != nil {
			return dbError(err, "link identity %s/%s", provider, subject)
		}
		if owner == userID {
			return nil
		}
		var exists bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, userID).Scan(&exists); err != nil {
			return dbError(err, "link identity %s/%s", provider, subject)
		}
		if !exists {
			return invalid("link identity: user %s does not exist", userID)
		}
		return groupgate.Errorf(groupgate.Conflict, "identity %s/%s is linked to another user", provider, subject)
	})
}

func (s *Store) ListIdentities(ctx context.Context, userID string) ([]groupgate.UserIdentity, error) {
	rows, err := s.q().Query(ctx, `SELECT user_id, provider, subject, created_at FROM user_identities
		WHERE user_id = $1 ORDER BY provider, subject`, userID)
	if err != nil {
		return nil, dbError(err, "list identities of user %s", userID)
	}
	ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (groupgate.UserIdentity, error) {
		var i groupgate.UserIdentity
		err := r.Scan(&i.UserID, &i.Provider, &i.Subject, &i.CreatedAt)
		i.CreatedAt = i.CreatedAt.UTC()
		return i, err
	})
	if err != nil {
		return nil, dbError(err, "list identities of user %s", userID)
	}
	return ids, nil
}

// CreateUserUnmatched inserts u and its audit event ev in one statement
// (one round trip, one transaction, ev written only with u) unless a user
// already has u's userName, case-insensitively, or, when byEmail, u's
// email key; created reports whether it inserted. It is the fast path of
// a SCIM create (issue 15): a create that finds a match or a clash takes
// the full transaction, which adopts or names the conflict. u.ID must be
// set, as ev names it. With byEmail the email key's lock (LockEmail) is
// held across the check and the insert, so two creates of one email
// cannot both insert.
func (s *Store) CreateUserUnmatched(ctx context.Context, u groupgate.User, byEmail bool, ev groupgate.AuditEvent) (groupgate.User, bool, error) {
	if u.UserName == "" {
		return groupgate.User{}, false, invalid("user name is required")
	}
	if u.ID == "" {
		return groupgate.User{}, false, invalid("user ID is required")
	}
	now := s.stamp()
	u.CreatedAt, u.UpdatedAt, u.Version = now, now, 1
	if ev.At.IsZero() {
		ev.At = now
	} else {
		ev.At = norm(ev.At)
	}
	key := groupgate.NormalizeEmail(u.Email)
	var created bool
	var err error
	if s.tx != nil {
		// A savepoint, so that a refused row leaves the caller's
		// transaction usable.
		err = s.atomic(ctx, func(q querier) error {
			var ierr error
			created, ierr = insertUnmatched(ctx, q.(pgx.Tx), u, key, byEmail, ev)
			return ierr
		})
	} else {
		created, err = insertUnmatched(ctx, s.pool, u, key, byEmail, ev)
	}
	if err != nil {
		return groupgate.User{}, false, dbError(err, "create user %q", u.UserName)
	}
	if !created {
		return groupgate.User{}, false, nil
	}
	if len(u.SCIM) == 0 {
		u.SCIM = nil
	}
	return u, true, nil
}
