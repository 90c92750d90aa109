package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/groupgate/groupgate"
	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1/registryv1alpha1connect"
	"github.com/groupgate/groupgate/store"
)

// Audit actions of SCIMTokenService.
const (
	ActionSCIMTokenCreate = "scim_token.create"
	ActionSCIMTokenDelete = "scim_token.delete"
)

// scimTokenPrefix starts every SCIM token, as `groupgate scim-token
// create` makes them.
const scimTokenPrefix = "ggscim_"

// apiSCIMTokenService manages the bearer tokens IdPs provision users with
// at /scim/v2. A SCIM token writes every user's groups, so only instance
// admins manage them.
type apiSCIMTokenService struct {
	api *API
	registryv1alpha1connect.UnimplementedSCIMTokenServiceHandler
}

func apiSCIMToken(t groupgate.Token) *v1.SCIMToken {
	return &v1.SCIMToken{Id: t.ID, CreateTime: apiTime(t.CreatedAt), ExpireTime: apiTime(t.ExpiresAt)}
}

// admin returns the caller, an instance admin.
func (s *apiSCIMTokenService) admin(ctx context.Context) (*apiCaller, error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return c, requireInstanceAdmin(c)
}

// CreateSCIMToken makes a SCIM token; without expire_time it does not
// expire, like one from `groupgate scim-token create`.
func (s *apiSCIMTokenService) CreateSCIMToken(ctx context.Context, req *connect.Request[v1.CreateSCIMTokenRequest]) (*connect.Response[v1.CreateSCIMTokenResponse], error) {
	c, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	t := groupgate.Token{Kind: groupgate.TokenSCIM, Name: "created by " + c.actor()}
	if exp := req.Msg.GetExpireTime(); exp != nil {
		if t.ExpiresAt, err = scimExpiry(s.api, exp); err != nil {
			return nil, err
		}
	}
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	secret := scimTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(secret))
	t.Hash = sum[:]
	err = s.api.st.InTx(ctx, func(tx store.Store) error {
		created, err := tx.CreateToken(ctx, t)
		if err != nil {
			return fmt.Errorf("create SCIM token: %w", err)
		}
		return s.api.syncer.Audit(ctx, tx, c.actor(), ActionSCIMTokenCreate, "scim_token", created.ID, nil, viewToken(created))
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.CreateSCIMTokenResponse{Token: secret}), nil
}

func scimExpiry(a *API, exp *timestamppb.Timestamp) (t time.Time, err error) {
	if err := exp.CheckValid(); err != nil {
		return t, groupgate.WrapError(groupgate.Invalid, err, "invalid expire_time")
	}
	t = exp.AsTime()
	if !t.After(a.now()) {
		return t, groupgate.Errorf(groupgate.Invalid, "expire_time must be in the future")
	}
	return t, nil
}

// ListSCIMTokens lists the live SCIM tokens.
func (s *apiSCIMTokenService) ListSCIMTokens(ctx context.Context, req *connect.Request[v1.ListSCIMTokensRequest]) (*connect.Response[v1.ListSCIMTokensResponse], error) {
	if _, err := s.admin(ctx); err != nil {
		return nil, err
	}
	if req.Msg.GetReverse() {
		return nil, groupgate.Errorf(groupgate.Invalid, "reverse order is not supported")
	}
	page, err := apiPage(req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	all, err := s.api.st.ListTokens(ctx, groupgate.TokenSCIM, "")
	if err != nil {
		return nil, fmt.Errorf("list SCIM tokens: %w", err)
	}
	now := s.api.now()
	all = slices.DeleteFunc(all, func(t groupgate.Token) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) })
	ts, next := apiSlicePage(all, page)
	resp := &v1.ListSCIMTokensResponse{NextPageToken: next}
	for _, t := range ts {
		resp.Tokens = append(resp.Tokens, apiSCIMToken(t))
	}
	return connect.NewResponse(resp), nil
}

// DeleteSCIMToken deletes a SCIM token: the IdP pushing with it is
// refused from then on.
func (s *apiSCIMTokenService) DeleteSCIMToken(ctx context.Context, req *connect.Request[v1.DeleteSCIMTokenRequest]) (*connect.Response[v1.DeleteSCIMTokenResponse], error) {
	c, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	id := req.Msg.GetTokenId()
	if id == "" {
		return nil, groupgate.Errorf(groupgate.Invalid, "token_id required")
	}
	err = s.api.st.InTx(ctx, func(tx store.Store) error {
		ts, err := tx.ListTokens(ctx, groupgate.TokenSCIM, "")
		if err != nil {
			return fmt.Errorf("list SCIM tokens: %w", err)
		}
		for _, t := range ts {
			if t.ID != id {
				continue
			}
			if err := tx.DeleteToken(ctx, id); err != nil {
				return fmt.Errorf("delete SCIM token %s: %w", id, err)
			}
			return s.api.syncer.Audit(ctx, tx, c.actor(), ActionSCIMTokenDelete, "scim_token", id, viewToken(t), nil)
		}
		return groupgate.Errorf(groupgate.NotFound, "no SCIM token %q", id)
	})
	return apiEmpty[v1.DeleteSCIMTokenResponse](err)
}
