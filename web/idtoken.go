package web

import (
	"context"
	"net/http"

	"github.com/groupgate/groupgate/idtoken"
	"github.com/groupgate/groupgate/session"
)

// HeaderJWT carries the caller's identity signed by groupgate (see
// package idtoken), for upstreams that verify rather than trust the
// plain headers. Verifiers read the keys at /.well-known/jwks.json.
const HeaderJWT = "X-Auth-Request-Jwt"

// JWKSPath publishes the identity token's public keys.
const JWKSPath = "/.well-known/jwks.json"

// IdentityTokens signs the identity token; *idtoken.Issuer implements it.
type IdentityTokens interface {
	// Token returns the signed token for subj, reused per cacheKey (the
	// session ID) while it is fresh. Unavailable when no key can sign.
	Token(ctx context.Context, cacheKey string, subj idtoken.Subject) (string, error)
	// JWKSHandler serves the public keys.
	JWKSHandler() http.Handler
}

// WithIdentityTokens adds X-Auth-Request-Jwt to forward-auth answers and
// proxied requests, and serves /.well-known/jwks.json.
func WithIdentityTokens(t IdentityTokens) Option { return func(s *Server) { s.tokens = t } }

// subjectOf is the session's caller as the token states it.
func subjectOf(rec *session.Record) idtoken.Subject {
	return idtoken.Subject{
		UserID:      rec.UserID,
		Username:    usernameOf(rec.Identity),
		Email:       rec.Identity.Email,
		Name:        rec.Identity.DisplayName,
		Memberships: rec.Memberships,
	}
}

// identityToken is the signed token for rec; ok is false (and the failure
// logged) when none can be signed: the caller then fails closed with 503,
// since an upstream that expects the token would refuse the request.
func (s *Server) identityToken(r *http.Request, rec *session.Record) (string, bool) {
	tok, err := s.tokens.Token(r.Context(), rec.ID, subjectOf(rec))
	if err != nil {
		s.logger.ErrorContext(r.Context(), "cannot sign the identity token", "error", err)
		return "", false
	}
	return tok, true
}
