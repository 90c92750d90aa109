// Package broker owns the protocol-neutral login pipeline: the connector
// interfaces that each IdP protocol implements (CallbackConnector for the
// OIDC code flow, SAMLConnector for SAML Web Browser SSO; each ends in an
// Identity that the caller's one finish step turns into a session), and
// the login attempt that
// carries state, nonce, PKCE verifier and return URL from the redirect to the
// IdP until its callback.
//
// It must not know groupgate's routes, cookies' paths or persistence: it
// returns URLs, cookie names and values, and an Identity; the web package
// wires them to HTTP and sync turns the Identity into a user.
//
// # Login attempts
//
// Every login gets its own attempt, stored server-side through AttemptStore
// under a random 256-bit key, so parallel logins in several tabs never
// overwrite each other and an attempt begun on one replica can finish on
// another (the session package stores it in Redis or in-process). The key is
// also the OAuth "state" sent to the IdP: the callback names its attempt
// itself, which needs no extra cookie to find it.
//
// The state alone would let an attacker hand a victim the callback URL of the
// attacker's own login (login CSRF, RFC 6749 §10.12). So Begin also returns
// a short-lived binding cookie whose name is derived from the key (one cookie
// per attempt, again so tabs do not collide) and whose value is the key;
// Finish refuses a callback unless the browser presents that cookie, compares
// it with the state in constant time, and takes the attempt from the store
// (get-and-delete), so each attempt is used at most once and expires after
// ten minutes by default.
package broker
