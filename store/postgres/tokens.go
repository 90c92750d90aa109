package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

const tokenColumns = `id, kind, name, coalesce(user_id, ''), hash, created_at, expires_at, last_used_at`

func scanToken(row pgx.Row) (groupgate.Token, error) {
	var t groupgate.Token
	var expires, used *time.Time
	if err := row.Scan(&t.ID, &t.Kind, &t.Name, &t.UserID, &t.Hash, &t.CreatedAt, &expires, &used); err != nil {
		return groupgate.Token{}, err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	t.ExpiresAt, t.LastUsedAt = fromNullTime(expires), fromNullTime(used)
	return t, nil
}

func (s *Store) CreateToken(ctx context.Context, t groupgate.Token) (groupgate.Token, error) {
	switch t.Kind {
	case groupgate.TokenAPI:
		if t.UserID == "" {
			return groupgate.Token{}, invalid("an API token needs a user")
		}
	case groupgate.TokenSCIM:
		if t.UserID != "" {
			return groupgate.Token{}, invalid("a SCIM token belongs to no user")
		}
	default:
		return groupgate.Token{}, invalid("unknown token kind %q", t.Kind)
	}
	if len(t.Hash) == 0 {
		return groupgate.Token{}, invalid("token hash is required")
	}
	if t.ID == "" {
		t.ID = store.NewID()
	}
	t.CreatedAt = s.stamp()
	if !t.ExpiresAt.IsZero() {
		t.ExpiresAt = norm(t.ExpiresAt)
	}
	if !t.LastUsedAt.IsZero() {
		t.LastUsedAt = norm(t.LastUsedAt)
	}
	var userID any
	if t.UserID != "" {
		userID = t.UserID
	}
	err := s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO tokens (id, kind, name, user_id, hash, created_at, expires_at, last_used_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			t.ID, t.Kind, t.Name, userID, t.Hash, t.CreatedAt, nullTime(t.ExpiresAt), nullTime(t.LastUsedAt))
		return err
	})
	if hasCode(err, codeForeignKeyViolation) {
		return groupgate.Token{}, groupgate.WrapError(groupgate.Invalid, err, "create token: user %s does not exist", t.UserID)
	}
	if hasCode(err, codeUniqueViolation) {
		return groupgate.Token{}, groupgate.WrapError(groupgate.Conflict, err, "create token: a token with this hash exists")
	}
	if err != nil {
		return groupgate.Token{}, dbError(err, "create token %q", t.Name)
	}
	return t, nil
}

func (s *Store) GetTokenByHash(ctx context.Context, kind groupgate.TokenKind, hash []byte) (groupgate.Token, error) {
	t, err := scanToken(s.q().QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1 AND kind = $2`, hash, kind))
	if errors.Is(err, pgx.ErrNoRows) {
		// The message never echoes the hash: it is a credential.
		return groupgate.Token{}, notFound("no %s token has this hash", kind)
	}
	if err != nil {
		return groupgate.Token{}, dbError(err, "load %s token", kind)
	}
	return t, nil
}

func (s *Store) ListTokens(ctx context.Context, kind groupgate.TokenKind, userID string) ([]groupgate.Token, error) {
	rows, err := s.q().Query(ctx, `SELECT `+tokenColumns+` FROM tokens
		WHERE kind = $1 AND ($2 = '' OR user_id = $2) ORDER BY created_at, id`, kind, userID)
	if err != nil {
		return nil, dbError(err, "list %s tokens", kind)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (groupgate.Token, error) { return scanToken(r) })
	if err != nil {
		return nil, dbError(err, "list %s tokens", kind)
	}
	return ts, nil
}

// DeleteToken deletes a token; TokenGeneration moves once the deletion
// commits.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	err := s.deleteByID(ctx, "tokens", "token", id)
	if err != nil {
		return err
	}
	if s.tx != nil {
		s.deletedToken = true
	} else {
		s.tokenGen.Add(1)
	}
	return nil
}

// TokenGeneration changes after every deletion of a token through this
// Store or a transaction of it has committed, so that a cache of verified
// tokens (the SCIM server's) knows when to look again: a revocation is
// then immediate on this replica. It says nothing of other replicas.
func (s *Store) TokenGeneration() int64 {
	return s.tokenGen.Load()
}

func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	var n int64
	err := s.write(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `UPDATE tokens SET last_used_at = $2 WHERE id = $1`, id, nullTime(at))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return dbError(err, "record use of token %s", id)
	}
	if n == 0 {
		return notFound("token %s not found", id)
	}
	return nil
}

// CreateAPIToken: see store.TokenStore. The owner's row is locked FOR
// UPDATE until the caller's transaction ends, which serializes calls for
// one owner under READ COMMITTED.
func (s *Store) CreateAPIToken(ctx context.Context, t groupgate.Token, now time.Time, max int) (groupgate.Token, error) {
	if t.Kind != groupgate.TokenAPI || t.UserID == "" {
		return groupgate.Token{}, invalid("CreateAPIToken takes an API token with a user")
	}
	var out groupgate.Token
	err := s.InTx(ctx, func(tx store.Store) error {
		q := tx.(*Store).q()
		var id string
		err := q.QueryRow(ctx, `SELECT id FROM users WHERE id = $1 FOR UPDATE`, t.UserID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return invalid("create token: user %s does not exist", t.UserID)
		}
		if err != nil {
			return dbError(err, "lock user %s", t.UserID)
		}
		if _, err := q.Exec(ctx, `DELETE FROM tokens WHERE kind = $1 AND user_id = $2 AND expires_at <= $3`,
			groupgate.TokenAPI, t.UserID, norm(now)); err != nil {
			return dbError(err, "delete expired API tokens of user %s", t.UserID)
		}
		var n int
		if err := q.QueryRow(ctx, `SELECT count(*) FROM tokens WHERE kind = $1 AND user_id = $2`,
			groupgate.TokenAPI, t.UserID).Scan(&n); err != nil {
			return dbError(err, "count API tokens of user %s", t.UserID)
		}
		if n >= max {
			return groupgate.Errorf(groupgate.ResourceExhausted,
				"you hold %d live API tokens, the most allowed; delete one you no longer use", n)
		}
		out, err = tx.CreateToken(ctx, t)
		return err
	})
	if err != nil {
		return groupgate.Token{}, err
	}
	return out, nil
}
