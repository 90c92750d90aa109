package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/store"
)

// signingKeysLockKey is the transaction advisory lock that serializes
// UpdateSigningKeys across replicas, so that two replicas due to rotate
// at once add one key, not two. (The bytes spell "ggsignky".)
const signingKeysLockKey int64 = 0x67677369676e6b79

// ListSigningKeys implements store.SigningKeyStore.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	return s.signingKeys(ctx, s.q())
}

func (s *Store) signingKeys(ctx context.Context, q querier) ([]store.SigningKey, error) {
	rows, err := q.Query(ctx, `SELECT id, algorithm, public_key, private_key, created_at, active_at
		FROM signing_keys ORDER BY active_at, id`)
	if err != nil {
		return nil, dbError(err, "list signing keys")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.SigningKey, error) {
		var k store.SigningKey
		err := row.Scan(&k.ID, &k.Algorithm, &k.PublicKey, &k.PrivateKey, &k.CreatedAt, &k.ActiveAt)
		k.CreatedAt, k.ActiveAt = norm(k.CreatedAt), norm(k.ActiveAt)
		return k, err
	})
	if err != nil {
		return nil, dbError(err, "list signing keys")
	}
	return out, nil
}

// UpdateSigningKeys implements store.SigningKeyStore under a transaction
// advisory lock, released at commit or rollback.
func (s *Store) UpdateSigningKeys(ctx context.Context, fn func([]store.SigningKey) ([]store.SigningKey, error)) ([]store.SigningKey, error) {
	var out []store.SigningKey
	err := s.atomic(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", signingKeysLockKey); err != nil {
			return dbError(err, "lock signing keys")
		}
		cur, err := s.signingKeys(ctx, q)
		if err != nil {
			return err
		}
		next, err := fn(store.CloneSigningKeys(cur))
		if err != nil {
			return err
		}
		next, err = store.CheckSigningKeys(cur, next, s.stamp())
		if err != nil {
			return err
		}
		keep := make(map[string]bool, len(next))
		for _, k := range next {
			keep[k.ID] = true
		}
		had := make(map[string]bool, len(cur))
		var gone []string
		for _, k := range cur {
			had[k.ID] = true
			if !keep[k.ID] {
				gone = append(gone, k.ID)
			}
		}
		if len(gone) > 0 {
			if _, err := q.Exec(ctx, `DELETE FROM signing_keys WHERE id = ANY($1)`, gone); err != nil {
				return dbError(err, "delete signing keys")
			}
		}
		for i, k := range next {
			if had[k.ID] {
				continue
			}
			k.CreatedAt, k.ActiveAt = norm(k.CreatedAt), norm(k.ActiveAt)
			next[i] = k
			if _, err := q.Exec(ctx, `INSERT INTO signing_keys (id, algorithm, public_key, private_key, created_at, active_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, k.ID, k.Algorithm, k.PublicKey, k.PrivateKey, k.CreatedAt, k.ActiveAt); err != nil {
				return dbError(err, "store signing key %s", k.ID)
			}
		}
		out = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
