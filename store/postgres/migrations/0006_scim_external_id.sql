-- externalId is the SCIM client's identifier for a resource: RFC 7643 §3.1
-- says the service provider does not enforce its uniqueness, and two IdPs
-- (or two tenants of one) may well use the same value. Keep the lookup
-- index, drop the uniqueness.
DROP INDEX users_external_id_key;
CREATE INDEX users_external_id_idx ON users (external_id) WHERE external_id <> '';
DROP INDEX groups_external_id_key;
CREATE INDEX groups_external_id_idx ON groups (external_id) WHERE external_id <> '';
