package api

import (
	"context"
	"fmt"
	"strings"

	"connectrpc.com/connect"

	"github.com/groupgate/groupgate"
	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1/registryv1alpha1connect"
	gg "github.com/groupgate/groupgate/gen/groupgate/v1"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// apiRepoService serves RepositoryService. Reading repositories needs only
// authentication; listing groups and contributors needs a role on the
// repository (directly or through its organization); changing them needs
// repository ADMIN, which organization ADMIN/OWNER imply.
type apiRepoService struct {
	api *API
	registryv1alpha1connect.UnimplementedRepositoryServiceHandler
}

func apiRepository(r groupgate.Repository) *v1.Repository {
	vis := v1.Visibility_VISIBILITY_PRIVATE
	if r.Visibility == groupgate.VisibilityPublic {
		vis = v1.Visibility_VISIBILITY_PUBLIC
	}
	return &v1.Repository{
		Id: r.ID, Name: r.Name, Owner: &v1.Repository_OrganizationId{OrganizationId: r.OrganizationID},
		OwnerName: r.OrganizationName, Visibility: vis,
		CreateTime: apiTime(r.CreatedAt), UpdateTime: apiTime(r.CreatedAt),
	}
}

// loadRepo reads the repository a request names.
func (a *API) loadRepo(ctx context.Context, id string) (groupgate.Repository, error) {
	if id == "" {
		return groupgate.Repository{}, groupgate.Errorf(groupgate.Invalid, "repository_id required")
	}
	r, err := a.st.GetRepository(ctx, id)
	if err != nil {
		return groupgate.Repository{}, fmt.Errorf("load repository %s: %w", id, err)
	}
	return r, nil
}

// apiSplitFullName splits "org/repo"; each part is bounded as a name
// looked up (groupgate.CheckLookupName).
func apiSplitFullName(full string) (org, repo string, err error) {
	if err := groupgate.CheckLookupName("full_name", full); err != nil {
		return "", "", err
	}
	org, repo, ok := strings.Cut(full, "/")
	if !ok || org == "" || repo == "" || strings.Contains(repo, "/") ||
		strings.TrimSpace(org) != org || strings.TrimSpace(repo) != repo {
		return "", "", groupgate.Errorf(groupgate.Invalid, "full_name %q must be \"organization/repository\"", full)
	}
	return org, repo, nil
}

// CreateRepositoryByFullName needs ADMIN or OWNER on the organization.
func (s *apiRepoService) CreateRepositoryByFullName(ctx context.Context, req *connect.Request[v1.CreateRepositoryByFullNameRequest]) (*connect.Response[v1.CreateRepositoryByFullNameResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	orgName, name, err := apiSplitFullName(req.Msg.GetFullName())
	if err != nil {
		return nil, err
	}
	// The name goes into X-Auth-Request-Repo-Roles: the BSR's rules keep
	// ',', '=', '/' and control characters out of it.
	if err := groupgate.ValidateRepositoryName(name); err != nil {
		return nil, err
	}
	var vis groupgate.Visibility
	switch req.Msg.GetVisibility() {
	case v1.Visibility_VISIBILITY_UNSPECIFIED, v1.Visibility_VISIBILITY_PRIVATE:
		vis = groupgate.VisibilityPrivate
	case v1.Visibility_VISIBILITY_PUBLIC:
		vis = groupgate.VisibilityPublic
	default:
		return nil, groupgate.Errorf(groupgate.Invalid, "unknown visibility %d", int32(req.Msg.GetVisibility()))
	}
	o, err := s.api.st.GetOrganizationByName(ctx, orgName)
	if err != nil {
		return nil, fmt.Errorf("load organization %q: %w", orgName, err)
	}
	if err := s.api.requireOrgAdmin(ctx, c, o); err != nil {
		return nil, err
	}
	out, err := s.api.syncer.CreateRepository(ctx, c.actor(), groupgate.Repository{OrganizationID: o.ID, Name: name, Visibility: vis})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.CreateRepositoryByFullNameResponse{Repository: apiRepository(out)}), nil
}

func (s *apiRepoService) GetRepository(ctx context.Context, req *connect.Request[v1.GetRepositoryRequest]) (*connect.Response[v1.GetRepositoryResponse], error) {
	r, err := s.api.loadRepo(ctx, req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.GetRepositoryResponse{Repository: apiRepository(r)}), nil
}

func (s *apiRepoService) GetRepositoryByFullName(ctx context.Context, req *connect.Request[v1.GetRepositoryByFullNameRequest]) (*connect.Response[v1.GetRepositoryByFullNameResponse], error) {
	orgName, name, err := apiSplitFullName(req.Msg.GetFullName())
	if err != nil {
		return nil, err
	}
	r, err := s.api.st.GetRepositoryByFullName(ctx, orgName, name)
	if err != nil {
		return nil, fmt.Errorf("load repository %s/%s: %w", orgName, name, err)
	}
	return connect.NewResponse(&v1.GetRepositoryByFullNameResponse{Repository: apiRepository(r)}), nil
}

// ListRepositoriesByOwner takes the organization's ID or name.
// GetRepositoriesByFullName answers every named repository or an error:
// the first name that is invalid or unknown fails the call (the BSR's
// "errors if any of the repositories don't exist").
func (s *apiRepoService) GetRepositoriesByFullName(ctx context.Context, req *connect.Request[v1.GetRepositoriesByFullNameRequest]) (*connect.Response[v1.GetRepositoriesByFullNameResponse], error) {
	names := req.Msg.GetFullNames()
	if len(names) > maxAPIPageSize {
		return nil, groupgate.Errorf(groupgate.Invalid, "at most %d full_names", maxAPIPageSize)
	}
	resp := &v1.GetRepositoriesByFullNameResponse{}
	for _, full := range names {
		orgName, name, err := apiSplitFullName(full)
		if err != nil {
			return nil, err
		}
		r, err := s.api.st.GetRepositoryByFullName(ctx, orgName, name)
		if err != nil {
			return nil, fmt.Errorf("load repository %s/%s: %w", orgName, name, err)
		}
		resp.Repositories = append(resp.Repositories, apiRepository(r))
	}
	return connect.NewResponse(resp), nil
}

// ListOrganizationRepositories lists an organization's repositories, by
// organization ID.
func (s *apiRepoService) ListOrganizationRepositories(ctx context.Context, req *connect.Request[v1.ListOrganizationRepositoriesRequest]) (*connect.Response[v1.ListOrganizationRepositoriesResponse], error) {
	if req.Msg.GetReverse() {
		return nil, groupgate.Errorf(groupgate.Invalid, "reverse order is not supported")
	}
	o, err := s.api.loadOrg(ctx, req.Msg.GetOrganizationId())
	if err != nil {
		return nil, err
	}
	repos, next, err := s.listRepos(ctx, o, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.ListOrganizationRepositoriesResponse{Repositories: repos, NextPageToken: next}), nil
}

// listRepos is one page of o's repositories.
func (s *apiRepoService) listRepos(ctx context.Context, o groupgate.Organization, size uint32, token string) ([]*v1.Repository, string, error) {
	page, err := apiPage(size, token)
	if err != nil {
		return nil, "", err
	}
	repos, next, err := apiFetchPage(page, func(opts store.ListOptions) ([]groupgate.Repository, error) {
		return s.api.st.ListRepositories(ctx, o.ID, opts)
	})
	if err != nil {
		return nil, "", fmt.Errorf("list repositories of %s: %w", o.ID, err)
	}
	out := make([]*v1.Repository, 0, len(repos))
	for _, r := range repos {
		out = append(out, apiRepository(r))
	}
	return out, next, nil
}

// DeleteRepositoryByFullName is DeleteRepository by full name.
func (s *apiRepoService) DeleteRepositoryByFullName(ctx context.Context, req *connect.Request[v1.DeleteRepositoryByFullNameRequest]) (*connect.Response[v1.DeleteRepositoryByFullNameResponse], error) {
	orgName, name, err := apiSplitFullName(req.Msg.GetFullName())
	if err != nil {
		return nil, err
	}
	r, err := s.api.st.GetRepositoryByFullName(ctx, orgName, name)
	if err != nil {
		return nil, fmt.Errorf("load repository %s/%s: %w", orgName, name, err)
	}
	c, r, err := s.adminRepo(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	return apiEmpty[v1.DeleteRepositoryByFullNameResponse](s.api.syncer.DeleteRepository(ctx, c.actor(), r.ID))
}

func (s *apiRepoService) ListRepositoriesByOwner(ctx context.Context, req *connect.Request[gg.ListRepositoriesByOwnerRequest]) (*connect.Response[gg.ListRepositoriesByOwnerResponse], error) {
	owner := req.Msg.GetOwner()
	if owner == "" {
		return nil, groupgate.Errorf(groupgate.Invalid, "owner required")
	}
	if err := groupgate.CheckLookupName("owner", owner); err != nil {
		return nil, err
	}
	o, err := s.api.st.GetOrganization(ctx, owner)
	if groupgate.IsCode(err, groupgate.NotFound) {
		o, err = s.api.st.GetOrganizationByName(ctx, owner)
	}
	if err != nil {
		return nil, fmt.Errorf("load organization %q: %w", owner, err)
	}
	repos, next, err := s.listRepos(ctx, o, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&gg.ListRepositoriesByOwnerResponse{Repositories: repos, NextPageToken: next}), nil
}

// DeleteRepository needs repository ADMIN.
func (s *apiRepoService) DeleteRepository(ctx context.Context, req *connect.Request[v1.DeleteRepositoryRequest]) (*connect.Response[v1.DeleteRepositoryResponse], error) {
	c, r, err := s.adminRepo(ctx, req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	return apiEmpty[v1.DeleteRepositoryResponse](s.api.syncer.DeleteRepository(ctx, c.actor(), r.ID))
}

// adminRepo loads the repository and checks the caller administers it.
func (s *apiRepoService) adminRepo(ctx context.Context, repoID string) (*apiCaller, groupgate.Repository, error) {
	return apiAuthorize(ctx, repoID, s.api.loadRepo, s.api.requireRepoAdmin)
}

func (s *apiRepoService) AddRepositoryGroup(ctx context.Context, req *connect.Request[v1.AddRepositoryGroupRequest]) (*connect.Response[v1.AddRepositoryGroupResponse], error) {
	m := req.Msg
	err := s.api.repoGrants().setGroup(ctx, m.GetRepositoryId(), m.GetGroupName(), m.GetRoleOverride(), s.api.syncer.AddRepoMapping)
	return apiEmpty[v1.AddRepositoryGroupResponse](err)
}

func (s *apiRepoService) UpdateRepositoryGroup(ctx context.Context, req *connect.Request[v1.UpdateRepositoryGroupRequest]) (*connect.Response[v1.UpdateRepositoryGroupResponse], error) {
	m := req.Msg
	if m.RoleOverride == nil {
		err := s.api.repoGrants().keepGroup(ctx, m.GetRepositoryId(), m.GetGroupName(), s.api.st.GetRepoMapping)
		return apiEmpty[v1.UpdateRepositoryGroupResponse](err)
	}
	err := s.api.repoGrants().setGroup(ctx, m.GetRepositoryId(), m.GetGroupName(), m.GetRoleOverride(), s.api.syncer.UpdateRepoMapping)
	return apiEmpty[v1.UpdateRepositoryGroupResponse](err)
}

func (s *apiRepoService) RemoveRepositoryGroup(ctx context.Context, req *connect.Request[v1.RemoveRepositoryGroupRequest]) (*connect.Response[v1.RemoveRepositoryGroupResponse], error) {
	m := req.Msg
	err := s.api.repoGrants().removeGroup(ctx, m.GetRepositoryId(), m.GetGroupName(), s.api.syncer.RemoveRepoMapping)
	return apiEmpty[v1.RemoveRepositoryGroupResponse](err)
}

func (s *apiRepoService) ListRepositoryGroups(ctx context.Context, req *connect.Request[gg.ListRepositoryGroupsRequest]) (*connect.Response[gg.ListRepositoryGroupsResponse], error) {
	ms, next, err := s.api.repoGrants().listGroups(ctx, req.Msg.GetRepositoryId(), req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	// An override-less mapping grants the organization's base role.
	var base groupgate.RepoRole
	if len(ms) > 0 {
		r, err := s.api.st.GetRepository(ctx, ms[0].RepositoryID)
		if err != nil {
			return nil, fmt.Errorf("load repository %s: %w", ms[0].RepositoryID, err)
		}
		o, err := s.api.st.GetOrganization(ctx, r.OrganizationID)
		if err != nil {
			return nil, fmt.Errorf("load organization %s: %w", r.OrganizationID, err)
		}
		base = o.RepositoryBaseRole
	}
	resp := &gg.ListRepositoryGroupsResponse{NextPageToken: next}
	for _, m := range ms {
		resp.Groups = append(resp.Groups, &gg.RepositoryGroup{
			Id: m.ID, RepositoryId: m.RepositoryID, GroupName: m.Group,
			RoleOverride:  apiRepoRoleEnum(m.RoleOverride),
			EffectiveRole: apiRepoRoleEnum(sync.RepoMappingRoleUnder(m, base)),
			CreateTime:    apiTime(m.CreatedAt), UpdateTime: apiTime(m.UpdatedAt),
		})
	}
	return connect.NewResponse(resp), nil
}

// SetRepositoryContributor sets the user's manual role; UNSPECIFIED
// removes it (and is a no-op when there is none).
func (s *apiRepoService) SetRepositoryContributor(ctx context.Context, req *connect.Request[v1.SetRepositoryContributorRequest]) (*connect.Response[v1.SetRepositoryContributorResponse], error) {
	role, err := apiRepoRole(req.Msg.GetRepositoryRole())
	if err != nil {
		return nil, err
	}
	c, r, err := s.adminRepo(ctx, req.Msg.GetRepositoryId())
	if err != nil {
		return nil, err
	}
	userID := req.Msg.GetUserId()
	if userID == "" {
		return nil, groupgate.Errorf(groupgate.Invalid, "user_id required")
	}
	if role == groupgate.RepoRoleUnspecified {
		err = s.api.syncer.RemoveRepoContributor(ctx, c.actor(), r.ID, userID)
		if groupgate.IsCode(err, groupgate.NotFound) {
			if _, uerr := s.api.st.GetUser(ctx, userID); uerr != nil {
				return nil, fmt.Errorf("load user %s: %w", userID, uerr)
			}
			err = nil
		}
	} else {
		_, err = s.api.syncer.SetRepoContributor(ctx, c.actor(), r.ID, userID, role)
	}
	return apiEmpty[v1.SetRepositoryContributorResponse](err)
}

// ListRepositoryContributors lists everyone with a role on the repository
// from its own sources (manual roles and mapped groups), paged by user ID:
// explicit_role is the manual grant, implicit_role what groups and the
// organization give. groupgate.v1's ListRepositoryContributors adds the
// sources.
func (s *apiRepoService) ListRepositoryContributors(ctx context.Context, req *connect.Request[v1.ListRepositoryContributorsRequest]) (*connect.Response[v1.ListRepositoryContributorsResponse], error) {
	if req.Msg.GetReverse() {
		return nil, groupgate.Errorf(groupgate.Invalid, "reverse order is not supported")
	}
	resp := &v1.ListRepositoryContributorsResponse{}
	var err error
	resp.NextPageToken, err = s.contributors(ctx, req.Msg.GetRepositoryId(), req.Msg.GetPageSize(), req.Msg.GetPageToken(),
		func(u groupgate.User, repoID string, explicit groupgate.RepoRole, e sync.Explanation) {
			resp.Users = append(resp.Users, &v1.RepositoryContributor{
				User: apiUser(u), RepositoryId: repoID,
				ExplicitRole: apiRepoRoleEnum(explicit),
				ImplicitRole: apiRepoRoleEnum(implicitRepoRole(e)),
			})
		})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

// implicitRepoRole is the role a user holds on a repository from anything
// but a manual grant: its mapped groups, and ADMIN from administering the
// organization.
func implicitRepoRole(e sync.Explanation) groupgate.RepoRole {
	var best groupgate.RepoRole
	for _, src := range e.RepoSources {
		if src.Kind != sync.SourceManual && sync.RepoRoleRank(src.Role) > sync.RepoRoleRank(best) {
			best = src.Role
		}
	}
	if e.AuthorizedRepoRole != e.RepoRole && sync.RepoRoleRank(e.AuthorizedRepoRole) > sync.RepoRoleRank(best) {
		best = e.AuthorizedRepoRole
	}
	return best
}

// contributors calls add for each user of one page of the repository's
// role holders, with the manual grant and the explanation of the role.
func (s *apiRepoService) contributors(ctx context.Context, id string, size uint32, token string, add func(u groupgate.User, repoID string, explicit groupgate.RepoRole, e sync.Explanation)) (string, error) {
	g := s.api.repoGrants()
	repoID, page, err := g.readPage(ctx, id, size, token)
	if err != nil {
		return "", err
	}
	contribs, err := s.api.st.ListRepoContributors(ctx, repoID)
	if err != nil {
		return "", fmt.Errorf("list contributors of repository %s: %w", repoID, err)
	}
	explicit := map[string]groupgate.RepoRole{}
	var ids []string
	for _, rc := range contribs {
		explicit[rc.UserID] = rc.Role
		ids = append(ids, rc.UserID)
	}
	return g.holders(ctx, repoID, ids, page, func(u groupgate.User, e sync.Explanation) {
		add(u, repoID, explicit[u.ID], e)
	})
}

// ggRepoService is groupgate.v1.RepositoryService: listings the BSR's
// RepositoryService lacks, and contributors with the sources of their
// roles.
type ggRepoService struct{ *apiRepoService }

func (s *ggRepoService) ListRepositoryContributors(ctx context.Context, req *connect.Request[gg.ListRepositoryContributorsRequest]) (*connect.Response[gg.ListRepositoryContributorsResponse], error) {
	resp := &gg.ListRepositoryContributorsResponse{}
	var err error
	resp.NextPageToken, err = s.contributors(ctx, req.Msg.GetRepositoryId(), req.Msg.GetPageSize(), req.Msg.GetPageToken(),
		func(u groupgate.User, _ string, explicit groupgate.RepoRole, e sync.Explanation) {
			resp.Users = append(resp.Users, &gg.RepositoryContributor{
				UserId: u.ID, Username: u.UserName, Email: u.Email,
				RepositoryRole: apiRepoRoleEnum(e.RepoRole),
				ExplicitRole:   apiRepoRoleEnum(explicit),
				Sources:        apiRepoSources(e.RepoSources),
			})
		})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}
