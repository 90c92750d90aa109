// Package claims turns what an identity provider said (OIDC claims, SAML
// attributes) into a normalized groupgate.Identity: subject, names, and a
// trimmed, de-duplicated, filtered, sorted group set. Its functions are pure:
// no I/O, no clock, no logging, and it imports nothing of ours but the root
// package. It does not verify tokens or assertions; the broker does that first.
package claims
