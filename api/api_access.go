package api

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	"github.com/groupgate/groupgate"
	gg "github.com/groupgate/groupgate/gen/groupgate/v1"
	ggconnect "github.com/groupgate/groupgate/gen/groupgate/v1/groupgatev1connect"
	"github.com/groupgate/groupgate/sync"
)

// apiAccessService explains and previews access. Anyone may explain their
// own access; another user's, and previews, need the authority to change
// the resource's mappings.
type apiAccessService struct {
	api *API
	ggconnect.UnimplementedAccessServiceHandler
}

// resource reads the one organization or repository a request names and
// checks the caller administers it when admin is true.
func (a *API) resource(ctx context.Context, c *apiCaller, orgID, repoID string, admin bool) (sync.ResourceKind, string, error) {
	switch {
	case (orgID == "") == (repoID == ""):
		return "", "", groupgate.Errorf(groupgate.Invalid, "exactly one of organization_id and repository_id is required")
	case orgID != "":
		o, err := a.loadOrg(ctx, orgID)
		if err != nil {
			return "", "", err
		}
		if admin {
			if err := a.requireOrgAdmin(ctx, c, o); err != nil {
				return "", "", err
			}
		}
		return sync.ResourceOrg, o.ID, nil
	default:
		r, err := a.loadRepo(ctx, repoID)
		if err != nil {
			return "", "", err
		}
		if admin {
			if err := a.requireRepoAdmin(ctx, c, r); err != nil {
				return "", "", err
			}
		}
		return sync.ResourceRepo, r.ID, nil
	}
}

// ExplainAccess: for a repository, repository_role is the role that
// authorizes actions (raised to ADMIN for organization admins); its sources
// are the repository's own, followed by the organization's when those
// raise it (their role then reads "ORGANIZATION_ROLE_<role>").
func (s *apiAccessService) ExplainAccess(ctx context.Context, req *connect.Request[gg.ExplainAccessRequest]) (*connect.Response[gg.ExplainAccessResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	userID := req.Msg.GetUserId()
	if userID == "" {
		userID = c.User.ID
	}
	kind, id, err := s.api.resource(ctx, c, req.Msg.GetOrganizationId(), req.Msg.GetRepositoryId(), userID != c.User.ID)
	if err != nil {
		return nil, err
	}
	e, err := s.api.syncer.Explain(ctx, userID, kind, id)
	if err != nil {
		return nil, err
	}
	resp := &gg.ExplainAccessResponse{}
	if kind == sync.ResourceOrg {
		resp.OrganizationRole = apiOrgRoleEnum(e.OrgRole)
		resp.Sources = apiOrgSources(e.OrgSources)
		return connect.NewResponse(resp), nil
	}
	resp.RepositoryRole = apiRepoRoleEnum(e.AuthorizedRepoRole)
	resp.Sources = apiRepoSources(e.RepoSources)
	if sync.RepoRoleRank(e.AuthorizedRepoRole) > sync.RepoRoleRank(e.RepoRole) {
		for _, os := range apiOrgSources(e.OrgSources) {
			os.Role = "ORGANIZATION_ROLE_" + os.Role
			resp.Sources = append(resp.Sources, os)
		}
	}
	return connect.NewResponse(resp), nil
}

var apiMappingOps = map[gg.MappingChange]sync.MappingOp{
	gg.MappingChange_MAPPING_CHANGE_ADD:    sync.OpAdd,
	gg.MappingChange_MAPPING_CHANGE_UPDATE: sync.OpUpdate,
	gg.MappingChange_MAPPING_CHANGE_REMOVE: sync.OpRemove,
}

func (s *apiAccessService) PreviewMappingChange(ctx context.Context, req *connect.Request[gg.PreviewMappingChangeRequest]) (*connect.Response[gg.PreviewMappingChangeResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	op, ok := apiMappingOps[req.Msg.GetChange()]
	if !ok {
		return nil, groupgate.Errorf(groupgate.Invalid, "change must be MAPPING_CHANGE_ADD, _UPDATE or _REMOVE")
	}
	kind, id, err := s.api.resource(ctx, c, req.Msg.GetOrganizationId(), req.Msg.GetRepositoryId(), true)
	if err != nil {
		return nil, err
	}
	var override string
	if kind == sync.ResourceOrg {
		r, err := apiOrgRole(req.Msg.GetOrganizationRoleOverride())
		if err != nil {
			return nil, err
		}
		override = string(r)
	} else {
		r, err := apiRepoRole(req.Msg.GetRepositoryRoleOverride())
		if err != nil {
			return nil, err
		}
		override = string(r)
	}
	p, err := s.api.syncer.PreviewMappingChange(ctx, kind, id, req.Msg.GetGroupName(), op, override)
	if err != nil {
		return nil, err
	}
	resp := &gg.PreviewMappingChangeResponse{}
	for _, ch := range p.Changes {
		rc := &gg.RoleChange{UserId: ch.UserID, Before: ch.Before, After: ch.After}
		u, err := s.api.st.GetUser(ctx, ch.UserID)
		switch {
		case err == nil:
			rc.Username = u.UserName
		case !groupgate.IsCode(err, groupgate.NotFound):
			return nil, fmt.Errorf("load user %s: %w", ch.UserID, err)
		}
		switch ch.Change {
		case sync.ChangeGain:
			resp.Gained = append(resp.Gained, rc)
		case sync.ChangeLose:
			resp.Lost = append(resp.Lost, rc)
		default:
			resp.Changed = append(resp.Changed, rc)
		}
	}
	return connect.NewResponse(resp), nil
}
