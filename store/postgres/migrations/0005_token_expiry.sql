-- API tokens created through TokenService before tokens had to expire
-- (issue 10, point 16) never expired: a session cookie could mint an
-- everlasting credential. They now expire 30 days after this migration
-- (api.tokens.default_lifetime's default), so that any minted that way
-- end. The API recorded each creation in the audit log (token.create);
-- tokens printed by `groupgate token create`, which has no such event,
-- are the operator's and keep no expiry.
UPDATE tokens SET expires_at = now() + interval '30 days'
WHERE kind = 'api' AND expires_at IS NULL
  AND id IN (SELECT target_id FROM audit_events WHERE action = 'token.create' AND target_type = 'token');
