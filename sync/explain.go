package sync

import (
	"context"
	"fmt"
	"slices"

	"github.com/groupgate/groupgate"
)

// ResourceKind names what a role applies to.
type ResourceKind string

const (
	ResourceOrg  ResourceKind = "org"
	ResourceRepo ResourceKind = "repo"
)

// Explanation says why a user holds the role they hold on one resource.
type Explanation struct {
	UserID       string       `json:"user_id"`
	Kind         ResourceKind `json:"kind"`
	ResourceID   string       `json:"resource_id"`
	ResourceName string       `json:"resource_name"`
	// OrgRole and OrgSources are the user's role on the organization: the
	// resource itself, or the parent of a repository.
	OrgRole    groupgate.OrgRole `json:"org_role,omitempty"`
	OrgSources []OrgSource       `json:"org_sources,omitempty"`
	// For a repository: the role from the repository's own sources, and
	// the role that authorizes actions, raised to ADMIN when the user
	// administers the organization.
	RepoRole           groupgate.RepoRole `json:"repo_role,omitempty"`
	RepoSources        []RepoSource       `json:"repo_sources,omitempty"`
	AuthorizedRepoRole groupgate.RepoRole `json:"authorized_repo_role,omitempty"`
}

// Explain returns the user's effective role on one organization or
// repository and every source of it. NotFound for an unknown user or
// resource, Invalid for an unknown kind.
func (s *Syncer) Explain(ctx context.Context, userID string, kind ResourceKind, resourceID string) (Explanation, error) {
	var repo groupgate.Repository
	e := Explanation{UserID: userID, Kind: kind, ResourceID: resourceID}
	switch kind {
	case ResourceOrg:
		o, err := s.st.GetOrganization(ctx, resourceID)
		if err != nil {
			return Explanation{}, fmt.Errorf("load organization %s: %w", resourceID, err)
		}
		e.ResourceName = o.Name
	case ResourceRepo:
		var err error
		if repo, err = s.st.GetRepository(ctx, resourceID); err != nil {
			return Explanation{}, fmt.Errorf("load repository %s: %w", resourceID, err)
		}
		e.ResourceName = repo.FullName()
	default:
		return Explanation{}, groupgate.Errorf(groupgate.Invalid, "unknown resource kind %q", string(kind))
	}
	a, err := s.Resolve(ctx, userID)
	if err != nil {
		return Explanation{}, err
	}
	orgID := resourceID
	if kind == ResourceRepo {
		orgID = repo.OrganizationID
		r, _ := a.Repo(resourceID)
		e.RepoRole, e.RepoSources = r.Role, flagUnbacked(r.Sources, func(s RepoSource) (bool, bool) {
			return s.Kind == SourceManual, s.Kind == SourceGroup
		}, func(s *RepoSource) { s.NoMappedGroup = true })
		e.AuthorizedRepoRole = a.RepoRole(repo)
	}
	o, _ := a.Org(orgID)
	e.OrgRole, e.OrgSources = o.Role, flagUnbacked(o.Sources, func(s OrgSource) (bool, bool) {
		return s.Kind == SourceManual, s.Kind == SourceGroup
	}, func(s *OrgSource) { s.NoMappedGroup = true })
	return e, nil
}

// flagUnbacked returns a copy of sources whose manual entries are marked
// (mark) when no entry is a group: the user is then in no group mapped to
// the resource, and the manual grant is what administrators must review,
// since leaving every IdP group does not end it.
func flagUnbacked[S any](sources []S, kind func(S) (manual, group bool), mark func(*S)) []S {
	out := slices.Clone(sources)
	for _, s := range out {
		if _, group := kind(s); group {
			return out
		}
	}
	for i := range out {
		if manual, _ := kind(out[i]); manual {
			mark(&out[i])
		}
	}
	return out
}

// MappingOp is a change PreviewMappingChange can simulate.
type MappingOp string

const (
	OpAdd    MappingOp = "add"
	OpUpdate MappingOp = "update"
	OpRemove MappingOp = "remove"
)

// ChangeKind classifies one user's role change.
type ChangeKind string

const (
	ChangeGain   ChangeKind = "gain"
	ChangeChange ChangeKind = "change"
	ChangeLose   ChangeKind = "lose"
)

// RoleChange is one user's effective role on the resource before and after
// a change; "" means no role.
type RoleChange struct {
	UserID string     `json:"user_id"`
	Before string     `json:"before"`
	After  string     `json:"after"`
	Change ChangeKind `json:"change"`
}

// Preview is what a mapping change would do.
type Preview struct {
	Kind         ResourceKind `json:"kind"`
	ResourceID   string       `json:"resource_id"`
	ResourceName string       `json:"resource_name"`
	Group        string       `json:"group"`
	Op           MappingOp    `json:"op"`
	// Changes lists users whose effective role on the resource would
	// change, by user ID; Unchanged counts the group's other members.
	Changes   []RoleChange `json:"changes"`
	Unchanged int          `json:"unchanged"`
}

