// Package oidc is the OpenID Connect connector: authorization code flow with
// PKCE (S256), state and nonce, ID token verification and UserInfo through
// zitadel/oidc's rp package, client authentication chosen from discovery,
// and RP-initiated logout.
//
// It turns verified claims into an Identity through package claims. It must
// not know groupgate's routes, cookies or persistence: the login attempt
// (state, nonce, PKCE verifier) is handed to it by package broker.
package oidc
