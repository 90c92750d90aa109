package sync

import (
	"context"
	"fmt"
	"slices"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// ActionOrgRepositoryBaseRoleSet is the audit action of
// SetOrgRepositoryBaseRole.
const ActionOrgRepositoryBaseRoleSet = "organization.repository_base_role.set"

// SourceOrgBase is the organization's repository base role, held on each
// of its repositories by every member of the organization, whatever their
// organization role and wherever it comes from (the BSR's
// repository_base_role setting).
const SourceOrgBase SourceKind = "org_base"

// RepoMappingRoleUnder is the role a repository mapping grants when the
// repository's organization has the base role base: its override, else
// the base role (the BSR: an unset override grants "the containing
// organization's base repository role"), else READ when the organization
// has none.
func RepoMappingRoleUnder(m groupgate.RepoMapping, base groupgate.RepoRole) groupgate.RepoRole {
	if m.RoleOverride == groupgate.RepoRoleUnspecified && base != groupgate.RepoRoleUnspecified {
		return base
	}
	return RepoMappingRole(m)
}

// baseRoles are the repository base roles of the organizations one
// resolution touches, and the repositories they apply to. They are read
// afresh for every resolution, never cached with the names: a base role
// changes, and repositories are created, without an ID changing.
type baseRoles struct {
	role  map[string]groupgate.RepoRole // by organization ID; absent: none
	repos map[string][]string           // repository IDs by organization ID
}

// loadBases reads the base roles of the organizations ns knows, directly or
// as the owner of a repository, and adds their repositories to ns.
func loadBases(ctx context.Context, st store.Store, ns *nameSet) error {
	return loadBasesFrom(ctx, st.ListBaseRoleRepositories, ns)
}

// prefetchedBases lists, from rows read with the grants (GetUserGrants),
// those of orgIDs: what ListBaseRoleRepositories would return, without
// its round trip.
func prefetchedBases(rows []store.BaseRoleRepository) func(context.Context, []string) ([]store.BaseRoleRepository, error) {
	return func(_ context.Context, orgIDs []string) ([]store.BaseRoleRepository, error) {
		return slices.DeleteFunc(slices.Clone(rows), func(b store.BaseRoleRepository) bool {
			_, found := slices.BinarySearch(orgIDs, b.Repository.OrganizationID)
			return !found
		}), nil
	}
}

// loadBasesFrom is loadBases with the rows listed by list, which gets the
// organization IDs sorted.
func loadBasesFrom(ctx context.Context, list func(context.Context, []string) ([]store.BaseRoleRepository, error), ns *nameSet) error {
	ids := make([]string, 0, len(ns.orgs))
	seen := map[string]struct{}{}
	add := func(id string) {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			ids = append(ids, id)
		}
	}
	for id := range ns.orgs {
		add(id)
	}
	for _, r := range ns.repos {
		add(r.orgID)
	}
	slices.Sort(ids)
	ns.bases = baseRoles{role: map[string]groupgate.RepoRole{}, repos: map[string][]string{}}
	if len(ids) == 0 {
		return nil
	}
	rows, err := list(ctx, ids)
	if err != nil {
		return fmt.Errorf("load repository base roles of %d organizations: %w", len(ids), err)
	}
	for _, b := range rows {
		r := b.Repository
		ns.bases.role[r.OrganizationID] = b.BaseRole
		ns.bases.repos[r.OrganizationID] = append(ns.bases.repos[r.OrganizationID], r.ID)
		if _, ok := ns.repos[r.ID]; !ok {
			ns.repos[r.ID] = repoName{orgID: r.OrganizationID, orgName: r.OrganizationName, name: r.Name}
		}
	}
	return nil
}

// baseRoleHolders lists who may hold a role through the organization's
// base role: its manual members, the groups mapped to it and the groups
// mapped to its repositories (whose override-less mappings grant the base
// role).
func baseRoleHolders(ctx context.Context, st store.Store, orgID string) (groups, holders []string, err error) {
	if groups, holders, err = orgGrantHolders(ctx, st, orgID); err != nil {
		return nil, nil, err
	}
	repos, err := st.ListRepositories(ctx, orgID, store.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list repositories of organization %s: %w", orgID, err)
	}
	for _, r := range repos {
		rms, err := st.ListRepoMappings(ctx, r.ID, store.ListOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("list mappings of repository %s: %w", r.ID, err)
		}
		for _, m := range rms {
			groups = append(groups, m.Group)
		}
	}
	slices.Sort(groups)
	slices.Sort(holders)
	return slices.Compact(groups), slices.Compact(holders), nil
}

type baseRoleView struct {
	OrganizationID     string             `json:"organization_id"`
	RepositoryBaseRole groupgate.RepoRole `json:"repository_base_role"`
}

// SetOrgRepositoryBaseRole changes the organization's repository base role
// in one transaction with its outbox entry and audit event, then pushes the
// new access of everyone who may hold a role through it. Unspecified
// clears it. NotFound for an unknown organization, Invalid for OWNER.
// Setting the role the organization already has changes nothing and
// writes nothing.
func (s *Syncer) SetOrgRepositoryBaseRole(ctx context.Context, actor, orgID string, role groupgate.RepoRole) error {
	if err := store.CheckRepositoryBaseRole(role); err != nil {
		return err
	}
	var (
		groups, holders []string
		entry           int64
		changed         bool
	)
	err := s.st.InTx(ctx, func(tx store.Store) error {
		o, err := tx.GetOrganization(ctx, orgID)
		if err != nil {
			return fmt.Errorf("load organization %s: %w", orgID, err)
		}
		if o.RepositoryBaseRole == role {
			return nil
		}
		if groups, holders, err = baseRoleHolders(ctx, tx, orgID); err != nil {
			return err
		}
		changed = true
		if err := tx.SetOrganizationRepositoryBaseRole(ctx, orgID, role); err != nil {
			return fmt.Errorf("set repository base role of organization %s: %w", orgID, err)
		}
		if err := s.record(ctx, tx, &entry, holders, groups); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionOrgRepositoryBaseRoleSet, "organization", orgID,
			baseRoleView{OrganizationID: orgID, RepositoryBaseRole: o.RepositoryBaseRole},
			baseRoleView{OrganizationID: orgID, RepositoryBaseRole: role})
	})
	if err != nil {
		return err
	}
	if !changed {
		return nil
	}
	s.settle(ctx, entry, func() bool { return s.syncGroupMembers(ctx, groups, holders...) })
	return nil
}

// withBaseRoleHolders adds to groups and holders those who hold a role
// through the organization's base role, when it has one: a repository
// created or deleted under it changes their access.
func withBaseRoleHolders(ctx context.Context, st store.Store, orgID string, groups, holders []string) ([]string, []string, error) {
	o, err := st.GetOrganization(ctx, orgID)
	if err != nil {
		return nil, nil, fmt.Errorf("load organization %s: %w", orgID, err)
	}
	if o.RepositoryBaseRole == groupgate.RepoRoleUnspecified {
		return groups, holders, nil
	}
	g, h, err := baseRoleHolders(ctx, st, orgID)
	if err != nil {
		return nil, nil, err
	}
	groups, holders = append(slices.Clone(groups), g...), append(slices.Clone(holders), h...)
	slices.Sort(groups)
	slices.Sort(holders)
	return slices.Compact(groups), slices.Compact(holders), nil
}
