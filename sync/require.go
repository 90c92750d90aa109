package sync

import (
	"strings"

	"github.com/groupgate/groupgate"
)

// Requirement is what a route asks of a signed-in caller beyond the
// session: a role on an organization or on a repository, and/or
// membership of a group. Every part that is set must hold. Forward-auth
// (/auth?org=acme&min_role=WRITER) and reverse-proxy routes check it
// against the session's membership snapshot.
type Requirement struct {
	// Org and OrgRole: at least OrgRole on the organization named Org.
	Org     string
	OrgRole groupgate.OrgRole
	// Repo ("org/name") and RepoRole: at least RepoRole on the repository,
	// where ADMIN or OWNER of its organization counts as ADMIN.
	Repo     string
	RepoRole groupgate.RepoRole
	// Group: the caller's group set holds this name (exact, as the IdP
	// sends it).
	Group string
}

// IsZero reports whether r asks for nothing beyond a session.
func (r Requirement) IsZero() bool { return r.Org == "" && r.Repo == "" && r.Group == "" }

// ParseRequirement builds a Requirement from its four spellings, shared by
// /auth's query and the configuration's upstream_routes. minRole takes the
// BSR's enum names or their short forms (ORGANIZATION_ROLE_WRITER or
// WRITER; REPOSITORY_ROLE_READ or READ), and defaults to the lowest role
// (MEMBER, READ): any role at all. Invalid, with a message that names the
// problem, for anything else.
func ParseRequirement(org, repo, group, minRole string) (Requirement, error) {
	var req Requirement
	switch {
	case org != "" && repo != "":
		return req, groupgate.Errorf(groupgate.Invalid, "org and repo cannot be combined (min_role would be ambiguous); require the repository, or the organization")
	case minRole != "" && org == "" && repo == "":
		return req, groupgate.Errorf(groupgate.Invalid, "min_role needs org or repo")
	}
	if org != "" {
		if err := checkRequiredName("org", org); err != nil {
			return req, err
		}
		if strings.Contains(org, "/") {
			return req, groupgate.Errorf(groupgate.Invalid, "org %q must be an organization name (for a repository, use repo=org/name)", org)
		}
		req.Org, req.OrgRole = org, groupgate.OrgRoleMember
		if minRole != "" {
			r, err := ParseOrgRole(minRole)
			if err != nil {
				return Requirement{}, groupgate.WrapError(groupgate.Invalid, err, "min_role: %s", groupgate.ErrorMessageOf(err))
			}
			req.OrgRole = r
		}
	}
	if repo != "" {
		if err := checkRequiredName("repo", repo); err != nil {
			return req, err
		}
		if o, n, ok := strings.Cut(repo, "/"); !ok || o == "" || n == "" || strings.Contains(n, "/") {
			return req, groupgate.Errorf(groupgate.Invalid, "repo %q must be a full name such as acme/api", repo)
		}
		req.Repo, req.RepoRole = repo, groupgate.RepoRoleRead
		if minRole != "" {
			r, err := ParseRepoRole(minRole)
			if err != nil {
				return Requirement{}, groupgate.WrapError(groupgate.Invalid, err, "min_role: %s", groupgate.ErrorMessageOf(err))
			}
			req.RepoRole = r
		}
	}
	if group != "" {
		if err := checkRequiredName("group", group); err != nil {
			return Requirement{}, err
		}
		req.Group = group
	}
	return req, nil
}

// checkRequiredName refuses a name that no stored name can equal, so
// that a requirement that could never hold is an error rather than a
// route that silently refuses everyone.
func checkRequiredName(key, v string) error {
	if strings.TrimSpace(v) != v || len(v) > 4*groupgate.MaxNameLen {
		return groupgate.Errorf(groupgate.Invalid, "%s %q has surrounding spaces or is too long", key, v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return groupgate.Errorf(groupgate.Invalid, "%s holds a control character", key)
		}
	}
	return nil
}

// What a Shortfall is about.
const (
	NeedOrgRole  = "organization"
	NeedRepoRole = "repository"
	NeedGroup    = "group"
)

// Shortfall is the first part of a Requirement a snapshot does not meet.
type Shortfall struct {
	// Kind is NeedOrgRole, NeedRepoRole or NeedGroup.
	Kind string
	// Name is the organization, repository or group.
	Name string
	// Need is the role required and Has the role held ("" for none);
	// both empty for a group.
	Need, Has string
}

// Check reports whether the snapshot m meets r, and if not, what it
// misses. Roles compare by OrgRoleRank and RepoRoleRank. Organization and
// repository names compare without case, as the store compares them;
// group names exactly.
func (r Requirement) Check(m groupgate.Memberships) (Shortfall, bool) {
	if r.Org != "" {
		has := lookupFold(m.OrgRoles, r.Org)
		if OrgRoleRank(has) < OrgRoleRank(r.OrgRole) {
			return Shortfall{Kind: NeedOrgRole, Name: r.Org, Need: string(r.OrgRole), Has: string(has)}, false
		}
	}
	if r.Repo != "" {
		has := SnapshotRepoRole(m, canonicalRepo(m, r.Repo))
		if RepoRoleRank(has) < RepoRoleRank(r.RepoRole) {
			return Shortfall{Kind: NeedRepoRole, Name: r.Repo, Need: string(r.RepoRole), Has: string(has)}, false
		}
	}
	if r.Group != "" && !containsString(m.Groups, r.Group) {
		return Shortfall{Kind: NeedGroup, Name: r.Group}, false
	}
	return Shortfall{}, true
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// lookupFold finds name in roles, or failing that a name equal to it up
// to case.
func lookupFold[R ~string](roles map[string]R, name string) R {
	if r, ok := roles[name]; ok {
		return r
	}
	for k, r := range roles {
		if strings.EqualFold(k, name) {
			return r
		}
	}
	return ""
}

// canonicalRepo spells repo ("org/name") as the snapshot does, matching
// both parts up to case, so that SnapshotRepoRole finds the repository
// and its organization.
func canonicalRepo(m groupgate.Memberships, repo string) string {
	if _, ok := m.RepoRoles[repo]; ok {
		return repo
	}
	for k := range m.RepoRoles {
		if strings.EqualFold(k, repo) {
			return k
		}
	}
	org, name, _ := strings.Cut(repo, "/")
	for k := range m.OrgRoles {
		if strings.EqualFold(k, org) {
			return k + "/" + name
		}
	}
	return repo
}
