package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Lifetimes of the OIDC provider's own state.
const (
	authRequestTTL         = 10 * time.Minute
	accessTokenTTL         = time.Hour
	defaultIDTokenLifetime = time.Hour
)

// errNotFound marks unknown or expired requests, codes, tokens and clients;
// op turns it into the protocol's invalid_grant / invalid_client errors.
var errNotFound = errors.New("not found")

// oidcStorage is the op.Storage of the demo OIDC provider: everything in
// memory, one RSA key generated at start, no refresh tokens, no JWT client
// authentication, no IdP session (every login shows the form).
type oidcStorage struct {
	issuer          string
	now             func() time.Time
	users           directory
	clients         map[string]*oidcClient
	groupsInIDToken bool
	overage         *Overage
	key             *rsaKey
	sids            sidRegistry

	mu       sync.Mutex
	requests map[string]*authRequest
	codes    map[string]string // code → auth request ID
	tokens   map[string]accessToken
}

var (
	_ op.Storage                   = (*oidcStorage)(nil)
	_ op.CanSetUserinfoFromRequest = (*oidcStorage)(nil)
)

type accessToken struct {
	subject  string
	clientID string
	scopes   []string
	expires  time.Time
}

func randomID() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

// rsaKey is the provider's RS256 signing key, both as op.SigningKey and as
// the op.Key published at the JWKS endpoint.
type rsaKey struct {
	id  string
	key *rsa.PrivateKey
}

func newRSAKey() (*rsaKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return &rsaKey{id: randomID()[:16], key: k}, nil
}

func (k *rsaKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *rsaKey) ID() string                                  { return k.id }
func (k *rsaKey) Key() any                                    { return k.key }

