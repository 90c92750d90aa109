// Package refresh keeps the groups of OIDC sessions fresh: with the
// refresh token an IdP issued at login (offline_access), it re-reads the
// person's identity before the session's groups are older than the
// provider's max_group_age, and hands it to sync as a login would. Its
// state (the refresh token, AES-GCM sealed, and when the groups were
// fetched) lives beside the session record, never in it: in Redis keys of
// its own (NewRedisStore) or in process (NewMemoryStore). It must not
// decide access (sync does) nor know routes (web calls Started and Ended).
package refresh
