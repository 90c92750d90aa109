package api

import (
	"context"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/groupgate/groupgate"
	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1/registryv1alpha1connect"
	"github.com/groupgate/groupgate/sync"
)

// Audit actions of SCIMTokenService.
const (
	ActionSCIMTokenCreate = sync.ActionSCIMTokenCreate
	ActionSCIMTokenDelete = sync.ActionSCIMTokenDelete
)

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
	secret, _, err := s.api.syncer.CreateSCIMToken(ctx, c.actor(), t)
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
	err = s.api.syncer.DeleteSCIMToken(ctx, c.actor(), id)
	return apiEmpty[v1.DeleteSCIMTokenResponse](err)
}