type publicKey struct{ *rsaKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// authRequest is one authorization request, from /authorize until the code
// is redeemed.
type authRequest struct {
	id            string
	clientID      string
	redirectURI   string
	scopes        []string
	state         string
	nonce         string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge
	expires       time.Time

	// Set by the login form.
	subject  string
	authTime time.Time
	done     bool
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// oidcClient is a registered relying party as op sees it.
type oidcClient struct {
	issuer string
	cfg    OIDCClient
}

var _ op.Client = (*oidcClient)(nil)

func (c *oidcClient) GetID() string                       { return c.cfg.ID }
func (c *oidcClient) RedirectURIs() []string              { return c.cfg.RedirectURIs }
func (c *oidcClient) PostLogoutRedirectURIs() []string    { return c.cfg.PostLogoutRedirectURIs }
func (c *oidcClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *oidcClient) AuthMethod() oidc.AuthMethod         { return c.cfg.AuthMethod }
func (c *oidcClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *oidcClient) GrantTypes() []oidc.GrantType { return []oidc.GrantType{oidc.GrantTypeCode} }

// LoginURL is absolute so that the provider works under an issuer with a
// path, mounted anywhere.
func (c *oidcClient) LoginURL(id string) string {
	return c.issuer + loginPath + "?" + url.Values{"id": {id}}.Encode()
}
func (c *oidcClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *oidcClient) IDTokenLifetime() time.Duration {
	if c.cfg.IDTokenLifetime == 0 {
		return defaultIDTokenLifetime
	}
	return c.cfg.IDTokenLifetime
}
func (c *oidcClient) DevMode() bool { return false }
func (c *oidcClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *oidcClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed admits the non-standard "groups" scope that Okta-style
// relying parties ask for.
func (c *oidcClient) IsScopeAllowed(scope string) bool { return scope == scopeGroups }

// IDTokenUserinfoClaimsAssertion puts email and profile claims into the ID
// token even though an access token is issued too, as most IdPs do.
func (c *oidcClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *oidcClient) ClockSkew() time.Duration             { return 0 }

// --- op.AuthStorage ---

func (s *oidcStorage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	a := &authRequest{
		id:           randomID(),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		scopes:       slices.Clone([]string(req.Scopes)),
		state:        req.State,
		nonce:        req.Nonce,
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		expires:      s.now().Add(authRequestTTL),
	}
	if req.CodeChallenge != "" {
		a.codeChallenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	s.requests[a.id] = a
	return a, nil
}

// sweepLocked forgets expired auth requests, their codes and expired access
// tokens, so that a long-running `groupgate dev` does not grow without
// bound.
func (s *oidcStorage) sweepLocked() {
	now := s.now()
	for id, a := range s.requests {
		if !now.Before(a.expires) {
			delete(s.requests, id)
		}
	}
	for code, id := range s.codes {
		if _, ok := s.requests[id]; !ok {
			delete(s.codes, code)
		}
	}
	for id, t := range s.tokens {
		if !now.Before(t.expires) {
			delete(s.tokens, id)
		}
	}
}

// requestLocked returns a copy of the live auth request id, so that op never
// reads a request while the login form writes it.
func (s *oidcStorage) requestLocked(id string) (*authRequest, error) {
	a, ok := s.requests[id]
	if !ok || !s.now().Before(a.expires) {
		return nil, fmt.Errorf("auth request %q: %w", id, errNotFound)
	}
	cp := *a
	return &cp, nil
}

func (s *oidcStorage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requestLocked(id)
}

func (s *oidcStorage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[code]
	if !ok {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	return s.requestLocked(id)
}

func (s *oidcStorage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.requests[id]; !ok {
		return fmt.Errorf("save code for auth request %q: %w", id, errNotFound)
	}
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest runs when the code is redeemed: the code dies with it,
// so it works once.
func (s *oidcStorage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

// completeLogin marks auth request id as authenticated for user.
func (s *oidcStorage) completeLogin(id string, u User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.requests[id]
	if !ok || !s.now().Before(a.expires) {
		return fmt.Errorf("auth request %q: %w", id, errNotFound)
	}
	a.subject = u.Subject
	a.authTime = s.now()
	a.done = true
	return nil
}

func (s *oidcStorage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	clientID := ""
	if a, ok := req.(op.AuthRequest); ok {
		clientID = a.GetClientID()
	}
	id := randomID()
	exp := s.now().Add(accessTokenTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[id] = accessToken{subject: req.GetSubject(), clientID: clientID, scopes: slices.Clone(req.GetScopes()), expires: exp}
	return id, exp, nil
}

func (s *oidcStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not supported by the demo IdP")
}

func (s *oidcStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

// TerminateSession has nothing to end: the demo IdP keeps no login session.
func (s *oidcStorage) TerminateSession(context.Context, string, string) error { return nil }

func (s *oidcStorage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[tokenOrID]; ok && t.clientID == clientID {
		delete(s.tokens, tokenOrID)
	}
	// RFC 7009 §2.2: an unknown token is not an error.
	return nil
}

func (s *oidcStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *oidcStorage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *oidcStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *oidcStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

// --- op.OPStorage ---

func (s *oidcStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q: %w", id, errNotFound)
	}
	return c, nil
}

func (s *oidcStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(c.cfg.Secret), []byte(secret)) != 1 {
		return errors.New("wrong client ID or secret")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does
// the work.
func (s *oidcStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims.
func (s *oidcStorage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	s.addSID(info, req)
	return s.setUserinfo(info, req.GetSubject(), scopes, s.groupsInIDToken)
}

// SetUserinfoFromToken answers the UserInfo endpoint, which always carries
// the groups.
func (s *oidcStorage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || t.subject != subject || !s.now().Before(t.expires) {
		return fmt.Errorf("access token: %w", errNotFound)
	}
	return s.setUserinfo(info, subject, t.scopes, true)
}

func (s *oidcStorage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || t.subject != subject || !s.now().Before(t.expires) {
		return fmt.Errorf("access token: %w", errNotFound)
	}
	info := new(oidc.UserInfo)
	if err := s.setUserinfo(info, subject, t.scopes, true); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Active = true
	resp.Scope = t.scopes
	resp.ClientID = t.clientID
	resp.Audience = []string{t.clientID}
	resp.Expiration = oidc.FromTime(t.expires)
	return nil
}

func (s *oidcStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *oidcStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT client authentication is not supported by the demo IdP")
}

func (s *oidcStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not supported by the demo IdP")
}

func (s *oidcStorage) Health(context.Context) error { return nil }

func (s *oidcStorage) setUserinfo(info *oidc.UserInfo, subject string, scopes []string, withGroups bool) error {
	u, ok := s.users.bySubject(subject)
	if !ok {
		return fmt.Errorf("user %q: %w", subject, errNotFound)
	}
	info.Subject = u.Subject
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = true
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Username
			info.Name = u.Name
		}
	}
	// A user in no group gets no claim at all, as real IdPs do: that is the
	// "IdP said nothing about groups" case.
	if withGroups && len(u.Groups) > 0 && !s.overage.apply(info, u) {
		info.AppendClaims(groupsClaim, slices.Clone(u.Groups))
	}
	return nil
}
