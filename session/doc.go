// Package session owns login sessions: the typed Record kept server-side, the
// Backend contract with a Redis and an in-process implementation, one-time
// login-attempt storage and the SAML replay guard, and a gorilla/sessions
// Store whose cookie carries only the signed session ID.
// It must not decide access (sync computes the Memberships it caches) nor
// know login protocols or routes.
//
// # Session IDs and the Redis key layout
//
// A session ID is "<userTag>.<random>": userTag is the first 16 bytes of
// SHA-256(userID) and random is 32 bytes from crypto/rand, both base64url.
// Encoding the user into the ID lets the cookie carry the ID alone while
// every Redis key of one user shares a Cluster hash slot, with no pointer key
// to keep consistent and a single round trip on the forward-auth hot path.
// The tag is a hash so that the (signed, not encrypted) cookie does not
// reveal the user ID. Keys, with P the configured key_prefix:
//
//	P sess:{u:<userTag>}:<random>   the Record as JSON; Redis TTL = ExpiresAt
//	P user:{u:<userTag>}:sessions   sorted set: session ID scored by ExpiresAt (ms)
//	P gen:{u:<userTag>}             the user's generation counter (NextGenerations)
//	P attempt:<key>                 one-time login attempt (GETDEL)
//	P replay:<key>                  SAML assertion ID seen (SET NX semantics)
//	P invalidate                    the local caches' invalidation counter (cache.go),
//	                                named like their pub/sub channel to share its Cluster slot
//
// Expired index entries are pruned on every write and listing. Expiry is
// judged by the injected clock (WithNow); Redis TTLs are the backstop that
// frees memory. Writes that touch a session and its index run in MULTI/EXEC;
// ending all sessions uses WATCH, so a login racing a "end all sessions"
// can never leave a session behind that the index does not know. Membership
// rewrites are one Lua compare-and-set over the index and records (a login
// or logout in between makes them read again), which also checks the
// generation counter (SetMembershipsIf), so a snapshot read
// from the store before a newer change (whose writer took a larger
// generation) is never written over that change's snapshot, whichever
// replica writes last.
package session
