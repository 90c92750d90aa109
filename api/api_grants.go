package api

import (
	"context"
	"fmt"
	"slices"

	"connectrpc.com/connect"

	"github.com/groupgate/groupgate"
	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// apiAuthorize authenticates the caller, loads the resource a request
// names and runs check on it, in that order, so that every handler refuses
// the same way: Unauthenticated, then Invalid/NotFound, then Forbidden.
func apiAuthorize[T any](ctx context.Context, id string, load func(context.Context, string) (T, error), check func(context.Context, *apiCaller, T) error) (*apiCaller, T, error) {
	var zero T
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, zero, err
	}
	res, err := load(ctx, id)
	if err != nil {
		return nil, zero, err
	}
	if err := check(ctx, c, res); err != nil {
		return nil, zero, err
	}
	return c, res, nil
}

// apiGrants is what differs between organizations and repositories in the
// handlers that change their group mappings and list their mappings and
// role holders. The Connect handlers stay per service, their messages
// differ; who may do what (requireOrgAdmin against requireRepoAdmin, which
// lets organization admins in) stays in admin and read.
type apiGrants[E ~int32, R ~string, M any] struct {
	api  *API
	noun string // "organization" or "repository", in messages
	kind sync.ResourceKind
	// parse maps the API's role enum to the role.
	parse func(E) (R, error)
	// admin and read authorize changing and reading the resource's
	// grants; both return the caller and the resource's ID.
	admin, read  func(ctx context.Context, id string) (*apiCaller, string, error)
	listMappings func(ctx context.Context, id string, opts store.ListOptions) ([]M, error)
	group        func(M) string
	// hasRole tells whether an explanation gives the user a role here.
	hasRole func(sync.Explanation) bool
}

// orgGrants and repoGrants build the per-kind tables on each call: they
// hold method values of a, and nothing in them changes.
func (a *API) orgGrants() apiGrants[v1.OrganizationRole, groupgate.OrgRole, groupgate.OrgMapping] {
	authorize := func(check func(context.Context, *apiCaller, groupgate.Organization) error) func(context.Context, string) (*apiCaller, string, error) {
		return func(ctx context.Context, id string) (*apiCaller, string, error) {
			c, o, err := apiAuthorize(ctx, id, a.loadOrg, check)
			return c, o.ID, err
		}
	}
	return apiGrants[v1.OrganizationRole, groupgate.OrgRole, groupgate.OrgMapping]{
		api: a, noun: "organization", kind: sync.ResourceOrg,
		parse: apiOrgRole,
		admin: authorize(a.requireOrgAdmin), read: authorize(a.requireOrgRole),
		listMappings: a.st.ListOrgMappings,
		group:        func(m groupgate.OrgMapping) string { return m.Group },
		hasRole:      func(e sync.Explanation) bool { return e.OrgRole != groupgate.OrgRoleUnspecified },
	}
}

func (a *API) repoGrants() apiGrants[v1.RepositoryRole, groupgate.RepoRole, groupgate.RepoMapping] {
	authorize := func(check func(context.Context, *apiCaller, groupgate.Repository) error) func(context.Context, string) (*apiCaller, string, error) {
		return func(ctx context.Context, id string) (*apiCaller, string, error) {
			c, r, err := apiAuthorize(ctx, id, a.loadRepo, check)
			return c, r.ID, err
		}
	}
	return apiGrants[v1.RepositoryRole, groupgate.RepoRole, groupgate.RepoMapping]{
		api: a, noun: "repository", kind: sync.ResourceRepo,
		parse: apiRepoRole,
		admin: authorize(a.requireRepoAdmin), read: authorize(a.requireRepoRole),
		listMappings: a.st.ListRepoMappings,
		group:        func(m groupgate.RepoMapping) string { return m.Group },
		hasRole:      func(e sync.Explanation) bool { return e.RepoRole != groupgate.RepoRoleUnspecified },
	}
}

