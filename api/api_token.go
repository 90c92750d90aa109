package api

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/groupgate/groupgate"
	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1/registryv1alpha1connect"
	gg "github.com/groupgate/groupgate/gen/groupgate/v1"
	"github.com/groupgate/groupgate/sync"
)

// Audit actions of TokenService.
const (
	ActionTokenCreate = sync.ActionTokenCreate
	ActionTokenDelete = sync.ActionTokenDelete
)

// apiTokenService manages the caller's own API tokens. The secret is
// returned once by CreateToken; only its SHA-256 is stored, and no listing
// returns either.
type apiTokenService struct {
	api *API
	registryv1alpha1connect.UnimplementedTokenServiceHandler
}

func apiToken(t groupgate.Token) *v1.Token {
	return &v1.Token{
		Id: t.ID, Note: t.Name,
		CreateTime: apiTime(t.CreatedAt), ExpireTime: apiTime(t.ExpiresAt),
	}
}

func ggToken(t groupgate.Token) *gg.Token {
	return &gg.Token{
		Id: t.ID, Note: t.Name,
		CreateTime: apiTime(t.CreatedAt), ExpireTime: apiTime(t.ExpiresAt), LastUsedTime: apiTime(t.LastUsedAt),
	}
}

// ggTokenService is groupgate.v1.TokenService: creation that answers the
// new token's details, and listings with the time of last use.
type ggTokenService struct{ api *API }

func (s *ggTokenService) CreateToken(ctx context.Context, req *connect.Request[gg.CreateTokenRequest]) (*connect.Response[gg.CreateTokenResponse], error) {
	secret, t, err := s.api.createToken(ctx, req.Msg.GetNote(), req.Msg.ExpireTime)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&gg.CreateTokenResponse{Token: secret, Details: ggToken(t)}), nil
}

func (s *ggTokenService) ListTokens(ctx context.Context, req *connect.Request[gg.ListTokensRequest]) (*connect.Response[gg.ListTokensResponse], error) {
	ts, next, err := s.api.liveTokens(ctx, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &gg.ListTokensResponse{NextPageToken: next}
	for _, t := range ts {
		resp.Tokens = append(resp.Tokens, ggToken(t))
	}
	return connect.NewResponse(resp), nil
}

// selfOnly refuses a request on behalf of another user: the BSR's user_id
// lets a server admin manage another user's tokens, which groupgate does
// not offer. Refusing, rather than acting for the caller, keeps a binary
// client from getting a token for the wrong user.
func selfOnly(c *apiCaller, userID string) error {
	if userID != "" && userID != c.User.ID {
		return groupgate.Errorf(groupgate.Forbidden, "tokens of another user (user_id %q) cannot be managed", userID)
	}
	return nil
}

func (s *apiTokenService) CreateToken(ctx context.Context, req *connect.Request[v1.CreateTokenRequest]) (*connect.Response[v1.CreateTokenResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := selfOnly(c, req.Msg.GetUserId()); err != nil {
		return nil, err
	}
	secret, _, err := s.api.createToken(ctx, req.Msg.GetNote(), req.Msg.ExpireTime)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.CreateTokenResponse{Token: secret}), nil
}

// createToken makes an API token for the caller: its secret and what is
// stored of it.
func (a *API) createToken(ctx context.Context, note string, expire *timestamppb.Timestamp) (string, groupgate.Token, error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return "", groupgate.Token{}, err
	}
	// The note is copied into listings and the audit log: bounded, one
	// line.
	if err := groupgate.CheckText("note", note, MaxTokenNoteLen); err != nil {
		return "", groupgate.Token{}, err
	}
	now := a.now()
	t := groupgate.Token{Kind: groupgate.TokenAPI, Name: note, UserID: c.User.ID}
	if t.ExpiresAt, err = a.tokens.expiry(now, c, expire); err != nil {
		return "", groupgate.Token{}, err
	}
	return a.syncer.CreateAPIToken(ctx, c.actor(), t, now, a.tokens.MaxPerUser)
}

func (s *apiTokenService) ListTokens(ctx context.Context, req *connect.Request[v1.ListTokensRequest]) (*connect.Response[v1.ListTokensResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := selfOnly(c, req.Msg.GetUserId()); err != nil {
		return nil, err
	}
	if req.Msg.GetReverse() {
		return nil, groupgate.Errorf(groupgate.Invalid, "reverse order is not supported")
	}
	ts, next, err := s.api.liveTokens(ctx, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &v1.ListTokensResponse{NextPageToken: next}
	for _, t := range ts {
		resp.Tokens = append(resp.Tokens, apiToken(t))
	}
	return connect.NewResponse(resp), nil
}

// liveTokens is one page of the caller's unexpired API tokens.
func (a *API) liveTokens(ctx context.Context, size uint32, token string) ([]groupgate.Token, string, error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, "", err
	}
	page, err := apiPage(size, token)
	if err != nil {
		return nil, "", err
	}
	all, err := a.st.ListTokens(ctx, groupgate.TokenAPI, c.User.ID)
	if err != nil {
		return nil, "", fmt.Errorf("list tokens of %s: %w", c.User.ID, err)
	}
	// Like the BSR's ListTokens, only live tokens: an expired one no
	// longer authenticates, and the next CreateToken deletes it.
	now := a.now()
	all = slices.DeleteFunc(all, func(t groupgate.Token) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) })
	ts, next := apiSlicePage(all, page)
	return ts, next, nil
}

