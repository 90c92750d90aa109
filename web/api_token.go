package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"connectrpc.com/connect"

	"github.com/groupgate/groupgate"
	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1/registryv1alpha1connect"
	"github.com/groupgate/groupgate/store"
)

// Audit actions of TokenService.
const (
	ActionTokenCreate = "token.create"
	ActionTokenDelete = "token.delete"
)

// apiTokenService manages the caller's own API tokens. The secret is
// returned once by CreateToken; only its SHA-256 is stored, and no listing
// returns either.
type apiTokenService struct {
	api *API
	registryv1alpha1connect.UnimplementedTokenServiceHandler
}

// apiNewToken returns a token in the format `groupgate token create`
// prints (gg_ + 32 random bytes, base64url) and its SHA-256.
func apiNewToken() (string, []byte) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	token := apiTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	return token, sum[:]
}

func apiToken(t groupgate.Token) *v1.Token {
	return &v1.Token{
		Id: t.ID, Note: t.Name,
		CreateTime: apiTime(t.CreatedAt), ExpireTime: apiTime(t.ExpiresAt), LastUsedTime: apiTime(t.LastUsedAt),
	}
}

// tokenView is what the audit log keeps of a token: never the hash.
type tokenView struct {
	ID        string `json:"id"`
	UserID    string `json:"user_id"`
	Name      string `json:"name"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

func viewToken(t groupgate.Token) tokenView {
	v := tokenView{ID: t.ID, UserID: t.UserID, Name: t.Name}
	if !t.ExpiresAt.IsZero() {
		v.ExpiresAt = t.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z")
	}
	return v
}

func (s *apiTokenService) CreateToken(ctx context.Context, req *connect.Request[v1.CreateTokenRequest]) (*connect.Response[v1.CreateTokenResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	t := groupgate.Token{Kind: groupgate.TokenAPI, Name: req.Msg.GetNote(), UserID: c.User.ID}
	if req.Msg.ExpireTime != nil {
		if err := req.Msg.GetExpireTime().CheckValid(); err != nil {
			return nil, groupgate.WrapError(groupgate.Invalid, err, "invalid expire_time")
		}
		t.ExpiresAt = req.Msg.GetExpireTime().AsTime()
		if !t.ExpiresAt.After(s.api.now()) {
			return nil, groupgate.Errorf(groupgate.Invalid, "expire_time must be in the future")
		}
	}
	secret, hash := apiNewToken()
	t.Hash = hash
	var out groupgate.Token
	err = s.api.st.InTx(ctx, func(tx store.Store) error {
		created, err := tx.CreateToken(ctx, t)
		if err != nil {
			return fmt.Errorf("create token for %s: %w", c.User.ID, err)
		}
		out = created
		return s.api.apiAudit(ctx, tx, c, ActionTokenCreate, "token", created.ID, nil, viewToken(created))
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.CreateTokenResponse{Token: secret, Details: apiToken(out)}), nil
}

func (s *apiTokenService) ListTokens(ctx context.Context, req *connect.Request[v1.ListTokensRequest]) (*connect.Response[v1.ListTokensResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	page, err := apiPage(req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	all, err := s.api.st.ListTokens(ctx, groupgate.TokenAPI, c.User.ID)
	if err != nil {
		return nil, fmt.Errorf("list tokens of %s: %w", c.User.ID, err)
	}
	ts, next := apiSlicePage(all, page)
	resp := &v1.ListTokensResponse{NextPageToken: next}
	for _, t := range ts {
		resp.Tokens = append(resp.Tokens, apiToken(t))
	}
	return connect.NewResponse(resp), nil
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
	err = s.api.st.InTx(ctx, func(tx store.Store) error {
		ts, err := tx.ListTokens(ctx, groupgate.TokenAPI, c.User.ID)
		if err != nil {
			return fmt.Errorf("list tokens of %s: %w", c.User.ID, err)
		}
		for _, t := range ts {
			if t.ID != id {
				continue
			}
			if err := tx.DeleteToken(ctx, id); err != nil {
				return fmt.Errorf("delete token %s: %w", id, err)
			}
			return s.api.apiAudit(ctx, tx, c, ActionTokenDelete, "token", id, viewToken(t), nil)
		}
		return groupgate.Errorf(groupgate.NotFound, "no token %q", id)
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.DeleteTokenResponse{}), nil
}