// setGroup serves Add and Update…Group: the role override is checked
// before the caller's authority; set is the Syncer's add or update.
func (g apiGrants[E, R, M]) setGroup(ctx context.Context, id, group string, override E, set func(ctx context.Context, actor, id, group string, override R) (M, error)) error {
	role, err := g.parse(override)
	if err != nil {
		return err
	}
	c, resID, err := g.admin(ctx, id)
	if err != nil {
		return err
	}
	_, err = set(ctx, c.actor(), resID, group, role)
	return err
}

// keepGroup serves an Update…Group without role_override: the BSR's
// optional field, unset, leaves the override as it is, so nothing changes.
// The caller's authority and the mapping's existence are checked as for a
// change, so the answer is the same as an update to the same role.
func (g apiGrants[E, R, M]) keepGroup(ctx context.Context, id, group string, get func(ctx context.Context, id, group string) (M, error)) error {
	_, resID, err := g.admin(ctx, id)
	if err != nil {
		return err
	}
	if err := groupgate.ValidateGroupName(group); err != nil {
		return err
	}
	if _, err := get(ctx, resID, group); err != nil {
		return fmt.Errorf("load mapping of group %q on %s %s: %w", group, g.noun, resID, err)
	}
	return nil
}

// removeGroup serves Remove…Group; remove is the Syncer's.
func (g apiGrants[E, R, M]) removeGroup(ctx context.Context, id, group string, remove func(ctx context.Context, actor, id, group string) (M, error)) error {
	c, resID, err := g.admin(ctx, id)
	if err != nil {
		return err
	}
	_, err = remove(ctx, c.actor(), resID, group)
	return err
}

// readPage authorizes reading the resource's grants, then decodes the
// page.
func (g apiGrants[E, R, M]) readPage(ctx context.Context, id string, size uint32, token string) (string, store.ListOptions, error) {
	_, resID, err := g.read(ctx, id)
	if err != nil {
		return "", store.ListOptions{}, err
	}
	page, err := apiPage(size, token)
	if err != nil {
		return "", store.ListOptions{}, err
	}
	return resID, page, nil
}

// listGroups serves List…Groups: one page of the resource's mappings.
func (g apiGrants[E, R, M]) listGroups(ctx context.Context, id string, size uint32, token string) ([]M, string, error) {
	resID, page, err := g.readPage(ctx, id, size, token)
	if err != nil {
		return nil, "", err
	}
	ms, next, err := apiFetchPage(page, func(opts store.ListOptions) ([]M, error) {
		return g.listMappings(ctx, resID, opts)
	})
	if err != nil {
		return nil, "", fmt.Errorf("list mappings of %s %s: %w", g.noun, resID, err)
	}
	return ms, next, nil
}

// holders serves the listings of everyone with a role on the resource.
// Candidates (the manual holders given, then the members of every mapped
// group) are paged by user ID and then explained; a user deleted
// meanwhile, or a group member whose groups the filter hides, has no role
// and is left out of the page. emit receives the others in ID order.
func (g apiGrants[E, R, M]) holders(ctx context.Context, resID string, manual []string, page store.ListOptions, emit func(groupgate.User, sync.Explanation)) (next string, err error) {
	ids := manual
	mappings, err := g.listMappings(ctx, resID, store.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list mappings of %s %s: %w", g.noun, resID, err)
	}
	for _, m := range mappings {
		gm, err := g.api.st.ListGroupMembers(ctx, g.group(m))
		if err != nil {
			return "", fmt.Errorf("list members of group %q: %w", g.group(m), err)
		}
		ids = append(ids, gm...)
	}
	slices.Sort(ids)
	ids, next = apiSlicePage(slices.Compact(ids), page)
	for _, id := range ids {
		e, err := g.api.syncer.Explain(ctx, id, g.kind, resID)
		if groupgate.IsCode(err, groupgate.NotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return "", err
		}
		if !g.hasRole(e) {
			continue
		}
		u, err := g.api.st.GetUser(ctx, id)
		if err != nil {
			return "", fmt.Errorf("load user %s: %w", id, err)
		}
		emit(u, e)
	}
	return next, nil
}

// apiEmpty answers a handler whose response carries nothing: err, or an
// empty Res.
func apiEmpty[Res any](err error) (*connect.Response[Res], error) {
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(new(Res)), nil
}