// GetToken answers one of the caller's live tokens; another user's token
// is NotFound, as in DeleteToken.
func (s *apiTokenService) GetToken(ctx context.Context, req *connect.Request[v1.GetTokenRequest]) (*connect.Response[v1.GetTokenResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	id := req.Msg.GetTokenId()
	if id == "" {
		return nil, groupgate.Errorf(groupgate.Invalid, "token_id required")
	}
	ts, err := s.api.st.ListTokens(ctx, groupgate.TokenAPI, c.User.ID)
	if err != nil {
		return nil, fmt.Errorf("list tokens of %s: %w", c.User.ID, err)
	}
	now := s.api.now()
	for _, t := range ts {
		if t.ID == id && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt)) {
			return connect.NewResponse(&v1.GetTokenResponse{Token: apiToken(t)}), nil
		}
	}
	return nil, groupgate.Errorf(groupgate.NotFound, "no token %q", id)
}

// DeleteToken deletes one of the caller's tokens; another user's token is
// NotFound, so that token IDs cannot be probed.
func (s *apiTokenService) DeleteToken(ctx context.Context, req *connect.Request[v1.DeleteTokenRequest]) (*connect.Response[v1.DeleteTokenResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	id := req.Msg.GetTokenId()
	if id == "" {
		return nil, groupgate.Errorf(groupgate.Invalid, "token_id required")
	}
	err = s.api.syncer.DeleteAPIToken(ctx, c.actor(), c.User.ID, id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.DeleteTokenResponse{}), nil
}

// MaxTokenNoteLen bounds a token's note, in characters: it is a label
// ("ci", "laptop"), shown in listings and copied into the audit log.
const MaxTokenNoteLen = 256

// TokenPolicy bounds the API tokens callers create (api.tokens). Tokens
// made by `groupgate token create` are the operator's and not bound by it.
type TokenPolicy struct {
	// SessionMaxLifetime is the longest, and the default, lifetime of a
	// token created with a browser session cookie: whoever holds the
	// cookie (an upstream behind forward-auth sees it) must not turn it
	// into a credential that outlives the session by much.
	SessionMaxLifetime time.Duration
	// DefaultLifetime applies to a token created with an API token that
	// asks no expire_time (the BSR's "null for no expiry" is not offered).
	DefaultLifetime time.Duration
	// MaxLifetime is the longest lifetime of a token created with an API
	// token. Such a token never outlives the one that created it either,
	// so a stolen token cannot mint itself a longer-lived successor.
	MaxLifetime time.Duration
	// MaxPerUser bounds a user's live (unexpired) API tokens.
	MaxPerUser int
}

// DefaultTokenPolicy is the policy of an empty api.tokens.
func DefaultTokenPolicy() TokenPolicy {
	return TokenPolicy{
		SessionMaxLifetime: 24 * time.Hour,
		DefaultLifetime:    30 * 24 * time.Hour,
		MaxLifetime:        90 * 24 * time.Hour,
		MaxPerUser:         100,
	}
}

// WithTokenPolicy sets the token policy; zero fields keep the
// defaults.
func WithTokenPolicy(p TokenPolicy) Option {
	return func(a *API) {
		d := DefaultTokenPolicy()
		a.tokens = TokenPolicy{
			SessionMaxLifetime: cmp.Or(p.SessionMaxLifetime, d.SessionMaxLifetime),
			DefaultLifetime:    cmp.Or(p.DefaultLifetime, d.DefaultLifetime),
			MaxLifetime:        cmp.Or(p.MaxLifetime, d.MaxLifetime),
			MaxPerUser:         cmp.Or(p.MaxPerUser, d.MaxPerUser),
		}
	}
}

// expiry decides when a token c asks for expires: requested (nil: none
// asked) within the bound of c's kind of authentication and, for a token
// created with a token, no later than that token.
func (p TokenPolicy) expiry(now time.Time, c *apiCaller, requested *timestamppb.Timestamp) (time.Time, error) {
	max, def, how := p.MaxLifetime, p.DefaultLifetime, "a token created with an API token"
	if c.TokenID == "" {
		max, def, how = p.SessionMaxLifetime, p.SessionMaxLifetime, "a token created from a browser session"
	}
	limit := now.Add(max)
	if !c.TokenExpiresAt.IsZero() && c.TokenExpiresAt.Before(limit) {
		limit, how = c.TokenExpiresAt, "a token cannot outlive the token that creates it:"
	}
	if requested == nil {
		if exp := now.Add(def); exp.Before(limit) {
			return exp, nil
		}
		return limit, nil
	}
	if err := requested.CheckValid(); err != nil {
		return time.Time{}, groupgate.WrapError(groupgate.Invalid, err, "invalid expire_time")
	}
	exp := requested.AsTime()
	if !exp.After(now) {
		return time.Time{}, groupgate.Errorf(groupgate.Invalid, "expire_time must be in the future")
	}
	if exp.After(limit) {
		return time.Time{}, groupgate.Errorf(groupgate.Invalid, "expire_time is too far: %s expires by %s at the latest",
			how, limit.UTC().Format(time.RFC3339))
	}
	return exp, nil
}
