-- Times are INTEGER microseconds since the Unix epoch (UTC): exact,
-- ordered, and free of driver time-format guessing. NULL means "never".
-- Case-insensitive uniqueness uses COLLATE NOCASE indexes (ASCII folding);
-- columns themselves stay BINARY so that ORDER BY is bytewise, as in Go.

CREATE TABLE users (
    id           TEXT    PRIMARY KEY,
    user_name    TEXT    NOT NULL CHECK (user_name <> ''),
    email        TEXT    NOT NULL DEFAULT '',
    display_name TEXT    NOT NULL DEFAULT '',
    active       INTEGER NOT NULL,
    external_id  TEXT    NOT NULL DEFAULT '',
    scim         TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_user_name ON users (user_name COLLATE NOCASE);
CREATE UNIQUE INDEX users_email ON users (email COLLATE NOCASE) WHERE email <> '';
CREATE UNIQUE INDEX users_external_id ON users (external_id) WHERE external_id <> '';
CREATE INDEX users_created ON users (created_at, id);

CREATE TABLE user_identities (
    provider   TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX user_identities_user ON user_identities (user_id, provider, subject);

CREATE TABLE groups (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE CHECK (name <> ''),
    external_id TEXT    NOT NULL DEFAULT '',
    scim        TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL
);
CREATE UNIQUE INDEX groups_external_id ON groups (external_id) WHERE external_id <> '';

-- Group sets refer to groups by name, not by row: login groups need not
-- exist as SCIM groups.
CREATE TABLE group_memberships (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_name TEXT    NOT NULL CHECK (group_name <> ''),
    source     TEXT    NOT NULL CHECK (source IN ('login', 'scim')),
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, group_name, source)
) WITHOUT ROWID;
CREATE INDEX group_memberships_group ON group_memberships (group_name, user_id);

CREATE TABLE organizations (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL CHECK (name <> ''),
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX organizations_name ON organizations (name COLLATE NOCASE);
CREATE INDEX organizations_order ON organizations (name, id);

CREATE TABLE repositories (
    id              TEXT    PRIMARY KEY,
    organization_id TEXT    NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL CHECK (name <> ''),
    visibility      TEXT    NOT NULL CHECK (visibility IN ('private', 'public')),
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX repositories_name ON repositories (organization_id, name COLLATE NOCASE);
CREATE INDEX repositories_order ON repositories (organization_id, name, id);

CREATE TABLE org_mappings (
    id              TEXT    PRIMARY KEY,
    organization_id TEXT    NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    group_name      TEXT    NOT NULL CHECK (group_name <> ''),
    role_override   TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (organization_id, group_name)
);
CREATE INDEX org_mappings_group ON org_mappings (group_name, organization_id);

CREATE TABLE repo_mappings (
    id            TEXT    PRIMARY KEY,
    repository_id TEXT    NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    group_name    TEXT    NOT NULL CHECK (group_name <> ''),
    role_override TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (repository_id, group_name)
);
CREATE INDEX repo_mappings_group ON repo_mappings (group_name, repository_id);

CREATE TABLE org_members (
    organization_id TEXT    NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT    NOT NULL CHECK (role <> ''),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (organization_id, user_id)
) WITHOUT ROWID;
CREATE INDEX org_members_user ON org_members (user_id, organization_id);

CREATE TABLE repo_contributors (
    repository_id TEXT    NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT    NOT NULL CHECK (role <> ''),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, user_id)
) WITHOUT ROWID;
CREATE INDEX repo_contributors_user ON repo_contributors (user_id, repository_id);

-- user_id is NULL for SCIM tokens; API tokens go with their user.
CREATE TABLE tokens (
    id           TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('api', 'scim')),
    name         TEXT    NOT NULL DEFAULT '',
    user_id      TEXT    REFERENCES users (id) ON DELETE CASCADE,
    hash         BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    CHECK ((kind = 'api') = (user_id IS NOT NULL))
);
CREATE INDEX tokens_list ON tokens (kind, user_id, created_at, id);

-- AUTOINCREMENT: IDs never repeat or go backwards, which readers that
-- page with "after ID" rely on.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    actor       TEXT    NOT NULL DEFAULT '',
    action      TEXT    NOT NULL DEFAULT '',
    target_type TEXT    NOT NULL DEFAULT '',
    target_id   TEXT    NOT NULL DEFAULT '',
    before_json TEXT,
    after_json  TEXT,
    at          INTEGER NOT NULL
);
