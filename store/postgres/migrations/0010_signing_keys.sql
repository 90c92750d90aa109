-- signing_keys is the key set that signs the identity JWTs groupgate gives
-- upstreams (X-Auth-Request-Jwt), shared by every replica. private_key is
-- sealed by groupgate before it is stored (AES-256-GCM under a key derived
-- from session.secret); public_key is PKIX DER. A key signs from active_at
-- until the next key's active_at, and is published in /.well-known/jwks.json
-- from its creation until the tokens it signed have expired.
CREATE TABLE signing_keys (
    id          text PRIMARY KEY,
    algorithm   text NOT NULL,
    public_key  bytea NOT NULL,
    private_key bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    active_at   timestamptz NOT NULL
);
