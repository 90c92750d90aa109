-- Pending session rewrites, written in the transaction of each access
-- change and deleted once the post-commit push succeeds (sync's outbox).
-- Runners on several replicas claim rows with FOR UPDATE SKIP LOCKED and a
-- lease, so that a crashed runner's rows are taken again once it ends.
CREATE TABLE sync_outbox (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_ids      text[]      NOT NULL DEFAULT '{}',
    groups        text[]      NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    attempts      integer     NOT NULL DEFAULT 0,
    claimed_until timestamptz NOT NULL DEFAULT '-infinity'
);
CREATE INDEX sync_outbox_created ON sync_outbox (created_at, id);
