package api

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"strings"

	"connectrpc.com/connect"

	"github.com/groupgate/groupgate"
	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1/registryv1alpha1connect"
	gg "github.com/groupgate/groupgate/gen/groupgate/v1"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// apiOrgService serves OrganizationService. Reading organizations needs
// only authentication; listing members and groups needs a role on the
// organization; changing them needs ADMIN or OWNER.
type apiOrgService struct {
	api *API
	registryv1alpha1connect.UnimplementedOrganizationServiceHandler
}

func apiOrganization(o groupgate.Organization) *v1.Organization {
	return &v1.Organization{Id: o.ID, Name: o.Name, CreateTime: apiTime(o.CreatedAt), UpdateTime: apiTime(o.CreatedAt)}
}

// loadOrg reads the organization a request names; Invalid when the ID is
// empty, NotFound when unknown.
func (a *API) loadOrg(ctx context.Context, id string) (groupgate.Organization, error) {
	if id == "" {
		return groupgate.Organization{}, groupgate.Errorf(groupgate.Invalid, "organization_id required")
	}
	o, err := a.st.GetOrganization(ctx, id)
	if err != nil {
		return groupgate.Organization{}, fmt.Errorf("load organization %s: %w", id, err)
	}
	return o, nil
}

func (s *apiOrgService) GetOrganization(ctx context.Context, req *connect.Request[v1.GetOrganizationRequest]) (*connect.Response[v1.GetOrganizationResponse], error) {
	o, err := s.api.loadOrg(ctx, req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.GetOrganizationResponse{Organization: apiOrganization(o)}), nil
}

func (s *apiOrgService) GetOrganizationByName(ctx context.Context, req *connect.Request[v1.GetOrganizationByNameRequest]) (*connect.Response[v1.GetOrganizationByNameResponse], error) {
	name := strings.TrimSpace(req.Msg.GetName())
	if name == "" {
		return nil, groupgate.Errorf(groupgate.Invalid, "name required")
	}
	if err := groupgate.CheckLookupName("name", name); err != nil {
		return nil, err
	}
	o, err := s.api.st.GetOrganizationByName(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("load organization %q: %w", name, err)
	}
	return connect.NewResponse(&v1.GetOrganizationByNameResponse{Organization: apiOrganization(o)}), nil
}

