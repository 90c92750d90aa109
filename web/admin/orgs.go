package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// maxHolders bounds the members a page lists (each costs a resolution).
const maxHolders = 500

type orgsData struct {
	Orgs []orgRow
}

type orgRow struct {
	Org  groupgate.Organization
	Role groupgate.OrgRole // the caller's; OWNER-like for instance admins
}

// orgs lists the organizations the caller may see: every one for instance
// admins, else those they hold a role on.
func (c *Console) orgs(w http.ResponseWriter, r *http.Request, cl *caller) error {
	d := orgsData{}
	if cl.Admin {
		all, err := c.st.ListOrganizations(r.Context(), store.ListOptions{})
		if err != nil {
			return fmt.Errorf("list organizations: %w", err)
		}
		for _, o := range all {
			d.Orgs = append(d.Orgs, orgRow{Org: o, Role: cl.Access.OrgRole(o.ID)})
		}
	} else {
		for _, oa := range cl.Access.Orgs {
			d.Orgs = append(d.Orgs, orgRow{Org: groupgate.Organization{ID: oa.OrganizationID, Name: oa.OrganizationName}, Role: oa.Role})
		}
	}
	c.render(w, r, http.StatusOK, "orgs", view{Title: "Organizations", Nav: "orgs", Caller: cl, Notice: noticeOf(r), Data: d})
	return nil
}

// createOrg is for instance admins, as in the API; the creator becomes
// OWNER.
func (c *Console) createOrg(w http.ResponseWriter, r *http.Request, cl *caller) error {
	if !cl.Admin {
		return groupgate.Errorf(groupgate.Forbidden, "only instance admins may create organizations")
	}
	o, err := c.syncer.CreateOrganization(r.Context(), cl.actor(), strings.TrimSpace(r.PostForm.Get("name")), cl.User.ID)
	if err != nil {
		return err
	}
	return c.seeOther(w, r, orgPath(o.Name), "org-created")
}

func orgPath(name string) string { return "/admin/orgs/" + url.PathEscape(name) }

func repoPath(r groupgate.Repository) string {
	return orgPath(r.OrganizationName) + "/repos/" + url.PathEscape(r.Name)
}

// loadOrg finds the organization of the URL and checks the caller may see
// it (admin: may change it). A hidden organization is NotFound, as if it
// did not exist, so that its name is not confirmed to outsiders.
func (c *Console) loadOrg(r *http.Request, cl *caller, admin bool) (groupgate.Organization, error) {
	name := r.PathValue("org")
	o, err := c.st.GetOrganizationByName(r.Context(), name)
	if err != nil {
		return o, fmt.Errorf("load organization %q: %w", name, err)
	}
	if !cl.canViewOrg(o.ID) {
		return o, groupgate.Errorf(groupgate.NotFound, "no organization %q that you may see", name)
	}
	if admin && !cl.canAdminOrg(o.ID) {
		return o, groupgate.Errorf(groupgate.Forbidden, "you need the ADMIN or OWNER role on organization %q", o.Name)
	}
	return o, nil
}

// member is one user holding a role, with every source.
type member struct {
	User        groupgate.User
	Explanation sync.Explanation
}

type mappingRow struct {
	Group     string
	Override  string
	Effective string
}

type orgData struct {
	Org      groupgate.Organization
	CanAdmin bool
	Mappings []mappingRow
	Members  []member
	// Truncated: more users than maxHolders may hold a role; only the
	// first are listed.
	Truncated bool
	Repos     []groupgate.Repository
	OrgRoles  []string
	// RepoRoles are the choices of the base role.
	RepoRoles []string
}

// orgOverrides are the choices of an organization mapping's override;
// "" is the default (MEMBER).
var orgOverrides = []string{"", "ADMIN", "WRITER", "MACHINE", "MEMBER"}

// repoOverrides: "" follows the organization's base role (READ without).
var repoOverrides = []string{"", "ADMIN", "WRITE", "LIMITED_WRITE", "READ"}

// org is one organization: its mappings, members with every source, base
// repository role and repositories.
func (c *Console) org(w http.ResponseWriter, r *http.Request, cl *caller) error {
	o, err := c.loadOrg(r, cl, false)
	if err != nil {
		return err
	}
	ctx := r.Context()
	d := orgData{Org: o, CanAdmin: cl.canAdminOrg(o.ID), OrgRoles: orgOverrides, RepoRoles: repoOverrides}
	ms, err := c.st.ListOrgMappings(ctx, o.ID, store.ListOptions{})
	if err != nil {
		return fmt.Errorf("list mappings of %s: %w", o.ID, err)
	}
	var groups []string
	for _, m := range ms {
		groups = append(groups, m.Group)
		d.Mappings = append(d.Mappings, mappingRow{Group: m.Group, Override: string(m.RoleOverride), Effective: string(sync.OrgMappingRole(m))})
	}
	manual, err := c.st.ListOrgMembers(ctx, o.ID)
	if err != nil {
		return fmt.Errorf("list members of %s: %w", o.ID, err)
	}
	var ids []string
	for _, m := range manual {
		ids = append(ids, m.UserID)
	}
	d.Members, d.Truncated, err = c.holders(ctx, sync.ResourceOrg, o.ID, ids, groups, func(e sync.Explanation) bool { return e.OrgRole != "" })
	if err != nil {
		return err
	}
	repos, err := c.st.ListRepositories(ctx, o.ID, store.ListOptions{})
	if err != nil {
		return fmt.Errorf("list repositories of %s: %w", o.ID, err)
	}
	d.Repos = repos
	c.render(w, r, http.StatusOK, "org", view{Title: "Organization " + o.Name, Nav: "orgs", Caller: cl, Notice: noticeOf(r), Data: d})
	return nil
}

