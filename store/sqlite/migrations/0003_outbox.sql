-- Pending session rewrites, written in the transaction of each access
-- change and deleted once the post-commit push succeeds (sync's outbox).
-- user_ids and groups are JSON arrays of strings.
CREATE TABLE sync_outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_ids      TEXT    NOT NULL DEFAULT '[]',
    groups        TEXT    NOT NULL DEFAULT '[]',
    created_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claimed_until INTEGER NOT NULL DEFAULT 0
);