func (s *apiOrgService) ListOrganizations(ctx context.Context, req *connect.Request[v1.ListOrganizationsRequest]) (*connect.Response[v1.ListOrganizationsResponse], error) {
	if req.Msg.GetReverse() {
		return nil, groupgate.Errorf(groupgate.Invalid, "reverse order is not supported")
	}
	page, err := apiPage(req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	orgs, next, err := apiFetchPage(page, func(o store.ListOptions) ([]groupgate.Organization, error) {
		return s.api.st.ListOrganizations(ctx, o)
	})
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	resp := &v1.ListOrganizationsResponse{NextPageToken: next}
	for _, o := range orgs {
		resp.Organizations = append(resp.Organizations, apiOrganization(o))
	}
	return connect.NewResponse(resp), nil
}

// ListUserOrganizations lists the organizations the user holds a role on,
// with the effective role (from any source), in organization-name order.
// A user may list their own; instance admins anyone's.
func (s *apiOrgService) ListUserOrganizations(ctx context.Context, req *connect.Request[v1.ListUserOrganizationsRequest]) (*connect.Response[v1.ListUserOrganizationsResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if req.Msg.GetReverse() {
		return nil, groupgate.Errorf(groupgate.Invalid, "reverse order is not supported")
	}
	userID := cmp.Or(req.Msg.GetUserId(), c.User.ID)
	if userID != c.User.ID && !c.Admin {
		return nil, groupgate.Errorf(groupgate.Forbidden, "only instance admins may list another user's organizations")
	}
	page, err := apiPage(req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	acc, err := s.api.syncer.Resolve(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("resolve access of %s: %w", userID, err)
	}
	orgs, next := apiSlicePage(acc.Orgs, page)
	resp := &v1.ListUserOrganizationsResponse{NextPageToken: next}
	for _, oa := range orgs {
		o, err := s.api.st.GetOrganization(ctx, oa.OrganizationID)
		if groupgate.IsCode(err, groupgate.NotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("load organization %s: %w", oa.OrganizationID, err)
		}
		resp.Organizations = append(resp.Organizations, &v1.OrganizationMembership{
			Organization: apiOrganization(o), OrganizationRole: apiOrgRoleEnum(oa.Role),
		})
	}
	return connect.NewResponse(resp), nil
}

// CreateOrganization is for instance admins; the creator becomes OWNER (a
// manual role) in the same transaction as the organization and its audit
// event (sync.Syncer.CreateOrganization).
func (s *apiOrgService) CreateOrganization(ctx context.Context, req *connect.Request[v1.CreateOrganizationRequest]) (*connect.Response[v1.CreateOrganizationResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireInstanceAdmin(c); err != nil {
		return nil, err
	}
	// The Syncer writes the organization, the OWNER role, the audit event
	// and the outbox entry in one transaction, then pushes the role to the
	// creator's live sessions.
	out, err := s.api.syncer.CreateOrganization(ctx, c.actor(), req.Msg.GetName(), c.User.ID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.CreateOrganizationResponse{Organization: apiOrganization(out)}), nil
}

// DeleteOrganization needs OWNER: it removes every repository, mapping and
// role of the organization.
func (s *apiOrgService) DeleteOrganization(ctx context.Context, req *connect.Request[v1.DeleteOrganizationRequest]) (*connect.Response[v1.DeleteOrganizationResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.api.loadOrg(ctx, req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	return apiEmpty[v1.DeleteOrganizationResponse](s.deleteOrg(ctx, c, o))
}

// DeleteOrganizationByName is DeleteOrganization by name.
func (s *apiOrgService) DeleteOrganizationByName(ctx context.Context, req *connect.Request[v1.DeleteOrganizationByNameRequest]) (*connect.Response[v1.DeleteOrganizationByNameResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	name := req.Msg.GetName()
	if name == "" {
		return nil, groupgate.Errorf(groupgate.Invalid, "name required")
	}
	if err := groupgate.CheckLookupName("name", name); err != nil {
		return nil, err
	}
	o, err := s.api.st.GetOrganizationByName(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("load organization %q: %w", name, err)
	}
	return apiEmpty[v1.DeleteOrganizationByNameResponse](s.deleteOrg(ctx, c, o))
}

// deleteOrg deletes o for an OWNER of it.
func (s *apiOrgService) deleteOrg(ctx context.Context, c *apiCaller, o groupgate.Organization) error {
	role, err := s.api.callerOrgRole(ctx, c, o.ID)
	if err != nil {
		return err
	}
	if sync.OrgRoleRank(role) < sync.OrgRoleRank(groupgate.OrgRoleOwner) {
		return groupgate.Errorf(groupgate.Forbidden, "you need the OWNER role on organization %q to delete it", o.Name)
	}
	return s.api.syncer.DeleteOrganization(ctx, c.actor(), o.ID)
}

// memberChange checks that a caller who administers the organization
// does not touch a role above their own, so that an ADMIN cannot make (or
// unmake) an OWNER.
func (a *API) memberChange(ctx context.Context, c *apiCaller, org groupgate.Organization, roles ...groupgate.OrgRole) error {
	own, err := a.callerOrgRole(ctx, c, org.ID)
	if err != nil {
		return err
	}
	for _, r := range roles {
		if !sync.MayChangeOrgMember(own, r) {
			return groupgate.Errorf(groupgate.Forbidden, "you cannot grant or change the role %s, which is above your own", r)
		}
	}
	return nil
}

func (s *apiOrgService) AddOrganizationMember(ctx context.Context, req *connect.Request[v1.AddOrganizationMemberRequest]) (*connect.Response[v1.AddOrganizationMemberResponse], error) {
	return apiEmpty[v1.AddOrganizationMemberResponse](s.setMember(ctx, req.Msg.GetOrganizationId(), req.Msg.GetUserId(), req.Msg.GetOrganizationRole(), false))
}

func (s *apiOrgService) UpdateOrganizationMember(ctx context.Context, req *connect.Request[v1.UpdateOrganizationMemberRequest]) (*connect.Response[v1.UpdateOrganizationMemberResponse], error) {
	return apiEmpty[v1.UpdateOrganizationMemberResponse](s.setMember(ctx, req.Msg.GetOrganizationId(), req.Msg.GetUserId(), req.Msg.GetOrganizationRole(), true))
}

// setMember adds (update false: Conflict when the user has a manual role)
// or changes (update true: NotFound when they have none) a manual role.
func (s *apiOrgService) setMember(ctx context.Context, orgID, userID string, role v1.OrganizationRole, update bool) error {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return err
	}
	r, err := apiOrgRole(role)
	if err != nil {
		return err
	}
	if r == groupgate.OrgRoleUnspecified {
		return groupgate.Errorf(groupgate.Invalid, "organization_role required")
	}
	o, err := s.api.loadOrg(ctx, orgID)
	if err != nil {
		return err
	}
	if userID == "" {
		return groupgate.Errorf(groupgate.Invalid, "user_id required")
	}
	if err := s.api.requireOrgAdmin(ctx, c, o); err != nil {
		return err
	}
	roles := []groupgate.OrgRole{r}
	old, err := s.api.st.GetOrgMember(ctx, o.ID, userID)
	switch {
	case err == nil && !update:
		return groupgate.Errorf(groupgate.Conflict, "user already has a role on organization %q; use UpdateOrganizationMember", o.Name)
	case err == nil:
		roles = append(roles, old.Role)
	case !groupgate.IsCode(err, groupgate.NotFound):
		return fmt.Errorf("load role of %s on organization %s: %w", userID, o.ID, err)
	case update:
		return groupgate.Errorf(groupgate.NotFound, "user has no role given by hand on organization %q", o.Name)
	}
	if err := s.api.memberChange(ctx, c, o, roles...); err != nil {
		return err
	}
	_, err = s.api.syncer.SetOrgMember(ctx, c.actor(), o.ID, userID, r)
	return err
}

func (s *apiOrgService) RemoveOrganizationMember(ctx context.Context, req *connect.Request[v1.RemoveOrganizationMemberRequest]) (*connect.Response[v1.RemoveOrganizationMemberResponse], error) {
	c, o, err := apiAuthorize(ctx, req.Msg.GetOrganizationId(), s.api.loadOrg, s.api.requireOrgAdmin)
	if err != nil {
		return nil, err
	}
	userID := req.Msg.GetUserId()
	old, err := s.api.st.GetOrgMember(ctx, o.ID, userID)
	if err != nil {
		return nil, fmt.Errorf("load role of %s on organization %s: %w", userID, o.ID, err)
	}
	if err := s.api.memberChange(ctx, c, o, old.Role); err != nil {
		return nil, err
	}
	return apiEmpty[v1.RemoveOrganizationMemberResponse](s.api.syncer.RemoveOrgMember(ctx, c.actor(), o.ID, userID))
}

// ListOrganizationMembers lists everyone with a role on the organization,
// by hand or through a mapped group, with every source.
func (s *apiOrgService) ListOrganizationMembers(ctx context.Context, req *connect.Request[gg.ListOrganizationMembersRequest]) (*connect.Response[gg.ListOrganizationMembersResponse], error) {
	g := s.api.orgGrants()
	orgID, page, err := g.readPage(ctx, req.Msg.GetOrganizationId(), req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	members, err := s.api.st.ListOrgMembers(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("list members of organization %s: %w", orgID, err)
	}
	var ids []string
	for _, m := range members {
		ids = append(ids, m.UserID)
	}
	resp := &gg.ListOrganizationMembersResponse{}
	resp.NextPageToken, err = g.holders(ctx, orgID, ids, page, func(u groupgate.User, e sync.Explanation) {
		resp.Members = append(resp.Members, &gg.OrganizationMember{
			UserId: u.ID, Username: u.UserName, Email: u.Email,
			OrganizationRole: apiOrgRoleEnum(e.OrgRole), Sources: apiOrgSources(e.OrgSources),
		})
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

// GetOrganizationSettings is the BSR's way to read an organization's group
// mappings (idp_groups), for anyone with a role on it, with the number of
// users holding a role there and the repository base role (UNSPECIFIED
// when the organization has none).
func (s *apiOrgService) GetOrganizationSettings(ctx context.Context, req *connect.Request[v1.GetOrganizationSettingsRequest]) (*connect.Response[v1.GetOrganizationSettingsResponse], error) {
	g := s.api.orgGrants()
	_, orgID, err := g.read(ctx, req.Msg.GetOrganizationId())
	if err != nil {
		return nil, err
	}
	mappings, err := s.api.st.ListOrgMappings(ctx, orgID, store.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list mappings of organization %s: %w", orgID, err)
	}
	o, err := s.api.st.GetOrganization(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("load organization %s: %w", orgID, err)
	}
	resp := &v1.GetOrganizationSettingsResponse{RepositoryBaseRole: apiRepoRoleEnum(o.RepositoryBaseRole)}
	for _, m := range mappings {
		resp.IdpGroups = append(resp.IdpGroups, &v1.GetOrganizationSettingsResponse_IdPGroup{
			Name: m.Group, RoleOverride: apiOrgRoleEnum(m.RoleOverride),
		})
	}
	members, err := s.api.st.ListOrgMembers(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("list members of organization %s: %w", orgID, err)
	}
	var ids []string
	for _, m := range members {
		ids = append(ids, m.UserID)
	}
	if _, err := g.holders(ctx, orgID, ids, store.ListOptions{Limit: math.MaxInt32}, func(groupgate.User, sync.Explanation) {
		resp.MembersCount++
	}); err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

// UpdateOrganizationSettings is for organization admins. It follows the
// BSR's "unset leaves unchanged": an UNSPECIFIED repository_base_role
// changes nothing, so a base role once set can be changed but not cleared
// through this API. The base role is an access change and goes through
// sync (outbox, audit, live sessions at once). groupgate keeps no
// description or url for organizations: a request that sets either is
// refused as invalid_argument, before anything changes, rather than
// answered with a success that stored nothing.
func (s *apiOrgService) UpdateOrganizationSettings(ctx context.Context, req *connect.Request[v1.UpdateOrganizationSettingsRequest]) (*connect.Response[v1.UpdateOrganizationSettingsResponse], error) {
	m := req.Msg
	role, err := apiRepoRole(m.GetRepositoryBaseRole())
	if err != nil {
		return nil, err
	}
	c, orgID, err := s.api.orgGrants().admin(ctx, m.GetOrganizationId())
	if err != nil {
		return nil, err
	}
	if m.Description != nil || m.Url != nil {
		return nil, groupgate.Errorf(groupgate.Invalid, "groupgate keeps no organization description or url: leave them unset")
	}
	if role == groupgate.RepoRoleUnspecified {
		return connect.NewResponse(&v1.UpdateOrganizationSettingsResponse{}), nil
	}
	if err := s.api.syncer.SetOrgRepositoryBaseRole(ctx, c.actor(), orgID, role); err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.UpdateOrganizationSettingsResponse{}), nil
}

func (s *apiOrgService) AddOrganizationGroup(ctx context.Context, req *connect.Request[v1.AddOrganizationGroupRequest]) (*connect.Response[v1.AddOrganizationGroupResponse], error) {
	m := req.Msg
	err := s.api.orgGrants().setGroup(ctx, m.GetOrganizationId(), m.GetGroupName(), m.GetRoleOverride(), s.api.syncer.AddOrgMapping)
	return apiEmpty[v1.AddOrganizationGroupResponse](err)
}

func (s *apiOrgService) UpdateOrganizationGroup(ctx context.Context, req *connect.Request[v1.UpdateOrganizationGroupRequest]) (*connect.Response[v1.UpdateOrganizationGroupResponse], error) {
	m := req.Msg
	if m.RoleOverride == nil {
		err := s.api.orgGrants().keepGroup(ctx, m.GetOrganizationId(), m.GetGroupName(), s.api.st.GetOrgMapping)
		return apiEmpty[v1.UpdateOrganizationGroupResponse](err)
	}
	err := s.api.orgGrants().setGroup(ctx, m.GetOrganizationId(), m.GetGroupName(), m.GetRoleOverride(), s.api.syncer.UpdateOrgMapping)
	return apiEmpty[v1.UpdateOrganizationGroupResponse](err)
}

func (s *apiOrgService) RemoveOrganizationGroup(ctx context.Context, req *connect.Request[v1.RemoveOrganizationGroupRequest]) (*connect.Response[v1.RemoveOrganizationGroupResponse], error) {
	m := req.Msg
	err := s.api.orgGrants().removeGroup(ctx, m.GetOrganizationId(), m.GetGroupName(), s.api.syncer.RemoveOrgMapping)
	return apiEmpty[v1.RemoveOrganizationGroupResponse](err)
}

func (s *apiOrgService) ListOrganizationGroups(ctx context.Context, req *connect.Request[gg.ListOrganizationGroupsRequest]) (*connect.Response[gg.ListOrganizationGroupsResponse], error) {
	ms, next, err := s.api.orgGrants().listGroups(ctx, req.Msg.GetOrganizationId(), req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &gg.ListOrganizationGroupsResponse{NextPageToken: next}
	for _, m := range ms {
		resp.Groups = append(resp.Groups, &gg.OrganizationGroup{
			Id: m.ID, OrganizationId: m.OrganizationID, GroupName: m.Group,
			RoleOverride:  apiOrgRoleEnum(m.RoleOverride),
			EffectiveRole: apiOrgRoleEnum(sync.OrgMappingRole(m)),
			CreateTime:    apiTime(m.CreatedAt), UpdateTime: apiTime(m.UpdatedAt),
		})
	}
	return connect.NewResponse(resp), nil
}
