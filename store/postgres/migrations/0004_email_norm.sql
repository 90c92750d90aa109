-- Emails are compared under one key computed in Go
-- (groupgate.NormalizeEmail: NFKC, simple lowercase, NFKC), stored beside
-- the address; lower() is no longer used for them (it follows the
-- database's own Unicode tables and folded U+212A KELVIN SIGN onto k where
-- Go did not). The key is not unique: SCIM with match_key username may give
-- two accounts one address, and login linking refuses an address that
-- several accounts share. Existing rows get their key from the Go step that
-- runs right after this file, in the same transaction
-- (store/postgres/backfill.go).
ALTER TABLE users ADD COLUMN email_norm text COLLATE "C" NOT NULL DEFAULT '';
-- The address a login last proved (the IdP said email_verified, or the
-- provider vouches for its emails); instance admins bind to it.
ALTER TABLE users ADD COLUMN verified_email text COLLATE "C" NOT NULL DEFAULT '';
DROP INDEX users_email_key;
CREATE INDEX users_email_norm_idx ON users (email_norm) WHERE email_norm <> '';
