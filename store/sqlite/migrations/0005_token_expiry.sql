-- API tokens created through TokenService before tokens had to expire
-- (issue 10, point 16) never expired: a session cookie could mint an
-- everlasting credential. They now expire 30 days after this migration
-- (api.tokens.default_lifetime's default), so that any minted that way
-- end. The API recorded each creation in the audit log (token.create);
-- tokens printed by `groupgate token create`, which has no such event,
-- are the operator's and keep no expiry. Times are microseconds since
-- the epoch.
UPDATE tokens SET expires_at = (CAST(strftime('%s', 'now') AS INTEGER) + 30 * 86400) * 1000000
WHERE kind = 'api' AND expires_at IS NULL
  AND id IN (SELECT target_id FROM audit_events WHERE action = 'token.create' AND target_type = 'token');
