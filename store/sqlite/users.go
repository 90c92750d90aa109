package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

const userColumns = `id, user_name, email, display_name, active, external_id, scim, created_at, updated_at, version, verified_email`

func scanUser(row interface{ Scan(...any) error }) (groupgate.User, error) {
	var (
		u                groupgate.User
		scim             sql.NullString
		created, updated int64
	)
	if err := row.Scan(&u.ID, &u.UserName, &u.Email, &u.DisplayName, &u.Active, &u.ExternalID,
		&scim, &created, &updated, &u.Version, &u.VerifiedEmail); err != nil {
		return groupgate.User{}, err
	}
	u.SCIM = fromJSONText(scim)
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return u, nil
}

func scanUserRows(rows *sql.Rows) (groupgate.User, error) { return scanUser(rows) }

// CreateUser stores u with its email key (groupgate.NormalizeEmail);
// Invalid without a user name, Conflict when the user name or external ID
// is taken. Emails may repeat.
func (s *Store) CreateUser(ctx context.Context, u groupgate.User) (groupgate.User, error) {
	if u.UserName == "" {
		return groupgate.User{}, groupgate.Errorf(groupgate.Invalid, "user name is required")
	}
	scim, err := jsonText("SCIM attributes", u.SCIM)
	if err != nil {
		return groupgate.User{}, err
	}
	if u.ID == "" {
		u.ID = store.NewID()
	}
	now := s.stamp()
	u.CreatedAt, u.UpdatedAt, u.Version = now, now, 1
	u.SCIM = fromJSONText(scim)
	err = s.write(ctx, func(q queryer) error {
		_, err := q.ExecContext(ctx, `INSERT INTO users (`+userColumns+`, email_norm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.UserName, u.Email, u.DisplayName, u.Active, u.ExternalID, scim,
			micros(u.CreatedAt), micros(u.UpdatedAt), u.Version, u.VerifiedEmail, groupgate.NormalizeEmail(u.Email))
		if err != nil {
			return s.wrap(ctx, err, "create user %q", u.UserName)
		}
		return s.indexEmailValues(ctx, q, u.ID, scim, false)
	})
	if err != nil {
		return groupgate.User{}, err
	}
	return u, nil
}

func (s *Store) getUser(ctx context.Context, q queryer, what, where string, arg ...any) (groupgate.User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+where, arg...))
	if err != nil {
		return groupgate.User{}, s.notFound(ctx, err, "user %s", what)
	}
	return u, nil
}

// GetUser finds a user by ID.
func (s *Store) GetUser(ctx context.Context, id string) (groupgate.User, error) {
	return s.getUser(ctx, s.reader(), id, `id = ?`, id)
}

// GetUserByUserName finds a user by user name, case-insensitively.
func (s *Store) GetUserByUserName(ctx context.Context, userName string) (groupgate.User, error) {
	return s.getUser(ctx, s.reader(), userName, `user_name = ? COLLATE NOCASE`, userName)
}

// ListUsersByEmail returns every user whose stored email key equals
// groupgate.NormalizeEmail(email), by creation then ID; none for an empty
// email. The key is compared as stored: SQLite's NOCASE folds ASCII only.
func (s *Store) ListUsersByEmail(ctx context.Context, email string) ([]groupgate.User, error) {
	key := groupgate.NormalizeEmail(email)
	if key == "" {
		return []groupgate.User{}, nil
	}
	return query(ctx, s, scanUserRows, "users by email",
		`SELECT `+userColumns+` FROM users WHERE email_norm = ? ORDER BY created_at, id`, key)
}

// GetUserByExternalID finds a user by the IdP's SCIM externalId.
func (s *Store) GetUserByExternalID(ctx context.Context, externalID string) (groupgate.User, error) {
	if externalID == "" {
		return groupgate.User{}, groupgate.Errorf(groupgate.NotFound, "user with empty external ID not found")
	}
	return s.getUser(ctx, s.reader(), externalID, `external_id = ? AND external_id <> ''`, externalID)
}

// GetUserByIdentity finds the user linked to provider's subject.
func (s *Store) GetUserByIdentity(ctx context.Context, provider, subject string) (groupgate.User, error) {
	return s.getUser(ctx, s.reader(), provider+"/"+subject,
		`id = (SELECT user_id FROM user_identities WHERE provider = ? AND subject = ?)`, provider, subject)
}

// UpdateUser runs fn on the current row in a write transaction and stores
// the result with a new UpdatedAt and Version; fn's error is returned
// unchanged.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*groupgate.User) error) (groupgate.User, error) {
	var out groupgate.User
	err := s.write(ctx, func(q queryer) error {
		cur, err := s.getUser(ctx, q, id, `id = ?`, id)
		if err != nil {
			return err
		}
		u := cur
		// fn may change the document in place; the email index is
		// rewritten when it differs from the stored one.
		u.SCIM = slices.Clone(cur.SCIM)
		if err := fn(&u); err != nil {
			return err
		}
		if u.UserName == "" {
			return groupgate.Errorf(groupgate.Invalid, "user name is required")
		}
		scim, err := jsonText("SCIM attributes", u.SCIM)
		if err != nil {
			return err
		}
		u.ID, u.CreatedAt = cur.ID, cur.CreatedAt
		u.UpdatedAt, u.Version = s.stamp(), cur.Version+1
		u.SCIM = fromJSONText(scim)
		_, err = q.ExecContext(ctx, `UPDATE users SET user_name = ?, email = ?, display_name = ?, active = ?,
			external_id = ?, scim = ?, updated_at = ?, version = ?, verified_email = ?, email_norm = ? WHERE id = ?`,
			u.UserName, u.Email, u.DisplayName, u.Active, u.ExternalID, scim, micros(u.UpdatedAt), u.Version,
			u.VerifiedEmail, groupgate.NormalizeEmail(u.Email), u.ID)
		if err != nil {
			return s.wrap(ctx, err, "update user %s", id)
		}
		if !bytes.Equal(u.SCIM, cur.SCIM) {
			if err := s.indexEmailValues(ctx, q, u.ID, scim, true); err != nil {
				return err
			}
		}
		out = u
		return nil
	})
	if err != nil {
		return groupgate.User{}, err
	}
	return out, nil
}

// DeleteUser removes the user; the schema cascades to identities, group
// set, manual roles and API tokens.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.write(ctx, func(q queryer) error {
		return s.deleteOne(ctx, q, "user", id, `DELETE FROM users WHERE id = ?`, id)
	})
}

// deleteOne runs a DELETE that must remove exactly one row.
func (s *Store) deleteOne(ctx context.Context, q queryer, what, id, stmt string, args ...any) error {
	res, err := q.ExecContext(ctx, stmt, args...)
	if err != nil {
		return s.wrap(ctx, err, "delete %s %s", what, id)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(ctx, err, "delete %s %s", what, id)
	}
	if n == 0 {
		return groupgate.Errorf(groupgate.NotFound, "%s %s not found", what, id)
	}
	return nil
}

// ListUsers orders by creation then ID.
func (s *Store) ListUsers(ctx context.Context, opts store.ListOptions) ([]groupgate.User, error) {
	limit, offset := page(opts)
	return query(ctx, s, scanUserRows, "users",
		`SELECT `+userColumns+` FROM users ORDER BY created_at, id LIMIT ? OFFSET ?`, limit, offset)
}

// CountUsers counts every user.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.reader().QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, s.wrap(ctx, err, "count users")
	}
	return n, nil
}

// LinkIdentity links provider's subject to userID: Invalid when the user
// does not exist, Conflict when another user has it, nil when this one
// already does.
func (s *Store) LinkIdentity(ctx context.Context, userID, provider, subject string) error {
	if provider == "" || subject == "" {
		return groupgate.Errorf(groupgate.Invalid, "provider and subject are required")
	}
	return s.write(ctx, func(q queryer) error {
		if _, err := s.getUser(ctx, q, userID, `id = ?`, userID); err != nil {
			if groupgate.IsCode(err, groupgate.NotFound) {
				return groupgate.WrapError(groupgate.Invalid, err, "user %s does not exist", userID)
			}
			return err
		}
		var owner string
		err := q.QueryRowContext(ctx, `SELECT user_id FROM user_identities WHERE provider = ? AND subject = ?`,
			provider, subject).Scan(&owner)
		switch {
		case err == nil && owner == userID:
			return nil
		case err == nil:
			return groupgate.Errorf(groupgate.Conflict, "identity %s/%s is linked to another user", provider, subject)
		case !errors.Is(err, sql.ErrNoRows):
			return s.wrap(ctx, err, "load identity %s/%s", provider, subject)
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO user_identities (provider, subject, user_id, created_at) VALUES (?, ?, ?, ?)`,
			provider, subject, userID, micros(s.stamp())); err != nil {
			return s.wrap(ctx, err, "link identity %s/%s", provider, subject)
		}
		return nil
	})
}

// ListIdentities orders by provider then subject.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]groupgate.UserIdentity, error) {
	return query(ctx, s, func(rows *sql.Rows) (groupgate.UserIdentity, error) {
		var (
			id      groupgate.UserIdentity
			created int64
		)
		err := rows.Scan(&id.UserID, &id.Provider, &id.Subject, &created)
		id.CreatedAt = fromMicros(created)
		return id, err
	}, "identities",
		`SELECT user_id, provider, subject, created_at FROM user_identities WHERE user_id = ? ORDER BY provider, subject`, userID)
}
