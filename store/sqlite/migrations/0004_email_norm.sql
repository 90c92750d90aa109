-- Emails are compared under one key computed in Go
-- (groupgate.NormalizeEmail: NFKC, simple lowercase, NFKC), stored beside
-- the address; COLLATE NOCASE is no longer used for them. The key is not
-- unique: SCIM with match_key username may give two accounts one address,
-- and login linking refuses an address that several accounts share.
-- Existing rows get their key from the Go step that runs right after this
-- file, in the same transaction (store/sqlite/backfill.go).
ALTER TABLE users ADD COLUMN email_norm TEXT NOT NULL DEFAULT '';
-- The address a login last proved (the IdP said email_verified, or the
-- provider vouches for its emails); instance admins bind to it.
ALTER TABLE users ADD COLUMN verified_email TEXT NOT NULL DEFAULT '';
DROP INDEX users_email;
CREATE INDEX users_email_norm ON users (email_norm) WHERE email_norm <> '';
