-- The initial schema. Text columns use the "C" collation so that ORDER BY
-- is byte order, the same order Go's sort and the SQLite backend give;
-- case-insensitive uniqueness uses unique indexes on lower(col), which in
-- "C" folds ASCII letters only (as SQLite's lower() does), and needs no
-- citext extension.

CREATE TABLE users (
    id           text COLLATE "C" PRIMARY KEY,
    user_name    text COLLATE "C" NOT NULL CHECK (user_name <> ''),
    email        text COLLATE "C" NOT NULL DEFAULT '',
    display_name text COLLATE "C" NOT NULL DEFAULT '',
    active       boolean NOT NULL,
    external_id  text COLLATE "C" NOT NULL DEFAULT '',
    scim         json,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      bigint NOT NULL
);
CREATE UNIQUE INDEX users_user_name_key ON users (lower(user_name));
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email <> '';
CREATE UNIQUE INDEX users_external_id_key ON users (external_id) WHERE external_id <> '';
CREATE INDEX users_created_at_idx ON users (created_at, id);

CREATE TABLE user_identities (
    provider   text COLLATE "C" NOT NULL CHECK (provider <> ''),
    subject    text COLLATE "C" NOT NULL CHECK (subject <> ''),
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX user_identities_user_id_idx ON user_identities (user_id);

CREATE TABLE groups (
    id          text COLLATE "C" PRIMARY KEY,
    name        text COLLATE "C" NOT NULL UNIQUE CHECK (name <> ''),
    external_id text COLLATE "C" NOT NULL DEFAULT '',
    scim        json,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint NOT NULL
);
CREATE UNIQUE INDEX groups_external_id_key ON groups (external_id) WHERE external_id <> '';

-- Group sets refer to groups by name, as logins know them; there is no
-- foreign key to groups on purpose.
CREATE TABLE group_memberships (
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_name text COLLATE "C" NOT NULL CHECK (group_name <> ''),
    source     text COLLATE "C" NOT NULL CHECK (source IN ('login', 'scim')),
    added_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, group_name, source)
);
CREATE INDEX group_memberships_group_name_idx ON group_memberships (group_name, user_id);

CREATE TABLE organizations (
    id         text COLLATE "C" PRIMARY KEY,
    name       text COLLATE "C" NOT NULL CHECK (name <> ''),
    created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX organizations_name_key ON organizations (lower(name));
CREATE INDEX organizations_name_idx ON organizations (name, id);

CREATE TABLE repositories (
    id              text COLLATE "C" PRIMARY KEY,
    organization_id text COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text COLLATE "C" NOT NULL CHECK (name <> ''),
    visibility      text COLLATE "C" NOT NULL CHECK (visibility IN ('private', 'public')),
    created_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX repositories_org_name_key ON repositories (organization_id, lower(name));
CREATE INDEX repositories_org_name_idx ON repositories (organization_id, name, id);

CREATE TABLE org_mappings (
    id              text COLLATE "C" PRIMARY KEY,
    organization_id text COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    group_name      text COLLATE "C" NOT NULL CHECK (group_name <> ''),
    role_override   text COLLATE "C" NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (organization_id, group_name)
);
-- MappingsForGroups looks mappings up by group name.
CREATE INDEX org_mappings_group_name_idx ON org_mappings (group_name);

CREATE TABLE repo_mappings (
    id            text COLLATE "C" PRIMARY KEY,
    repository_id text COLLATE "C" NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    group_name    text COLLATE "C" NOT NULL CHECK (group_name <> ''),
    role_override text COLLATE "C" NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (repository_id, group_name)
);
CREATE INDEX repo_mappings_group_name_idx ON repo_mappings (group_name);

CREATE TABLE org_members (
    organization_id text COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            text COLLATE "C" NOT NULL CHECK (role <> ''),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX org_members_user_id_idx ON org_members (user_id, organization_id);

CREATE TABLE repo_contributors (
    repository_id text COLLATE "C" NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    user_id       text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          text COLLATE "C" NOT NULL CHECK (role <> ''),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (repository_id, user_id)
);
CREATE INDEX repo_contributors_user_id_idx ON repo_contributors (user_id, repository_id);

CREATE TABLE tokens (
    id           text COLLATE "C" PRIMARY KEY,
    kind         text COLLATE "C" NOT NULL,
    name         text COLLATE "C" NOT NULL DEFAULT '',
    user_id      text COLLATE "C" REFERENCES users (id) ON DELETE CASCADE,
    hash         bytea NOT NULL UNIQUE CHECK (length(hash) > 0),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    -- API tokens belong to a user, SCIM tokens to nobody.
    CHECK ((kind = 'api' AND user_id IS NOT NULL) OR (kind = 'scim' AND user_id IS NULL))
);
CREATE INDEX tokens_kind_created_idx ON tokens (kind, created_at, id);
CREATE INDEX tokens_user_id_idx ON tokens (user_id);

-- Append-only: the store has no statement that updates or deletes events.
CREATE TABLE audit_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor       text COLLATE "C" NOT NULL DEFAULT '',
    action      text COLLATE "C" NOT NULL DEFAULT '',
    target_type text COLLATE "C" NOT NULL DEFAULT '',
    target_id   text COLLATE "C" NOT NULL DEFAULT '',
    before      json,
    after       json,
    at          timestamptz NOT NULL
);
