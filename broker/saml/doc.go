// Package saml is the SAML 2.0 service-provider connector (on gosaml2): IdP
// metadata (file, URL with periodic refresh, inline), SP metadata, AuthnRequests
// over HTTP-Redirect or HTTP-POST, a hardened ACS check, and Single Logout.
//
// It must not know groupgate's routes, cookies or persistence: pending
// attempts and seen assertion IDs go through the small AttemptStore and
// ReplayCache interfaces, and a login ends in a groupgate.Identity.
//
// # Finding the attempt at the ACS
//
// The IdP answers with a cross-site POST, which carries no SameSite=Lax
// cookie. The pending attempt is therefore stored server-side under the
// AuthnRequest's ID and found by the response's InResponseTo, signed by the
// IdP, so a login works in every browser without a cookie. A request ID is
// a random ID that the browser, the IdP and their logs see, so it is no
// secret: the attempt is taken (get-and-delete, at most once) only after
// the response verified. Where the caller can set a SameSite=None; Secure
// cookie (HTTPS), Begin also returns a binding token that the ACS then
// requires, which closes login CSRF (a victim's browser posting the
// attacker's own response) as the OIDC binding cookie does; a bound attempt
// is stored under the token's hash, so only that cookie can consume it.
package saml
