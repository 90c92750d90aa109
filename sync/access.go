package sync

import (
	"cmp"
	"slices"

	"github.com/groupgate/groupgate"
)

// SourceKind says where a role comes from.
type SourceKind string

const (
	// SourceManual is a role given to the user by hand.
	SourceManual SourceKind = "manual"
	// SourceGroup is a role granted by a mapping of a group the user is in.
	SourceGroup SourceKind = "group"
)

// OrgSource is one grant of a role on an organization.
type OrgSource struct {
	Kind SourceKind `json:"kind"`
	// Group and MappingID are set for SourceGroup.
	Group     string            `json:"group,omitempty"`
	MappingID string            `json:"mapping_id,omitempty"`
	Role      groupgate.OrgRole `json:"role"`
	// NoMappedGroup is set by Explain on a manual source when the user is
	// in no group mapped to the resource: nothing in the IdP backs it.
	NoMappedGroup bool `json:"no_mapped_group,omitempty"`
}

// RepoSource is one grant of a role on a repository.
type RepoSource struct {
	Kind      SourceKind         `json:"kind"`
	Group     string             `json:"group,omitempty"`
	MappingID string             `json:"mapping_id,omitempty"`
	Role      groupgate.RepoRole `json:"role"`
	// NoMappedGroup: as in OrgSource, for the repository's own mappings.
	NoMappedGroup bool `json:"no_mapped_group,omitempty"`
}

// OrgAccess is a user's effective role on one organization and every source
// of it.
type OrgAccess struct {
	OrganizationID   string            `json:"organization_id"`
	OrganizationName string            `json:"organization_name"`
	Role             groupgate.OrgRole `json:"role"`
	Sources          []OrgSource       `json:"sources"`
}

// RepoAccess is a user's effective role on one repository from the sources
// that name the repository itself (repository mappings and manual
// contributor roles) and from the organization's repository base role
// (SourceOrgBase). The ADMIN authority of organization admins is applied
// by CanAdminRepo, not listed here.
type RepoAccess struct {
	RepositoryID     string             `json:"repository_id"`
	OrganizationID   string             `json:"organization_id"`
	OrganizationName string             `json:"organization_name"`
	Name             string             `json:"name"`
	Role             groupgate.RepoRole `json:"role"`
	Sources          []RepoSource       `json:"sources"`
}

// FullName is "org/repo".
func (r RepoAccess) FullName() string { return r.OrganizationName + "/" + r.Name }

// Access is everything one user may do, with the reasons: the result of
// resolution.
type Access struct {
	UserID string `json:"user_id"`
	// Groups are the distinct names of the user's group set, sorted.
	Groups []string `json:"groups"`
	// Orgs are sorted by organization name, Repos by full name.
	Orgs  []OrgAccess  `json:"orgs"`
	Repos []RepoAccess `json:"repos"`
}

// Org returns the user's access to the organization with id.
func (a Access) Org(id string) (OrgAccess, bool) {
	for _, o := range a.Orgs {
		if o.OrganizationID == id {
			return o, true
		}
	}
	return OrgAccess{}, false
}

// Repo returns the user's direct access to the repository with id.
func (a Access) Repo(id string) (RepoAccess, bool) {
	for _, r := range a.Repos {
		if r.RepositoryID == id {
			return r, true
		}
	}
	return RepoAccess{}, false
}

// OrgRole returns the effective role on the organization, "" when none.
func (a Access) OrgRole(orgID string) groupgate.OrgRole {
	o, _ := a.Org(orgID)
	return o.Role
}

// RepoRole returns the role that authorizes actions on repo: the direct
// role, raised to ADMIN when the user administers the parent organization.
func (a Access) RepoRole(repo groupgate.Repository) groupgate.RepoRole {
	r, _ := a.Repo(repo.ID)
	if CanAdminOrg(a, repo.OrganizationID) {
		return HigherRepoRole(r.Role, groupgate.RepoRoleAdmin)
	}
	return r.Role
}

// CanAdminOrg reports whether the user is ADMIN or OWNER of the
// organization.
func CanAdminOrg(a Access, orgID string) bool {
	return OrgRoleRank(a.OrgRole(orgID)) >= OrgRoleRank(groupgate.OrgRoleAdmin)
}

// CanAdminRepo reports whether the user may administer repo: an ADMIN role
// on the repository itself, or ADMIN/OWNER on its organization, which
// implies ADMIN on every repository it owns.
func CanAdminRepo(a Access, repo groupgate.Repository) bool {
	return RepoRoleRank(a.RepoRole(repo)) >= RepoRoleRank(groupgate.RepoRoleAdmin)
}

// Memberships is the snapshot cached in the user's sessions: groups, roles
// by organization name and by repository full name. Groups is never nil so
// that an empty set is told apart from an unknown one.
func (a Access) Memberships() groupgate.Memberships {
	m := groupgate.Memberships{
		Groups:    append(make([]string, 0, len(a.Groups)), a.Groups...),
		OrgRoles:  make(map[string]groupgate.OrgRole, len(a.Orgs)),
		RepoRoles: make(map[string]groupgate.RepoRole, len(a.Repos)),
	}
	for _, o := range a.Orgs {
		m.OrgRoles[o.OrganizationName] = o.Role
	}
	for _, r := range a.Repos {
		m.RepoRoles[r.FullName()] = r.Role
	}
	return m
}

