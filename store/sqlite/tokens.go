package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

const tokenColumns = `id, kind, name, user_id, hash, created_at, expires_at, last_used_at`

func scanToken(row interface{ Scan(...any) error }) (groupgate.Token, error) {
	var (
		t                 groupgate.Token
		userID            sql.NullString
		created           int64
		expires, lastUsed sql.NullInt64
	)
	if err := row.Scan(&t.ID, &t.Kind, &t.Name, &userID, &t.Hash, &created, &expires, &lastUsed); err != nil {
		return groupgate.Token{}, err
	}
	t.UserID = userID.String
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = fromMicros(created), fromNullMicros(expires), fromNullMicros(lastUsed)
	return t, nil
}

func scanTokenRows(rows *sql.Rows) (groupgate.Token, error) { return scanToken(rows) }

// CreateToken stores t: an API token needs an existing user, a SCIM token
// none; Conflict when the hash is taken.
func (s *Store) CreateToken(ctx context.Context, t groupgate.Token) (groupgate.Token, error) {
	switch t.Kind {
	case groupgate.TokenAPI:
		if t.UserID == "" {
			return groupgate.Token{}, groupgate.Errorf(groupgate.Invalid, "an API token needs a user")
		}
	case groupgate.TokenSCIM:
		if t.UserID != "" {
			return groupgate.Token{}, groupgate.Errorf(groupgate.Invalid, "a SCIM token belongs to no user")
		}
	default:
		return groupgate.Token{}, groupgate.Errorf(groupgate.Invalid, "unknown token kind %q", t.Kind)
	}
	if len(t.Hash) == 0 {
		return groupgate.Token{}, groupgate.Errorf(groupgate.Invalid, "token hash is required")
	}
	if t.ID == "" {
		t.ID = store.NewID()
	}
	t.Hash = append([]byte(nil), t.Hash...)
	t.CreatedAt = s.stamp()
	t.ExpiresAt = fromNullMicros(nullMicros(t.ExpiresAt))
	t.LastUsedAt = fromNullMicros(nullMicros(t.LastUsedAt))
	userID := sql.NullString{String: t.UserID, Valid: t.UserID != ""}
	err := s.write(ctx, func(q queryer) error {
		// A missing user fails the foreign key: Invalid.
		if _, err := q.ExecContext(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, string(t.Kind), t.Name, userID, t.Hash, micros(t.CreatedAt),
			nullMicros(t.ExpiresAt), nullMicros(t.LastUsedAt)); err != nil {
			return s.wrap(ctx, err, "create %s token", t.Kind)
		}
		return nil
	})
	if err != nil {
		return groupgate.Token{}, err
	}
	return t, nil
}

// GetTokenByHash finds a token of kind by its hash, expired or not.
func (s *Store) GetTokenByHash(ctx context.Context, kind groupgate.TokenKind, hash []byte) (groupgate.Token, error) {
	t, err := scanToken(s.reader().QueryRowContext(ctx,
		`SELECT `+tokenColumns+` FROM tokens WHERE kind = ? AND hash = ?`, string(kind), hash))
	if err != nil {
		return groupgate.Token{}, s.notFound(ctx, err, "%s token", kind)
	}
	return t, nil
}

// ListTokens lists tokens of kind, of one user unless userID is empty, by
// creation then ID.
func (s *Store) ListTokens(ctx context.Context, kind groupgate.TokenKind, userID string) ([]groupgate.Token, error) {
	return query(ctx, s, scanTokenRows, string(kind)+" tokens",
		`SELECT `+tokenColumns+` FROM tokens WHERE kind = ? AND (? = '' OR user_id = ?) ORDER BY created_at, id`,
		string(kind), userID, userID)
}

// DeleteToken removes a token.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	return s.write(ctx, func(q queryer) error {
		return s.deleteOne(ctx, q, "token", id, `DELETE FROM tokens WHERE id = ?`, id)
	})
}

// TouchToken records the token's last use.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	return s.write(ctx, func(q queryer) error {
		res, err := q.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, nullMicros(at), id)
		if err != nil {
			return s.wrap(ctx, err, "touch token %s", id)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.wrap(ctx, err, "touch token %s", id)
		} else if n == 0 {
			return groupgate.Errorf(groupgate.NotFound, "token %s not found", id)
		}
		return nil
	})
}

