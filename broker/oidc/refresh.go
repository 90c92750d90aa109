package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/claims"
)

var _ broker.RefreshConnector = (*connector)(nil)

// Refresh redeems refreshToken at the token endpoint and reads the
// identity again the way HandleCallback does: the refreshed ID token's
// claims (verified: signature, issuer, audience, expiry), with UserInfo's
// laid over them when groups_from is userinfo, or UserInfo alone when the
// IdP sent no new ID token (OIDC Core §12.2 allows it), then the same
// claim paths and group filter, and Microsoft Graph for an Entra group
// overage.
//
// The nonce is not checked: it binds an ID token to the authentication
// request that asked for it (OIDC Core §3.1.2.1), and a refresh is no
// authentication request; the token comes straight from the token
// endpoint to an authenticated client. Core §12.2 says a refreshed ID
// token SHOULD carry no nonce, and some IdPs repeat the login's: both
// pass. The subject must stay the same (§12.2).
func (c *connector) Refresh(ctx context.Context, refreshToken, subject string) (groupgate.Identity, string, error) {
	if refreshToken == "" || subject == "" {
		return groupgate.Identity{}, "", groupgate.Errorf(groupgate.Invalid, "refresh without a refresh token or subject")
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, c.rp.HttpClient())
	tok, err := c.rp.OAuthConfig().TokenSource(octx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return groupgate.Identity{}, "", refreshError(err)
	}
	var m map[string]any
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		var unverified struct {
			Nonce string `json:"nonce"`
		}
		if _, err := zoidc.ParseToken(raw, &unverified); err != nil {
			return groupgate.Identity{}, "", groupgate.WrapError(groupgate.Unauthenticated, err, "the identity provider's refreshed ID token does not parse")
		}
		vctx := context.WithValue(ctx, nonceKey{}, unverified.Nonce)
		idClaims, err := rp.VerifyIDToken[*zoidc.IDTokenClaims](vctx, raw, c.rp.IDTokenVerifier())
		if err != nil {
			return groupgate.Identity{}, "", groupgate.WrapError(groupgate.Unauthenticated, err, "the identity provider's refreshed ID token is not valid")
		}
		if idClaims.GetSubject() != subject {
			return groupgate.Identity{}, "", groupgate.WrapError(groupgate.Unauthenticated,
				fmt.Errorf("%w: the refreshed ID token names another subject", broker.ErrRefreshRejected), "the identity provider answered for someone else")
		}
		if m, err = toMap(idClaims); err != nil {
			return groupgate.Identity{}, "", groupgate.WrapError(groupgate.Internal, err, "cannot read the ID token's claims")
		}
	}
	if m == nil || c.cfg.GroupsFrom == GroupsFromUserInfo {
		if c.rp.UserinfoEndpoint() == "" {
			return groupgate.Identity{}, "", groupgate.Errorf(groupgate.Unauthenticated, "the identity provider's refresh answer has no ID token, and it has no UserInfo endpoint")
		}
		// rp.Userinfo refuses an answer about another subject (OIDC Core
		// §5.3.2).
		info, err := rp.Userinfo[*zoidc.UserInfo](ctx, tok.AccessToken, tok.TokenType, subject, c.rp)
		if err != nil {
			return groupgate.Identity{}, "", userInfoError(err)
		}
		infoClaims, err := toMap(info)
		if err != nil {
			return groupgate.Identity{}, "", groupgate.WrapError(groupgate.Internal, err, "cannot read the UserInfo claims")
		}
		if m == nil {
			m = infoClaims
		} else if m, err = claims.MergeUserInfo(m, infoClaims); err != nil {
			return groupgate.Identity{}, "", err
		}
	}
	id, err := claims.FromOIDC(c.name, m, c.claimOpts)
	if errors.Is(err, claims.ErrGroupOverage) && c.graph != nil {
		// As at login: an Entra token too big for its groups names
		// Microsoft Graph instead, read with the new access token.
		id, err = c.overageIdentity(ctx, m, tok.AccessToken)
	}
	if err != nil {
		return groupgate.Identity{}, "", fmt.Errorf("identity from %q claims: %w", c.name, err)
	}
	if id.Subject != subject {
		return groupgate.Identity{}, "", groupgate.WrapError(groupgate.Unauthenticated,
			fmt.Errorf("%w: the refresh answer names another subject", broker.ErrRefreshRejected), "the identity provider answered for someone else")
	}
	next := tok.RefreshToken
	if next == "" {
		next = refreshToken
	}
	return id, next, nil
}

// refreshError classifies a failed refresh_token grant. Only invalid_grant
// says the grant itself is gone (RFC 6749 §5.2); any other refusal
// (invalid_client after a secret rotation, a 5xx) may pass, so it is
// Unavailable like an IdP that cannot be reached, and the session's grace
// applies.
func refreshError(err error) error {
	var retrieve *oauth2.RetrieveError
	var transport *url.Error
	switch {
	case errors.As(err, &retrieve) && retrieve.ErrorCode == "invalid_grant":
		return groupgate.WrapError(groupgate.Unauthenticated, fmt.Errorf("%w: %w", broker.ErrRefreshRejected, err),
			"the identity provider no longer accepts this session's refresh token")
	case errors.As(err, &retrieve):
		return groupgate.WrapError(groupgate.Unavailable, err, "the identity provider refused to refresh the session (%s)", retrieveCode(retrieve))
	case errors.As(err, &transport):
		return groupgate.WrapError(groupgate.Unavailable, err, "the identity provider cannot be reached to refresh the session")
	default:
		return groupgate.WrapError(groupgate.Unavailable, err, "the identity provider's refresh answer is not usable")
	}
}

func retrieveCode(e *oauth2.RetrieveError) string {
	if oauthErrorCode.MatchString(e.ErrorCode) {
		return e.ErrorCode
	}
	if e.Response != nil {
		return e.Response.Status
	}
	return "unknown error"
}
