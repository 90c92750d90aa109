-- signing_keys is the key set that signs the identity JWTs groupgate gives
-- upstreams (X-Auth-Request-Jwt). private_key is sealed by groupgate before
-- it is stored (AES-256-GCM under a key derived from session.secret);
-- public_key is PKIX DER. Times are Unix microseconds, as elsewhere.
CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    public_key  BLOB NOT NULL,
    private_key BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    active_at   INTEGER NOT NULL
);
