package devidp

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// DefaultRefreshTokenLifetime is how long a refresh token of the demo
// provider stays valid unless SetRefreshTokenLifetime says otherwise.
const DefaultRefreshTokenLifetime = 24 * time.Hour

// refreshState is the demo provider's refresh tokens (issued for the
// offline_access scope, rotated on every use as OAuth 2.0 Security BCP
// §4.14.2 recommends) and the controls tests use to change what the IdP
// says: a user's groups, a token's lifetime, a revocation. The zero value
// is ready.
type refreshState struct {
	mu       sync.Mutex
	tokens   map[string]*refreshToken
	groups   map[string][]string // subject → groups replacing the directory's
	lifetime time.Duration
}

// refreshToken is what a refresh token stands for: the grant of the
// original authorization request.
type refreshToken struct {
	clientID string
	subject  string
	scopes   []string
	audience []string
	amr      []string
	authTime time.Time
	expires  time.Time
}

// refreshTokenRequest is a refresh token presented at the token endpoint,
// as op sees it.
type refreshTokenRequest struct {
	refreshToken
	current []string
}

var _ op.RefreshTokenRequest = (*refreshTokenRequest)(nil)

func (r *refreshTokenRequest) GetAMR() []string       { return r.amr }
func (r *refreshTokenRequest) GetAudience() []string  { return r.audience }
func (r *refreshTokenRequest) GetAuthTime() time.Time { return r.authTime }
func (r *refreshTokenRequest) GetClientID() string    { return r.clientID }
func (r *refreshTokenRequest) GetSubject() string     { return r.subject }
func (r *refreshTokenRequest) GetScopes() []string {
	if r.current != nil {
		return r.current
	}
	return r.scopes
}
func (r *refreshTokenRequest) SetCurrentScopes(scopes []string) { r.current = scopes }

// groupsOf is u's groups as the IdP currently says (SetGroups).
func (r *refreshState) groupsOf(u User) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g, ok := r.groups[u.Subject]; ok {
		return slices.Clone(g)
	}
	return u.Groups
}

// createAccessAndRefreshTokens issues an access token and a refresh token
// for req; presenting current (a refresh) consumes it, so a refresh
// token works once.
func (s *oidcStorage) createAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	var grant refreshToken
	switch r := req.(type) {
	case *authRequest:
		grant = refreshToken{clientID: r.clientID, subject: r.subject, scopes: slices.Clone(r.scopes),
			audience: r.GetAudience(), amr: r.GetAMR(), authTime: r.authTime}
	case *refreshTokenRequest:
		grant = r.refreshToken
		grant.scopes = slices.Clone(r.GetScopes())
	default:
		return "", "", time.Time{}, fmt.Errorf("refresh token for a %T request: %w", req, errNotFound)
	}
	id, exp, err := s.CreateAccessToken(ctx, req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	s.mu.Lock()
	if t, ok := s.tokens[id]; ok {
		t.clientID = grant.clientID
		s.tokens[id] = t
	}
	s.mu.Unlock()

	r := &s.refresh
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tokens == nil {
		r.tokens = map[string]*refreshToken{}
	}
	if current != "" {
		if _, ok := r.tokens[current]; !ok {
			return "", "", time.Time{}, fmt.Errorf("refresh token: %w", op.ErrInvalidRefreshToken)
		}
		delete(r.tokens, current)
	}
	lifetime := r.lifetime
	if lifetime == 0 {
		lifetime = DefaultRefreshTokenLifetime
	}
	grant.expires = s.now().Add(lifetime)
	token := randomID()
	r.tokens[token] = &grant
	return id, token, exp, nil
}

// tokenRequestByRefreshToken finds the live grant of token.
func (s *oidcStorage) tokenRequestByRefreshToken(token string) (op.RefreshTokenRequest, error) {
	r := &s.refresh
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tokens[token]
	if !ok || !s.now().Before(t.expires) {
		return nil, op.ErrInvalidRefreshToken
	}
	return &refreshTokenRequest{refreshToken: *t}, nil
}

// refreshTokenInfo is op's GetRefreshTokenInfo: it tells the revocation
// endpoint that token is a refresh token of clientID.
func (s *oidcStorage) refreshTokenInfo(clientID, token string) (string, string, error) {
	r := &s.refresh
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tokens[token]
	if !ok || t.clientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return t.subject, token, nil
}

// revokeRefreshLocked forgets token when it is a refresh token of
// clientID (RFC 7009 revocation).
func (s *oidcStorage) revokeRefreshLocked(token, clientID string) {
	r := &s.refresh
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.tokens[token]; ok && t.clientID == clientID {
		delete(r.tokens, token)
	}
}

// SetGroups changes the groups the provider asserts for subject from now
// on (ID tokens, refreshed ones included, and UserInfo), as an
// administrator changing the user's groups at the IdP would.
func (p *OIDCProvider) SetGroups(subject string, groups []string) {
	r := &p.storage.refresh
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.groups == nil {
		r.groups = map[string][]string{}
	}
	r.groups[subject] = slices.Clone(groups)
}

// SetRefreshTokenLifetime sets the lifetime of refresh tokens issued from
// now on (DefaultRefreshTokenLifetime), judged by OIDCConfig.Now.
func (p *OIDCProvider) SetRefreshTokenLifetime(d time.Duration) {
	r := &p.storage.refresh
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lifetime = d
}

// RevokeRefreshTokens revokes every refresh token issued to subject, as an
// administrator ending the user's grants at the IdP would, and returns
// how many there were.
func (p *OIDCProvider) RevokeRefreshTokens(subject string) int {
	r := &p.storage.refresh
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for token, t := range r.tokens {
		if t.subject == subject {
			delete(r.tokens, token)
			n++
		}
	}
	return n
}
