package sqlite

import (
	"context"
	"database/sql"

	"github.com/groupgate/groupgate"
)

// afterMigration holds the Go steps some migrations need, run in the same
// transaction right after the migration's SQL: values only Go may compute.
func afterMigration(version int) func(ctx context.Context, s *Store, q queryer) error {
	switch version {
	case 4:
		return backfillEmailNorm
	case 9:
		return backfillEmailValues
	}
	return nil
}

// backfillEmailNorm computes users.email_norm for the rows that existed
// before migration 0004, with groupgate.NormalizeEmail: SQL has no
// function that folds as Go does.
func backfillEmailNorm(ctx context.Context, s *Store, q queryer) error {
	rows, err := q.QueryContext(ctx, `SELECT id, email FROM users WHERE email <> ''`)
	if err != nil {
		return s.wrap(ctx, err, "read emails to normalize")
	}
	type row struct{ id, email string }
	var todo []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.email); err != nil {
			_ = rows.Close()
			return s.wrap(ctx, err, "read emails to normalize")
		}
		todo = append(todo, r)
	}
	if err := rows.Close(); err != nil {
		return s.wrap(ctx, err, "read emails to normalize")
	}
	if err := rows.Err(); err != nil {
		return s.wrap(ctx, err, "read emails to normalize")
	}
	for _, r := range todo {
		if _, err := q.ExecContext(ctx, `UPDATE users SET email_norm = ? WHERE id = ?`, groupgate.NormalizeEmail(r.email), r.id); err != nil {
			return s.wrap(ctx, err, "normalize email of user %s", r.id)
		}
	}
	if _, err := q.ExecContext(ctx, vouchOperatorAccounts); err != nil {
		return s.wrap(ctx, err, "vouch for operator-created accounts")
	}
	return nil
}

// vouchOperatorAccounts gives the accounts that neither a login nor SCIM
// made (no identity, no SCIM document, no externalId: those `groupgate
// token create` and `groupgate dev` created, which vouch for their
// addresses today) their email as verified, so that a machine account in
// admins: stays an admin across the upgrade. Every other account's admin
// rights wait for its next verified login.
const vouchOperatorAccounts = `UPDATE users SET verified_email = email
	WHERE email <> '' AND scim IS NULL AND external_id = ''
	AND NOT EXISTS (SELECT 1 FROM user_identities i WHERE i.user_id = users.id)`

// backfillEmailValues indexes the email values of the users that existed
// before migration 0009 (emailvalues.go), a batch of documents at a time
// so that a large directory is never held in memory whole.
func backfillEmailValues(ctx context.Context, s *Store, q queryer) error {
	const batch = 1000
	type row struct {
		id  string
		doc sql.NullString
	}
	after := ""
	for {
		rows, err := q.QueryContext(ctx, `SELECT id, scim FROM users WHERE scim IS NOT NULL AND id > ? ORDER BY id LIMIT ?`, after, batch)
		if err != nil {
			return s.wrap(ctx, err, "read SCIM documents to index")
		}
		todo, err := scanAll(rows, func(rows *sql.Rows) (row, error) {
			var r row
			return r, rows.Scan(&r.id, &r.doc)
		})
		if err != nil {
			return s.wrap(ctx, err, "read SCIM documents to index")
		}
		for _, r := range todo {
			if err := s.indexEmailValues(ctx, q, r.id, r.doc, true); err != nil {
				return err
			}
		}
		if len(todo) < batch {
			return nil
		}
		after = todo[len(todo)-1].id
	}
}
