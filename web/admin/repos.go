package admin

import (
	"fmt"
	"net/http"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// loadRepo finds the repository of the URL and checks the caller may see
// it (admin: may change it); a hidden one is NotFound.
func (c *Console) loadRepo(r *http.Request, cl *caller, admin bool) (groupgate.Repository, error) {
	org, name := r.PathValue("org"), r.PathValue("repo")
	repo, err := c.st.GetRepositoryByFullName(r.Context(), org, name)
	if err != nil {
		return repo, fmt.Errorf("load repository %s/%s: %w", org, name, err)
	}
	if !cl.canViewRepo(repo) {
		return repo, groupgate.Errorf(groupgate.NotFound, "no repository %q that you may see", org+"/"+name)
	}
	if admin && !cl.canAdminRepo(repo) {
		return repo, groupgate.Errorf(groupgate.Forbidden, "you need the ADMIN role on repository %q", repo.FullName())
	}
	return repo, nil
}

type repoData struct {
	Repo      groupgate.Repository
	BaseRole  groupgate.RepoRole
	CanAdmin  bool
	Mappings  []mappingRow
	Members   []member
	Truncated bool
	RepoRoles []string
}

// repo is one repository: its mappings and everyone holding a role on
// it, with every source.
func (c *Console) repo(w http.ResponseWriter, r *http.Request, cl *caller) error {
	repo, err := c.loadRepo(r, cl, false)
	if err != nil {
		return err
	}
	ctx := r.Context()
	o, err := c.st.GetOrganization(ctx, repo.OrganizationID)
	if err != nil {
		return fmt.Errorf("load organization %s: %w", repo.OrganizationID, err)
	}
	d := repoData{Repo: repo, BaseRole: o.RepositoryBaseRole, CanAdmin: cl.canAdminRepo(repo), RepoRoles: repoOverrides}
	ms, err := c.st.ListRepoMappings(ctx, repo.ID, store.ListOptions{})
	if err != nil {
		return fmt.Errorf("list mappings of %s: %w", repo.ID, err)
	}
	var groups []string
	for _, m := range ms {
		groups = append(groups, m.Group)
		d.Mappings = append(d.Mappings, mappingRow{Group: m.Group, Override: string(m.RoleOverride),
			Effective: string(sync.RepoMappingRoleUnder(m, o.RepositoryBaseRole))})
	}
	contributors, err := c.st.ListRepoContributors(ctx, repo.ID)
	if err != nil {
		return fmt.Errorf("list contributors of %s: %w", repo.ID, err)
	}
	var ids []string
	for _, m := range contributors {
		ids = append(ids, m.UserID)
	}
	if o.RepositoryBaseRole != "" {
		// Every organization member holds the base role here.
		manual, err := c.st.ListOrgMembers(ctx, o.ID)
		if err != nil {
			return fmt.Errorf("list members of %s: %w", o.ID, err)
		}
		for _, m := range manual {
			ids = append(ids, m.UserID)
		}
		oms, err := c.st.ListOrgMappings(ctx, o.ID, store.ListOptions{})
		if err != nil {
			return fmt.Errorf("list mappings of %s: %w", o.ID, err)
		}
		for _, m := range oms {
			groups = append(groups, m.Group)
		}
	}
	d.Members, d.Truncated, err = c.holders(ctx, sync.ResourceRepo, repo.ID, ids, groups, func(e sync.Explanation) bool { return e.RepoRole != "" })
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "repo", view{Title: "Repository " + repo.FullName(), Nav: "orgs", Caller: cl, Notice: noticeOf(r), Data: d})
	return nil
}

func (c *Console) repoTarget(r *http.Request, cl *caller) (mappingTarget, error) {
	repo, err := c.loadRepo(r, cl, true)
	if err != nil {
		return mappingTarget{}, err
	}
	return mappingTarget{Kind: sync.ResourceRepo, ID: repo.ID, Name: repo.FullName(), Path: repoPath(repo)}, nil
}

func (c *Console) previewRepoMapping(w http.ResponseWriter, r *http.Request, cl *caller) error {
	t, err := c.repoTarget(r, cl)
	if err != nil {
		return err
	}
	return c.preview(w, r, cl, t)
}

func (c *Console) applyRepoMapping(w http.ResponseWriter, r *http.Request, cl *caller) error {
	t, err := c.repoTarget(r, cl)
	if err != nil {
		return err
	}
	return c.apply(w, r, cl, t)
}

// setContributor gives or removes a manual repository role.
func (c *Console) setContributor(w http.ResponseWriter, r *http.Request, cl *caller) error {
	repo, err := c.loadRepo(r, cl, true)
	if err != nil {
		return err
	}
	u, err := c.findUser(r.Context(), r.PostForm.Get("user"))
	if err != nil {
		return err
	}
	role := groupgate.RepoRole(r.PostForm.Get("role"))
	if role == "" {
		if err := c.syncer.RemoveRepoContributor(r.Context(), cl.actor(), repo.ID, u.ID); err != nil {
			return err
		}
		return c.seeOther(w, r, repoPath(repo), "contributor-gone")
	}
	if _, err := c.syncer.SetRepoContributor(r.Context(), cl.actor(), repo.ID, u.ID, role); err != nil {
		return err
	}
	return c.seeOther(w, r, repoPath(repo), "contributor-set")
}
