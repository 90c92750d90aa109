-- A filter on users' emails (emails[type eq "work" and value ew "…"])
-- read every user's document: seconds over 100,000 users (issue 15).
-- user_email_values holds the string "value" of each object in a user's
-- SCIM "emails" array, folded as filters fold (ASCII letters only), and
-- the same text reversed, so that B-tree indexes serve eq and sw (on the
-- folded value) and ew (a prefix of the reversed one). Go computes the
-- rows (reversal and folding in Go, so that they agree with the filter
-- translation's), in the transaction that writes the user's document
-- (store/sqlite/emailvalues.go); the migration's Go step fills it for the
-- users that exist. The filter still checks the document: these rows only
-- narrow which documents it reads (store/internal/sqlfilter).
CREATE TABLE user_email_values (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    value_fold TEXT NOT NULL,
    value_rev  TEXT NOT NULL,
    PRIMARY KEY (user_id, value_fold)
) WITHOUT ROWID;
CREATE INDEX user_email_values_fold ON user_email_values (value_fold);
CREATE INDEX user_email_values_rev ON user_email_values (value_rev);

-- An IdP reading every active user walks pages of `active eq true`: the
-- count and the IDs skipped before a deep page come from this index
-- alone, not from every user's row.
CREATE INDEX users_active_created ON users (active, created_at, id);
