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
// unknown organization, Conflict when the group is already mapped.
func (s *Syncer) AddOrgMapping(ctx context.Context, actor, orgID, group string, override groupgate.OrgRole) (groupgate.OrgMapping, error) {
	if err := s.checkGroup(group); err != nil {
		return groupgate.OrgMapping{}, err
	}
	if err := ValidateOrgOverride(override); err != nil {
		return groupgate.OrgMapping{}, err
	}
	var out groupgate.OrgMapping
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		if err := checkOrgMappingAbsent(ctx, tx, orgID, group); err != nil {
			return err
		}
		m, err := tx.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: orgID, Group: group, RoleOverride: override})
		if err != nil {
			return fmt.Errorf("add mapping of group %q to organization %s: %w", group, orgID, err)
		}
		out = m
		if err := s.record(ctx, tx, &entry, nil, []string{group}); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionOrgMappingAdd, "organization", orgID, nil, viewOrgMapping(m))
	})
	if err != nil {
		return groupgate.OrgMapping{}, err
	}
	s.settle(ctx, entry, func() bool { return s.syncGroupMembers(ctx, []string{group}) })
	return out, nil
}

func checkOrgMappingAbsent(ctx context.Context, st store.Store, orgID, group string) error {
	if _, err := st.GetOrganization(ctx, orgID); err != nil {
		return fmt.Errorf("load organization %s: %w", orgID, err)
	}
	_, err := st.GetOrgMapping(ctx, orgID, group)
	switch {
	case err == nil:
		return groupgate.Errorf(groupgate.Conflict, "organization already maps group %q", group)
	case !groupgate.IsCode(err, groupgate.NotFound):
		return fmt.Errorf("load mapping of group %q: %w", group, err)
	}
	return nil
}

// UpdateOrgMapping changes the role an existing mapping grants; "" goes
// back to the default. NotFound when the organization does not map group.
func (s *Syncer) UpdateOrgMapping(ctx context.Context, actor, orgID, group string, override groupgate.OrgRole) (groupgate.OrgMapping, error) {
	if err := s.checkGroup(group); err != nil {
		return groupgate.OrgMapping{}, err
	}
	if err := ValidateOrgOverride(override); err != nil {
		return groupgate.OrgMapping{}, err
	}
	var out groupgate.OrgMapping
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		before, err := tx.GetOrgMapping(ctx, orgID, group)
		if err != nil {
			return fmt.Errorf("load mapping of group %q on organization %s: %w", group, orgID, err)
		}
		m, err := tx.UpdateOrgMapping(ctx, orgID, group, func(m *groupgate.OrgMapping) error {
			m.RoleOverride = override
			return nil
		})
		if err != nil {
			return fmt.Errorf("update mapping of group %q on organization %s: %w", group, orgID, err)
		}
		out = m
		if err := s.record(ctx, tx, &entry, nil, []string{group}); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionOrgMappingUpdate, "organization", orgID, viewOrgMapping(before), viewOrgMapping(m))
	})
	if err != nil {
		return groupgate.OrgMapping{}, err
	}
	s.settle(ctx, entry, func() bool { return s.syncGroupMembers(ctx, []string{group}) })
	return out, nil
}

// RemoveOrgMapping removes the mapping and, at once, the role it granted;
// the members' other sources stay. NotFound when absent. The group filter
// is not checked, so that mappings made before a filter change can still
// be cleaned up.
func (s *Syncer) RemoveOrgMapping(ctx context.Context, actor, orgID, group string) (groupgate.OrgMapping, error) {
	var out groupgate.OrgMapping
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		m, err := tx.RemoveOrgMapping(ctx, orgID, group)
		if err != nil {
			return fmt.Errorf("remove mapping of group %q from organization %s: %w", group, orgID, err)
		}
		out = m
		if err := s.record(ctx, tx, &entry, nil, []string{group}); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionOrgMappingRemove, "organization", orgID, viewOrgMapping(m), nil)
	})
	if err != nil {
		return groupgate.OrgMapping{}, err
	}
	s.settle(ctx, entry, func() bool { return s.syncGroupMembers(ctx, []string{group}) })
	return out, nil
}

