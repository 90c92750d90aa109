package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
)

// afterMigration holds the Go steps some migrations need, run in the
// migration's transaction right after its SQL: values only Go may compute.
func afterMigration(version int) func(ctx context.Context, tx pgx.Tx) error {
	switch version {
	case 4:
		return backfillEmailNorm
	}
	return nil
}

// backfillEmailNorm computes users.email_norm for the rows that existed
// before migration 0004, with groupgate.NormalizeEmail: lower() folds by
// the database's own tables, which is what the column replaces.
func backfillEmailNorm(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT id, email FROM users WHERE email <> ''`)
	if err != nil {
		return dbError(err, "read emails to normalize")
	}
	type row struct{ ID, Email string }
	todo, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		return dbError(err, "read emails to normalize")
	}
	var b pgx.Batch
	for _, r := range todo {
		b.Queue(`UPDATE users SET email_norm = $1 WHERE id = $2`, groupgate.NormalizeEmail(r.Email), r.ID)
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return dbError(err, "normalize emails")
	}
	// As in store/sqlite: accounts neither a login nor SCIM made (those
	// `groupgate token create` and `groupgate dev` created, which vouch for
	// their addresses) keep admins: across the upgrade; every other
	// account's admin rights wait for its next verified login.
	if _, err := tx.Exec(ctx, `UPDATE users SET verified_email = email
		WHERE email <> '' AND scim IS NULL AND external_id = ''
		AND NOT EXISTS (SELECT 1 FROM user_identities i WHERE i.user_id = users.id)`); err != nil {
		return dbError(err, "vouch for operator-created accounts")
	}
	return nil
}
