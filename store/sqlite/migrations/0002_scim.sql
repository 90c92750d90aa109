-- SCIM filters compare userName and displayName case-insensitively
-- (COLLATE NOCASE); these indexes serve eq, ranges and sw prefixes on them.
CREATE INDEX users_display_name ON users (display_name COLLATE NOCASE);
CREATE INDEX groups_name_nocase ON groups (name COLLATE NOCASE);
CREATE INDEX groups_created ON groups (created_at, id);
-- UpdateGroupMembers reads and replaces the SCIM members of one group.
CREATE INDEX group_memberships_group_source ON group_memberships (group_name, source, user_id);