// AddRepoMapping maps group to a role on the repository (READ when override
// is ""). Errors as AddOrgMapping; OWNER is Invalid.
func (s *Syncer) AddRepoMapping(ctx context.Context, actor, repoID, group string, override groupgate.RepoRole) (groupgate.RepoMapping, error) {
	if err := s.checkGroup(group); err != nil {
		return groupgate.RepoMapping{}, err
	}
	if err := ValidateRepoOverride(override); err != nil {
		return groupgate.RepoMapping{}, err
	}
	var out groupgate.RepoMapping
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		if err := checkRepoMappingAbsent(ctx, tx, repoID, group); err != nil {
			return err
		}
		m, err := tx.AddRepoMapping(ctx, groupgate.RepoMapping{RepositoryID: repoID, Group: group, RoleOverride: override})
		if err != nil {
			return fmt.Errorf("add mapping of group %q to repository %s: %w", group, repoID, err)
		}
		out = m
		if err := s.record(ctx, tx, &entry, nil, []string{group}); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionRepoMappingAdd, "repository", repoID, nil, viewRepoMapping(m))
	})
	if err != nil {
		return groupgate.RepoMapping{}, err
	}
	s.settle(ctx, entry, func() bool { return s.syncGroupMembers(ctx, []string{group}) })
	return out, nil
}

func checkRepoMappingAbsent(ctx context.Context, st store.Store, repoID, group string) error {
	if _, err := st.GetRepository(ctx, repoID); err != nil {
		return fmt.Errorf("load repository %s: %w", repoID, err)
	}
	_, err := st.GetRepoMapping(ctx, repoID, group)
	switch {
	case err == nil:
		return groupgate.Errorf(groupgate.Conflict, "repository already maps group %q", group)
	case !groupgate.IsCode(err, groupgate.NotFound):
		return fmt.Errorf("load mapping of group %q: %w", group, err)
	}
	return nil
}

// UpdateRepoMapping changes the role an existing repository mapping grants.
func (s *Syncer) UpdateRepoMapping(ctx context.Context, actor, repoID, group string, override groupgate.RepoRole) (groupgate.RepoMapping, error) {
	if err := s.checkGroup(group); err != nil {
		return groupgate.RepoMapping{}, err
	}
	if err := ValidateRepoOverride(override); err != nil {
		return groupgate.RepoMapping{}, err
	}
	var out groupgate.RepoMapping
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		before, err := tx.GetRepoMapping(ctx, repoID, group)
		if err != nil {
			return fmt.Errorf("load mapping of group %q on repository %s: %w", group, repoID, err)
		}
		m, err := tx.UpdateRepoMapping(ctx, repoID, group, func(m *groupgate.RepoMapping) error {
			m.RoleOverride = override
			return nil
		})
		if err != nil {
			return fmt.Errorf("update mapping of group %q on repository %s: %w", group, repoID, err)
		}
		out = m
		if err := s.record(ctx, tx, &entry, nil, []string{group}); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionRepoMappingUpdate, "repository", repoID, viewRepoMapping(before), viewRepoMapping(m))
	})
	if err != nil {
		return groupgate.RepoMapping{}, err
	}
	s.settle(ctx, entry, func() bool { return s.syncGroupMembers(ctx, []string{group}) })
	return out, nil
}

// RemoveRepoMapping removes the repository mapping and the role it granted.
func (s *Syncer) RemoveRepoMapping(ctx context.Context, actor, repoID, group string) (groupgate.RepoMapping, error) {
	var out groupgate.RepoMapping
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		m, err := tx.RemoveRepoMapping(ctx, repoID, group)
		if err != nil {
			return fmt.Errorf("remove mapping of group %q from repository %s: %w", group, repoID, err)
		}
		out = m
		if err := s.record(ctx, tx, &entry, nil, []string{group}); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionRepoMappingRemove, "repository", repoID, viewRepoMapping(m), nil)
	})
	if err != nil {
		return groupgate.RepoMapping{}, err
	}
	s.settle(ctx, entry, func() bool { return s.syncGroupMembers(ctx, []string{group}) })
	return out, nil
}