// holders are the users holding a role on the resource: those given one
// by hand and the members of its mapped groups, each explained.
// Past maxHolders candidates it stops; truncated then says so.
func (c *Console) holders(ctx context.Context, kind sync.ResourceKind, id string, ids, groups []string, has func(sync.Explanation) bool) (out []member, truncated bool, err error) {
	for _, g := range groups {
		gm, err := c.st.ListGroupMembers(ctx, g)
		if err != nil {
			return nil, false, fmt.Errorf("list members of group %q: %w", g, err)
		}
		ids = append(ids, gm...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > maxHolders {
		ids, truncated = ids[:maxHolders], true
	}
	for _, uid := range ids {
		e, err := c.syncer.Explain(ctx, uid, kind, id)
		if groupgate.IsCode(err, groupgate.NotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, false, err
		}
		if !has(e) {
			continue
		}
		u, err := c.st.GetUser(ctx, uid)
		if err != nil {
			return nil, false, fmt.Errorf("load user %s: %w", uid, err)
		}
		out = append(out, member{User: u, Explanation: e})
	}
	return out, truncated, nil
}

// setBaseRole changes the organization's repository base role.
func (c *Console) setBaseRole(w http.ResponseWriter, r *http.Request, cl *caller) error {
	o, err := c.loadOrg(r, cl, true)
	if err != nil {
		return err
	}
	role := groupgate.RepoRole(r.PostForm.Get("role"))
	if err := c.syncer.SetOrgRepositoryBaseRole(r.Context(), cl.actor(), o.ID, role); err != nil {
		return err
	}
	return c.seeOther(w, r, orgPath(o.Name), "base-role")
}

// findUser finds a user by user name, else by email.
func (c *Console) findUser(ctx context.Context, who string) (groupgate.User, error) {
	who = strings.TrimSpace(who)
	if who == "" {
		return groupgate.User{}, groupgate.Errorf(groupgate.Invalid, "name a user by user name or email")
	}
	u, err := c.st.GetUserByUserName(ctx, who)
	if groupgate.IsCode(err, groupgate.NotFound) {
		u, err = store.UserByEmail(ctx, c.st, who)
	}
	if groupgate.IsCode(err, groupgate.NotFound) {
		return u, groupgate.Errorf(groupgate.NotFound, "no user %q", who)
	}
	return u, err
}

// setOrgMember gives or removes a manual organization role.
func (c *Console) setOrgMember(w http.ResponseWriter, r *http.Request, cl *caller) error {
	o, err := c.loadOrg(r, cl, true)
	if err != nil {
		return err
	}
	u, err := c.findUser(r.Context(), r.PostForm.Get("user"))
	if err != nil {
		return err
	}
	role := groupgate.OrgRole(r.PostForm.Get("role"))
	// As the API: nobody touches a manual role above their own.
	touched := []groupgate.OrgRole{role}
	old, err := c.st.GetOrgMember(r.Context(), o.ID, u.ID)
	switch {
	case err == nil:
		touched = append(touched, old.Role)
	case !groupgate.IsCode(err, groupgate.NotFound):
		return fmt.Errorf("load role of %s on organization %s: %w", u.ID, o.ID, err)
	case role == "":
		return groupgate.Errorf(groupgate.NotFound, "%s has no role given by hand on %q", u.UserName, o.Name)
	}
	own := cl.Access.OrgRole(o.ID)
	if cl.Admin {
		own = groupgate.OrgRoleOwner
	}
	if !sync.MayChangeOrgMember(own, touched...) {
		return groupgate.Errorf(groupgate.Forbidden, "you cannot grant or change a role above your own (%s)", strings.ToLower(string(own)))
	}
	if role == "" {
		if err := c.syncer.RemoveOrgMember(r.Context(), cl.actor(), o.ID, u.ID); err != nil {
			return err
		}
		return c.seeOther(w, r, orgPath(o.Name), "member-removed")
	}
	if _, err := c.syncer.SetOrgMember(r.Context(), cl.actor(), o.ID, u.ID, role); err != nil {
		return err
	}
	return c.seeOther(w, r, orgPath(o.Name), "member-set")
}

// createRepo creates a repository of the organization (organization
// admins, as in the API).
func (c *Console) createRepo(w http.ResponseWriter, r *http.Request, cl *caller) error {
	o, err := c.loadOrg(r, cl, true)
	if err != nil {
		return err
	}
	vis := groupgate.VisibilityPrivate
	if r.PostForm.Get("visibility") == string(groupgate.VisibilityPublic) {
		vis = groupgate.VisibilityPublic
	}
	repo, err := c.syncer.CreateRepository(r.Context(), cl.actor(), groupgate.Repository{
		OrganizationID: o.ID, OrganizationName: o.Name, Name: strings.TrimSpace(r.PostForm.Get("name")), Visibility: vis})
	if err != nil {
		return err
	}
	return c.seeOther(w, r, repoPath(repo), "repo-created")
}
