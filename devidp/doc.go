// Package devidp holds the embedded demo identity providers that
// `groupgate dev` and the tests log in against: an OIDC provider built on
// zitadel/oidc's op package (this file set) and, beside it, a SAML IdP, all
// sharing one table of demo users and one plain login form.
//
// It is for development and tests only: production code must never import
// it. Its users, passwords and in-memory state are deliberately simple.
package devidp