// grants is what resolution reads for one user: the group names and the
// sources that name them. It is kept apart from the store so that preview
// can change it in memory.
type grants struct {
	userID       string
	groups       []string
	orgMappings  []groupgate.OrgMapping
	repoMappings []groupgate.RepoMapping
	orgMembers   []groupgate.OrgMember
	repoContribs []groupgate.RepoContributor
}

// orgIDs and repoIDs list the resources g refers to, for name lookup.
func (g grants) resourceIDs(orgs, repos map[string]struct{}) {
	for _, m := range g.orgMappings {
		orgs[m.OrganizationID] = struct{}{}
	}
	for _, m := range g.orgMembers {
		orgs[m.OrganizationID] = struct{}{}
	}
	for _, m := range g.repoMappings {
		repos[m.RepositoryID] = struct{}{}
	}
	for _, c := range g.repoContribs {
		repos[c.RepositoryID] = struct{}{}
	}
}

// build computes Access from grants. names resolves IDs; a resource it does
// not know (deleted while we read) is left out.
func (g grants) build(names *nameSet) Access {
	a := Access{UserID: g.userID, Groups: g.groups}
	if a.Groups == nil {
		a.Groups = []string{}
	}
	orgIdx := map[string]int{}
	org := func(id string) *OrgAccess {
		if i, ok := orgIdx[id]; ok {
			return &a.Orgs[i]
		}
		name, ok := names.orgs[id]
		if !ok {
			return nil
		}
		orgIdx[id] = len(a.Orgs)
		a.Orgs = append(a.Orgs, OrgAccess{OrganizationID: id, OrganizationName: name})
		return &a.Orgs[len(a.Orgs)-1]
	}
	for _, m := range g.orgMembers {
		if o := org(m.OrganizationID); o != nil {
			o.Sources = append(o.Sources, OrgSource{Kind: SourceManual, Role: m.Role})
			o.Role = HigherOrgRole(o.Role, m.Role)
		}
	}
	for _, m := range g.orgMappings {
		if o := org(m.OrganizationID); o != nil {
			r := OrgMappingRole(m)
			o.Sources = append(o.Sources, OrgSource{Kind: SourceGroup, Group: m.Group, MappingID: m.ID, Role: r})
			o.Role = HigherOrgRole(o.Role, r)
		}
	}

	repoIdx := map[string]int{}
	repo := func(id string) *RepoAccess {
		if i, ok := repoIdx[id]; ok {
			return &a.Repos[i]
		}
		n, ok := names.repos[id]
		if !ok {
			return nil
		}
		repoIdx[id] = len(a.Repos)
		a.Repos = append(a.Repos, RepoAccess{RepositoryID: id, OrganizationID: n.orgID, OrganizationName: n.orgName, Name: n.name})
		return &a.Repos[len(a.Repos)-1]
	}
	for _, c := range g.repoContribs {
		if r := repo(c.RepositoryID); r != nil {
			r.Sources = append(r.Sources, RepoSource{Kind: SourceManual, Role: c.Role})
			r.Role = HigherRepoRole(r.Role, c.Role)
		}
	}
	for _, m := range g.repoMappings {
		if r := repo(m.RepositoryID); r != nil {
			role := RepoMappingRoleUnder(m, names.bases.role[r.OrganizationID])
			r.Sources = append(r.Sources, RepoSource{Kind: SourceGroup, Group: m.Group, MappingID: m.ID, Role: role})
			r.Role = HigherRepoRole(r.Role, role)
		}
	}

	// Every member of an organization, whatever the source of their
	// organization role, holds its base role on each of its repositories.
	for _, o := range a.Orgs {
		base := names.bases.role[o.OrganizationID]
		if o.Role == "" || base == "" {
			continue
		}
		for _, id := range names.bases.repos[o.OrganizationID] {
			if r := repo(id); r != nil {
				r.Sources = append(r.Sources, RepoSource{Kind: SourceOrgBase, Role: base})
				r.Role = HigherRepoRole(r.Role, base)
			}
		}
	}

	// Manual sources come first, then groups by name, then the base role:
	// a stable order for /whoami and for tests.
	for i := range a.Orgs {
		slices.SortStableFunc(a.Orgs[i].Sources, func(x, y OrgSource) int {
			return cmp.Or(cmp.Compare(kindOrder(x.Kind), kindOrder(y.Kind)), cmp.Compare(x.Group, y.Group))
		})
	}
	for i := range a.Repos {
		slices.SortStableFunc(a.Repos[i].Sources, func(x, y RepoSource) int {
			return cmp.Or(cmp.Compare(kindOrder(x.Kind), kindOrder(y.Kind)), cmp.Compare(x.Group, y.Group))
		})
	}
	slices.SortFunc(a.Orgs, func(x, y OrgAccess) int {
		return cmp.Or(cmp.Compare(x.OrganizationName, y.OrganizationName), cmp.Compare(x.OrganizationID, y.OrganizationID))
	})
	slices.SortFunc(a.Repos, func(x, y RepoAccess) int {
		return cmp.Or(cmp.Compare(x.OrganizationName, y.OrganizationName), cmp.Compare(x.Name, y.Name), cmp.Compare(x.RepositoryID, y.RepositoryID))
	})
	if a.Orgs == nil {
		a.Orgs = []OrgAccess{}
	}
	if a.Repos == nil {
		a.Repos = []RepoAccess{}
	}
	return a
}

func kindOrder(k SourceKind) int {
	switch k {
	case SourceManual:
		return 0
	case SourceGroup:
		return 1
	}
	return 2
}
