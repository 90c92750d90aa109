package sync

import (
	"context"
	"fmt"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Audit actions written by the mapping operations.
const (
	ActionOrgMappingAdd     = "org_mapping.add"
	ActionOrgMappingUpdate  = "org_mapping.update"
	ActionOrgMappingRemove  = "org_mapping.remove"
	ActionRepoMappingAdd    = "repo_mapping.add"
	ActionRepoMappingUpdate = "repo_mapping.update"
	ActionRepoMappingRemove = "repo_mapping.remove"
)

// AddOrgMapping maps group to a role on the organization (MEMBER when
// override is ""). Invalid for a bad group name or override,
// FailedPrecondition for a group the filter excludes, NotFound for an
// unknown organization. Adding a mapping that already exists with the same
// effective override is a no-op that succeeds (the BSR marks
// AddOrganizationGroup IDEMPOTENT: a retry after a lost response must not
// fail) and returns the existing mapping; Conflict, naming the existing
// override, when the group is mapped with another one (changing it is
// UpdateOrgMapping's job).
func (s *Syncer) AddOrgMapping(ctx context.Context, actor, orgID, group string, override groupgate.OrgRole) (groupgate.OrgMapping, error) {
	return orgMappings().add(ctx, s, actor, orgID, group, override)
}

// UpdateOrgMapping changes the role an existing mapping grants; "" goes
// back to the default. NotFound when the organization does not map group.
func (s *Syncer) UpdateOrgMapping(ctx context.Context, actor, orgID, group string, override groupgate.OrgRole) (groupgate.OrgMapping, error) {
	return orgMappings().update(ctx, s, actor, orgID, group, override)
}

// RemoveOrgMapping removes the mapping and, at once, the role it granted;
// the members' other sources stay. Removing a mapping that does not exist
// (on an organization that does) is a no-op that succeeds, so that a
// retried remove does not fail; the zero mapping is returned then. Invalid
// for a malformed group name. The group filter is not checked, so that
// mappings made before a filter change can still be cleaned up.
func (s *Syncer) RemoveOrgMapping(ctx context.Context, actor, orgID, group string) (groupgate.OrgMapping, error) {
	return orgMappings().remove(ctx, s, actor, orgID, group)
}

// AddRepoMapping maps group to a role on the repository (READ when override
// is ""). Errors and idempotency as AddOrgMapping; OWNER is Invalid.
func (s *Syncer) AddRepoMapping(ctx context.Context, actor, repoID, group string, override groupgate.RepoRole) (groupgate.RepoMapping, error) {
	return repoMappings().add(ctx, s, actor, repoID, group, override)
}

// UpdateRepoMapping changes the role an existing repository mapping grants.
func (s *Syncer) UpdateRepoMapping(ctx context.Context, actor, repoID, group string, override groupgate.RepoRole) (groupgate.RepoMapping, error) {
	return repoMappings().update(ctx, s, actor, repoID, group, override)
}

// RemoveRepoMapping removes the repository mapping and the role it granted;
// idempotent as RemoveOrgMapping.
func (s *Syncer) RemoveRepoMapping(ctx context.Context, actor, repoID, group string) (groupgate.RepoMapping, error) {
	return repoMappings().remove(ctx, s, actor, repoID, group)
}

// mappingKind is what differs between organization and repository
// mappings; add, update and remove are written once over it. The store
// methods are method expressions, so that they run on the transaction.
type mappingKind[M any, R ~string] struct {
	noun                                  string // "organization" or "repository": messages and audit target type
	addAction, updateAction, removeAction string
	validate                              func(R) error // the role override; repositories refuse OWNER here
	effective                             func(R) R     // the override as granted: what an idempotent add compares
	override                              func(M) R
	loadParent                            func(ctx context.Context, st store.Store, id string) error
	newMapping                            func(id, group string, override R) M
	setOverride                           func(m *M, override R)
	view                                  func(M) any
	storeAdd                              func(store.Store, context.Context, M) (M, error)
	storeGet, storeRemove                 func(st store.Store, ctx context.Context, id, group string) (M, error)
	storeUpdate                           func(st store.Store, ctx context.Context, id, group string, fn func(*M) error) (M, error)
}

// orgMappings and repoMappings build the per-kind tables on each call
// rather than living in package variables, which anything could reassign.
func orgMappings() mappingKind[groupgate.OrgMapping, groupgate.OrgRole] {
	return mappingKind[groupgate.OrgMapping, groupgate.OrgRole]{
		noun:      "organization",
		addAction: ActionOrgMappingAdd, updateAction: ActionOrgMappingUpdate, removeAction: ActionOrgMappingRemove,
		validate: ValidateOrgOverride,
		// An unset organization override grants MEMBER, so the two are
		// the same mapping.
		effective: func(r groupgate.OrgRole) groupgate.OrgRole {
			if r == groupgate.OrgRoleUnspecified {
				return groupgate.OrgRoleMember
			}
			return r
		},
		override: func(m groupgate.OrgMapping) groupgate.OrgRole { return m.RoleOverride },
		loadParent: func(ctx context.Context, st store.Store, id string) error {
			_, err := st.GetOrganization(ctx, id)
			return err
		},
		newMapping: func(id, group string, r groupgate.OrgRole) groupgate.OrgMapping {
			return groupgate.OrgMapping{OrganizationID: id, Group: group, RoleOverride: r}
		},
		setOverride: func(m *groupgate.OrgMapping, r groupgate.OrgRole) { m.RoleOverride = r },
		view:        func(m groupgate.OrgMapping) any { return viewOrgMapping(m) },
		storeAdd:    store.Store.AddOrgMapping,
		storeGet:    store.Store.GetOrgMapping,
		storeRemove: store.Store.RemoveOrgMapping,
		storeUpdate: store.Store.UpdateOrgMapping,
	}
}

func repoMappings() mappingKind[groupgate.RepoMapping, groupgate.RepoRole] {
	return mappingKind[groupgate.RepoMapping, groupgate.RepoRole]{
		noun:      "repository",
		addAction: ActionRepoMappingAdd, updateAction: ActionRepoMappingUpdate, removeAction: ActionRepoMappingRemove,
		validate: ValidateRepoOverride,
		// An unset repository override follows the organization's base
		// repository role, which may change: it is not the same as an
		// explicit READ, so only identical overrides are the same.
		effective: func(r groupgate.RepoRole) groupgate.RepoRole { return r },
		override:  func(m groupgate.RepoMapping) groupgate.RepoRole { return m.RoleOverride },
		loadParent: func(ctx context.Context, st store.Store, id string) error {
			_, err := st.GetRepository(ctx, id)
			return err
		},
		newMapping: func(id, group string, r groupgate.RepoRole) groupgate.RepoMapping {
			return groupgate.RepoMapping{RepositoryID: id, Group: group, RoleOverride: r}
		},
		setOverride: func(m *groupgate.RepoMapping, r groupgate.RepoRole) { m.RoleOverride = r },
		view:        func(m groupgate.RepoMapping) any { return viewRepoMapping(m) },
		storeAdd:    store.Store.AddRepoMapping,
		storeGet:    store.Store.GetRepoMapping,
		storeRemove: store.Store.RemoveRepoMapping,
		storeUpdate: store.Store.UpdateRepoMapping,
	}
}

// add: see AddOrgMapping.
func (k mappingKind[M, R]) add(ctx context.Context, s *Syncer, actor, id, group string, override R) (M, error) {
	var out M
	if err := s.checkGroup(group); err != nil {
		return out, err
	}
	if err := k.validate(override); err != nil {
		return out, err
	}
	err := s.commitGrant(ctx, k.change(actor, k.addAction, id, group), func(tx store.Store) (before, after any, err error) {
		existing, found, err := k.lookup(ctx, tx, id, group)
		if err != nil {
			return nil, nil, err
		}
		if found {
			out = existing
			return nil, nil, k.sameOverride(existing, group, override)
		}
		if out, err = k.storeAdd(tx, ctx, k.newMapping(id, group, override)); err != nil {
			// A concurrent identical add (a retry sent while the first
			// call was in flight) committed between the lookup and the
			// insert; the store ran the insert in a savepoint, so the
			// row it lost to can be read here.
			if groupgate.IsCode(err, groupgate.Conflict) {
				if existing, found, lerr := k.lookup(ctx, tx, id, group); lerr == nil && found {
					out = existing
					return nil, nil, k.sameOverride(existing, group, override)
				}
			}
			return nil, nil, fmt.Errorf("add mapping of group %q to %s %s: %w", group, k.noun, id, err)
		}
		return nil, k.view(out), nil
	})
	return k.result(out, err)
}

// sameOverride is errUnchanged when existing grants override, and
// Conflict naming existing's override otherwise.
func (k mappingKind[M, R]) sameOverride(existing M, group string, override R) error {
	if k.effective(k.override(existing)) != k.effective(override) {
		return groupgate.Errorf(groupgate.Conflict,
			"%s already maps group %q with role override %s; update the mapping to change it",
			k.noun, group, k.overrideName(existing))
	}
	return errUnchanged
}

// lookup loads the parent's mapping of group: NotFound for an unknown
// parent, found false when the parent does not map group.
func (k mappingKind[M, R]) lookup(ctx context.Context, st store.Store, id, group string) (M, bool, error) {
	var zero M
	if err := k.loadParent(ctx, st, id); err != nil {
		return zero, false, fmt.Errorf("load %s %s: %w", k.noun, id, err)
	}
	m, err := k.storeGet(st, ctx, id, group)
	switch {
	case err == nil:
		return m, true, nil
	case groupgate.IsCode(err, groupgate.NotFound):
		return zero, false, nil
	}
	return zero, false, fmt.Errorf("load mapping of group %q: %w", group, err)
}

// overrideName names a mapping's override for messages; unset is "unset".
func (k mappingKind[M, R]) overrideName(m M) string {
	if r := k.override(m); r != "" {
		return string(r)
	}
	return "unset"
}

// update: see UpdateOrgMapping.
func (k mappingKind[M, R]) update(ctx context.Context, s *Syncer, actor, id, group string, override R) (M, error) {
	var out M
	if err := s.checkGroup(group); err != nil {
		return out, err
	}
	if err := k.validate(override); err != nil {
		return out, err
	}
	err := s.commitGrant(ctx, k.change(actor, k.updateAction, id, group), func(tx store.Store) (before, after any, err error) {
		old, err := k.storeGet(tx, ctx, id, group)
		if err != nil {
			return nil, nil, fmt.Errorf("load mapping of group %q on %s %s: %w", group, k.noun, id, err)
		}
		out, err = k.storeUpdate(tx, ctx, id, group, func(m *M) error {
			k.setOverride(m, override)
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("update mapping of group %q on %s %s: %w", group, k.noun, id, err)
		}
		return k.view(old), k.view(out), nil
	})
	return k.result(out, err)
}

// remove: see RemoveOrgMapping.
func (k mappingKind[M, R]) remove(ctx context.Context, s *Syncer, actor, id, group string) (M, error) {
	var out M
	// Checked although the filter is not: with removes idempotent, a name
	// no mapping can have would otherwise "succeed" silently.
	if err := groupgate.ValidateGroupName(group); err != nil {
		return out, err
	}
	err := s.commitGrant(ctx, k.change(actor, k.removeAction, id, group), func(tx store.Store) (before, after any, err error) {
		// Looked up first, so that nothing is written when there is
		// nothing to remove.
		if _, found, err := k.lookup(ctx, tx, id, group); err != nil {
			return nil, nil, err
		} else if !found {
			return nil, nil, errUnchanged
		}
		if out, err = k.storeRemove(tx, ctx, id, group); groupgate.IsCode(err, groupgate.NotFound) {
			// A concurrent identical remove deleted it after the lookup.
			return nil, nil, errUnchanged
		} else if err != nil {
			return nil, nil, fmt.Errorf("remove mapping of group %q from %s %s: %w", group, k.noun, id, err)
		}
		return k.view(out), nil, nil
	})
	return k.result(out, err)
}

// change: a mapping change reaches the group's members.
func (k mappingKind[M, R]) change(actor, action, id, group string) grantChange {
	return grantChange{actor: actor, action: action, targetType: k.noun, targetID: id, groups: []string{group}}
}

// result drops a mapping the failed transaction may have returned.
func (k mappingKind[M, R]) result(m M, err error) (M, error) {
	if err != nil {
		var zero M
		return zero, err
	}
	return m, nil
}