// AppendAudit stores ev with the next ID; At defaults to now.
func (s *Store) AppendAudit(ctx context.Context, ev groupgate.AuditEvent) (groupgate.AuditEvent, error) {
	before, err := jsonText("audit before", ev.Before)
	if err != nil {
		return groupgate.AuditEvent{}, err
	}
	after, err := jsonText("audit after", ev.After)
	if err != nil {
		return groupgate.AuditEvent{}, err
	}
	if ev.At.IsZero() {
		ev.At = s.now()
	}
	ev.At = fromMicros(micros(ev.At))
	ev.Before, ev.After = fromJSONText(before), fromJSONText(after)
	err = s.write(ctx, func(q queryer) error {
		if err := q.QueryRowContext(ctx, `INSERT INTO audit_events (actor, action, target_type, target_id, before_json, after_json, at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			ev.Actor, ev.Action, ev.TargetType, ev.TargetID, before, after, micros(ev.At)).Scan(&ev.ID); err != nil {
			return s.wrap(ctx, err, "append audit event %s", ev.Action)
		}
		return nil
	})
	if err != nil {
		return groupgate.AuditEvent{}, err
	}
	return ev, nil
}

// ListAudit returns events after afterID, oldest first; limit 0 = all.
func (s *Store) ListAudit(ctx context.Context, afterID int64, limit int) ([]groupgate.AuditEvent, error) {
	if limit <= 0 {
		limit = -1
	}
	return query(ctx, s, func(rows *sql.Rows) (groupgate.AuditEvent, error) {
		var (
			ev            groupgate.AuditEvent
			before, after sql.NullString
			at            int64
		)
		err := rows.Scan(&ev.ID, &ev.Actor, &ev.Action, &ev.TargetType, &ev.TargetID, &before, &after, &at)
		ev.Before, ev.After, ev.At = fromJSONText(before), fromJSONText(after), fromMicros(at)
		return ev, err
	}, "audit events",
		`SELECT id, actor, action, target_type, target_id, before_json, after_json, at FROM audit_events
		WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
}

// SearchAudit: see store.AuditStore.
func (s *Store) SearchAudit(ctx context.Context, f store.AuditFilter, limit int) ([]groupgate.AuditEvent, error) {
	if limit <= 0 {
		limit = -1
	}
	where, args := []string{"1 = 1"}, []any{}
	for _, c := range []struct{ col, v string }{{"actor", f.Actor}, {"action", f.Action}, {"target_id", f.TargetID}} {
		if c.v != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	if f.BeforeID > 0 {
		where, args = append(where, "id < ?"), append(args, f.BeforeID)
	}
	args = append(args, limit)
	return query(ctx, s, func(rows *sql.Rows) (groupgate.AuditEvent, error) {
		var (
			ev            groupgate.AuditEvent
			before, after sql.NullString
			at            int64
		)
		err := rows.Scan(&ev.ID, &ev.Actor, &ev.Action, &ev.TargetType, &ev.TargetID, &before, &after, &at)
		ev.Before, ev.After, ev.At = fromJSONText(before), fromJSONText(after), fromMicros(at)
		return ev, err
	}, "audit events",
		`SELECT id, actor, action, target_type, target_id, before_json, after_json, at FROM audit_events
		WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, args...)
}

// CreateAPIToken: see store.TokenStore. SQLite write transactions take the
// database's write lock at BEGIN (IMMEDIATE), which serializes calls.
func (s *Store) CreateAPIToken(ctx context.Context, t groupgate.Token, now time.Time, max int) (groupgate.Token, error) {
	if t.Kind != groupgate.TokenAPI || t.UserID == "" {
		return groupgate.Token{}, groupgate.Errorf(groupgate.Invalid, "CreateAPIToken takes an API token with a user")
	}
	var out groupgate.Token
	err := s.InTx(ctx, func(tx store.Store) error {
		txs := tx.(*Store)
		err := txs.write(ctx, func(q queryer) error {
			if _, err := q.ExecContext(ctx, `DELETE FROM tokens WHERE kind = ? AND user_id = ? AND expires_at IS NOT NULL AND expires_at <= ?`,
				string(groupgate.TokenAPI), t.UserID, micros(now)); err != nil {
				return s.wrap(ctx, err, "delete expired API tokens of user %s", t.UserID)
			}
			var n int
			if err := q.QueryRowContext(ctx, `SELECT count(*) FROM tokens WHERE kind = ? AND user_id = ?`,
				string(groupgate.TokenAPI), t.UserID).Scan(&n); err != nil {
				return s.wrap(ctx, err, "count API tokens of user %s", t.UserID)
			}
			if n >= max {
				return groupgate.Errorf(groupgate.ResourceExhausted,
					"you hold %d live API tokens, the most allowed; delete one you no longer use", n)
			}
			return nil
		})
		if err != nil {
			return err
		}
		out, err = txs.CreateToken(ctx, t)
		return err
	})
	if err != nil {
		return groupgate.Token{}, err
	}
	return out, nil
}
