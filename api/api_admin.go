package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"connectrpc.com/connect"

	"github.com/groupgate/groupgate"
	gg "github.com/groupgate/groupgate/gen/groupgate/v1"
	ggconnect "github.com/groupgate/groupgate/gen/groupgate/v1/groupgatev1connect"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/sync"
)

// ActionSessionsRevoke is the audit action of RevokeSessions.
const ActionSessionsRevoke = sync.ActionSessionsRevoke

// apiAdminService serves the audit log (instance admins) and a user's live
// sessions (instance admins, or the user).
type apiAdminService struct {
	api *API
	ggconnect.UnimplementedAdminServiceHandler
}

// ListAuditEvents pages by event ID: the token is the last ID seen, so a
// page stays stable while new events are appended.
func (s *apiAdminService) ListAuditEvents(ctx context.Context, req *connect.Request[gg.ListAuditEventsRequest]) (*connect.Response[gg.ListAuditEventsResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireInstanceAdmin(c); err != nil {
		return nil, err
	}
	page, err := apiPage(req.Msg.GetPageSize(), "")
	if err != nil {
		return nil, err
	}
	var after int64
	if tok := req.Msg.GetPageToken(); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err == nil {
			after, err = strconv.ParseInt(string(b), 10, 64)
		}
		if err != nil || after < 0 {
			return nil, groupgate.Errorf(groupgate.Invalid, "invalid page_token")
		}
	}
	evs, err := s.api.st.ListAudit(ctx, after, page.Limit+1)
	if err != nil {
		return nil, fmt.Errorf("list audit events after %d: %w", after, err)
	}
	resp := &gg.ListAuditEventsResponse{}
	if len(evs) > page.Limit {
		evs = evs[:page.Limit]
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(evs[len(evs)-1].ID, 10)))
	}
	for _, e := range evs {
		resp.Events = append(resp.Events, &gg.AuditEvent{
			Id: e.ID, Actor: e.Actor, Action: e.Action, TargetType: e.TargetType, TargetId: e.TargetID,
			Before: string(e.Before), After: string(e.After), Time: apiTime(e.At),
		})
	}
	return connect.NewResponse(resp), nil
}

// sessionsUser returns the user whose sessions a request names: the
// caller when empty; another user only for instance admins.
func (s *apiAdminService) sessionsUser(ctx context.Context, userID string) (*apiCaller, string, error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, "", err
	}
	if s.api.sessions == nil {
		return nil, "", connect.NewError(connect.CodeUnimplemented, errors.New("sessions are not available on this server"))
	}
	if userID == "" || userID == c.User.ID {
		return c, c.User.ID, nil
	}
	if err := requireInstanceAdmin(c); err != nil {
		return nil, "", err
	}
	if _, err := s.api.st.GetUser(ctx, userID); err != nil {
		return nil, "", fmt.Errorf("load user %s: %w", userID, err)
	}
	return c, userID, nil
}

func (s *apiAdminService) ListSessions(ctx context.Context, req *connect.Request[gg.ListSessionsRequest]) (*connect.Response[gg.ListSessionsResponse], error) {
	_, userID, err := s.sessionsUser(ctx, req.Msg.GetUserId())
	if err != nil {
		return nil, err
	}
	recs, err := s.api.sessions.ListUserSessions(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %s: %w", userID, err)
	}
	resp := &gg.ListSessionsResponse{}
	for _, r := range recs {
		resp.Sessions = append(resp.Sessions, &gg.Session{
			IdHint: session.IDHint(r.ID), Provider: r.Provider,
			CreateTime: apiTime(r.CreatedAt), ExpireTime: apiTime(r.ExpiresAt),
		})
	}
	return connect.NewResponse(resp), nil
}

// RevokeSessions ends every live session of the user. The audit event is
// written after the sessions are gone: sessions are not in the store's
// transaction, and an event must not claim a revocation that failed.
func (s *apiAdminService) RevokeSessions(ctx context.Context, req *connect.Request[gg.RevokeSessionsRequest]) (*connect.Response[gg.RevokeSessionsResponse], error) {
	c, userID, err := s.sessionsUser(ctx, req.Msg.GetUserId())
	if err != nil {
		return nil, err
	}
	n, err := s.api.sessions.DeleteUserSessions(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("revoke sessions of %s: %w", userID, err)
	}
	err = s.api.syncer.AuditSessionsRevoked(ctx, c.actor(), userID, n)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&gg.RevokeSessionsResponse{Revoked: uint32(n)}), nil
}