// PreviewMappingChange says which members of group would gain, change or
// lose a role on the resource if the mapping change were made, without
// making it. It refuses what the real operation would refuse, with the same
// codes.
//
// It computes in memory from a plain read of the current state rather than
// running the change in a rolled-back transaction: a preview then takes no
// write lock (SQLite has one writer at a time) and cannot commit by
// mistake. Only the resource the mapping names can change, so only its
// role is compared.
func (s *Syncer) PreviewMappingChange(ctx context.Context, kind ResourceKind, resourceID, group string, op MappingOp, override string) (Preview, error) {
	p := Preview{Kind: kind, ResourceID: resourceID, Group: group, Op: op, Changes: []RoleChange{}}
	if op != OpRemove {
		if err := s.checkGroup(group); err != nil {
			return Preview{}, err
		}
	}
	var (
		orgRole  groupgate.OrgRole
		repoRole groupgate.RepoRole
		rn       repoName
	)
	switch kind {
	case ResourceOrg:
		var err error
		if orgRole, err = ParseOrgRoleOverride(override); err != nil {
			return Preview{}, err
		}
		o, err := s.st.GetOrganization(ctx, resourceID)
		if err != nil {
			return Preview{}, fmt.Errorf("load organization %s: %w", resourceID, err)
		}
		p.ResourceName = o.Name
		_, err = s.st.GetOrgMapping(ctx, resourceID, group)
		if err := checkPreviewMapping(op, group, err); err != nil {
			return Preview{}, err
		}
	case ResourceRepo:
		var err error
		if repoRole, err = ParseRepoRoleOverride(override); err != nil {
			return Preview{}, err
		}
		r, err := s.st.GetRepository(ctx, resourceID)
		if err != nil {
			return Preview{}, fmt.Errorf("load repository %s: %w", resourceID, err)
		}
		p.ResourceName = r.FullName()
		rn = repoName{orgID: r.OrganizationID, orgName: r.OrganizationName, name: r.Name}
		_, err = s.st.GetRepoMapping(ctx, resourceID, group)
		if err := checkPreviewMapping(op, group, err); err != nil {
			return Preview{}, err
		}
	default:
		return Preview{}, groupgate.Errorf(groupgate.Invalid, "unknown resource kind %q", string(kind))
	}

	members, err := s.st.ListGroupMembers(ctx, group)
	if err != nil {
		return Preview{}, fmt.Errorf("list members of group %q: %w", group, err)
	}
	for chunk := range slices.Chunk(members, resolveChunk) {
		gs, err := s.loadGrantsMany(ctx, s.st, chunk)
		if err != nil {
			return Preview{}, err
		}
		ns, err := s.namesFor(ctx, s.st, gs...)
		if err != nil {
			return Preview{}, err
		}
		// The mapping may name a resource none of these users has a role
		// on yet.
		if kind == ResourceOrg {
			ns.orgs[resourceID] = p.ResourceName
		} else {
			ns.repos[resourceID] = rn
		}
		// The resource's organization decides what an override-less
		// repository mapping grants: read its base role too.
		if err := loadBases(ctx, s.st, ns); err != nil {
			return Preview{}, err
		}
		for _, g := range gs {
			if !slices.Contains(g.groups, group) {
				continue // the filter hides the group from this user
			}
			before, after := g.build(ns), g.apply(kind, resourceID, group, op, orgRole, repoRole).build(ns)
			var b, a string
			if kind == ResourceOrg {
				b, a = string(before.OrgRole(resourceID)), string(after.OrgRole(resourceID))
			} else {
				br, _ := before.Repo(resourceID)
				ar, _ := after.Repo(resourceID)
				b, a = string(br.Role), string(ar.Role)
			}
			switch {
			case b == a:
				p.Unchanged++
			case b == "":
				p.Changes = append(p.Changes, RoleChange{UserID: g.userID, Before: b, After: a, Change: ChangeGain})
			case a == "":
				p.Changes = append(p.Changes, RoleChange{UserID: g.userID, Before: b, After: a, Change: ChangeLose})
			default:
				p.Changes = append(p.Changes, RoleChange{UserID: g.userID, Before: b, After: a, Change: ChangeChange})
			}
		}
	}
	return p, nil
}

// checkPreviewMapping refuses what the real operation would: adding an
// existing mapping, changing or removing a missing one.
func checkPreviewMapping(op MappingOp, group string, getErr error) error {
	exists := getErr == nil
	if getErr != nil && !groupgate.IsCode(getErr, groupgate.NotFound) {
		return fmt.Errorf("load mapping of group %q: %w", group, getErr)
	}
	switch op {
	case OpAdd:
		if exists {
			return groupgate.Errorf(groupgate.Conflict, "group %q is already mapped", group)
		}
	case OpUpdate, OpRemove:
		if !exists {
			return groupgate.Errorf(groupgate.NotFound, "group %q is not mapped", group)
		}
	default:
		return groupgate.Errorf(groupgate.Invalid, "unknown mapping operation %q", string(op))
	}
	return nil
}

// apply returns a copy of g with the mapping change made.
func (g grants) apply(kind ResourceKind, resourceID, group string, op MappingOp, orgRole groupgate.OrgRole, repoRole groupgate.RepoRole) grants {
	if kind == ResourceOrg {
		oms := slices.DeleteFunc(slices.Clone(g.orgMappings), func(m groupgate.OrgMapping) bool {
			return m.OrganizationID == resourceID && m.Group == group
		})
		if op != OpRemove {
			oms = append(oms, groupgate.OrgMapping{OrganizationID: resourceID, Group: group, RoleOverride: orgRole})
		}
		g.orgMappings = oms
		return g
	}
	rms := slices.DeleteFunc(slices.Clone(g.repoMappings), func(m groupgate.RepoMapping) bool {
		return m.RepositoryID == resourceID && m.Group == group
	})
	if op != OpRemove {
		rms = append(rms, groupgate.RepoMapping{RepositoryID: resourceID, Group: group, RoleOverride: repoRole})
	}
	g.repoMappings = rms
	return g
}
