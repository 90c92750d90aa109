-- SCIM filters run in SQL. They read a jsonb copy of each SCIM document,
-- kept by the database, so that no query re-parses every row's text,
-- while the json column still returns the document byte for byte as it
-- was stored.
ALTER TABLE users ADD COLUMN scim_doc jsonb GENERATED ALWAYS AS (scim::jsonb) STORED;
ALTER TABLE groups ADD COLUMN scim_doc jsonb GENERATED ALWAYS AS (scim::jsonb) STORED;

-- Case-insensitive filters compare lower(...) in the "C" collation.
CREATE INDEX users_display_name_lower_idx ON users (lower(display_name));
CREATE INDEX groups_name_lower_idx ON groups (lower(name));
CREATE INDEX groups_created_at_idx ON groups (created_at, id);
-- UpdateGroupMembers reads and replaces the SCIM members of one group.
CREATE INDEX group_memberships_group_source_idx ON group_memberships (group_name, source, user_id);

-- groupgate_scim_time reads an RFC 3339 date-time from a SCIM document for
-- chronological comparison; anything else is NULL instead of an error, so
-- that one odd document cannot fail a whole filtered listing.
CREATE FUNCTION groupgate_scim_time(t text) RETURNS timestamptz
LANGUAGE plpgsql STABLE STRICT AS $$
BEGIN
    IF t !~ '^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$' THEN
        RETURN NULL;
    END IF;
    RETURN t::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
