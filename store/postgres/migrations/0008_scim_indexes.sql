-- A filter on users' emails (emails[type eq "work" and value ew "…"])
-- read every user's document: 0.3 s over 100,000 users (issue 15). The
-- emails' values, folded as filters fold them (ASCII letters only) and
-- each between newlines, are kept in a column with a trigram index, which
-- serves eq, sw, ew and co; the filter still checks the document, so the
-- column only narrows the rows it reads (store/internal/sqlfilter).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- A generated column may not read another (scim_doc), hence scim::jsonb.
CREATE FUNCTION groupgate_scim_values(doc jsonb, attr text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT E'\n' || COALESCE(string_agg(lower((e.v ->> 'value') COLLATE "C") || E'\n', ''), '')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(doc -> attr) = 'array' THEN doc -> attr ELSE '[]'::jsonb END) AS e(v)
    WHERE jsonb_typeof(e.v -> 'value') = 'string'
$$;

ALTER TABLE users ADD COLUMN emails_values text
    GENERATED ALWAYS AS (groupgate_scim_values(scim::jsonb, 'emails')) STORED;
CREATE INDEX users_emails_values_trgm_idx ON users USING gin (emails_values gin_trgm_ops);

-- An IdP reading every active user walks pages of `active eq true`:
-- the count and the IDs skipped before a deep page come from this index
-- alone (index-only scans), not from every user's row.
CREATE INDEX users_active_created_idx ON users (active, created_at, id);
