package sqlite

import (
	"context"

	"github.com/groupgate/groupgate/store"
)

// ListSigningKeys implements store.SigningKeyStore.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	return s.signingKeys(ctx, s.reader())
}

func (s *Store) signingKeys(ctx context.Context, q queryer) ([]store.SigningKey, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, algorithm, public_key, private_key, created_at, active_at
		FROM signing_keys ORDER BY active_at, id`)
	if err != nil {
		return nil, s.wrap(ctx, err, "list signing keys")
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var (
			k                 store.SigningKey
			created, activeAt int64
		)
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.PublicKey, &k.PrivateKey, &created, &activeAt); err != nil {
			return nil, s.wrap(ctx, err, "read signing key")
		}
		k.CreatedAt, k.ActiveAt = fromMicros(created), fromMicros(activeAt)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(ctx, err, "list signing keys")
	}
	return out, nil
}

// UpdateSigningKeys implements store.SigningKeyStore. The single write
// connection and BEGIN IMMEDIATE serialize it with every other writer,
// other processes on the same file included.
func (s *Store) UpdateSigningKeys(ctx context.Context, fn func([]store.SigningKey) ([]store.SigningKey, error)) ([]store.SigningKey, error) {
	var out []store.SigningKey
	err := s.write(ctx, func(q queryer) error {
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
		for _, k := range cur {
			had[k.ID] = true
			if keep[k.ID] {
				continue
			}
			if _, err := q.ExecContext(ctx, `DELETE FROM signing_keys WHERE id = ?`, k.ID); err != nil {
				return s.wrap(ctx, err, "delete signing key %s", k.ID)
			}
		}
		for i, k := range next {
			if had[k.ID] {
				continue
			}
			k.CreatedAt, k.ActiveAt = fromMicros(micros(k.CreatedAt)), fromMicros(micros(k.ActiveAt))
			next[i] = k
			if _, err := q.ExecContext(ctx, `INSERT INTO signing_keys (id, algorithm, public_key, private_key, created_at, active_at)
				VALUES (?, ?, ?, ?, ?, ?)`, k.ID, k.Algorithm, k.PublicKey, k.PrivateKey, micros(k.CreatedAt), micros(k.ActiveAt)); err != nil {
				return s.wrap(ctx, err, "store signing key %s", k.ID)
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
