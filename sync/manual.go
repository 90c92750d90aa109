package sync

import (
	"context"
	"fmt"
	"slices"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Audit actions written by manual role and resource operations.
const (
	ActionOrgMemberSet          = "org_member.set"
	ActionOrgMemberRemove       = "org_member.remove"
	ActionRepoContributorSet    = "repo_contributor.set"
	ActionRepoContributorRemove = "repo_contributor.remove"
	ActionOrganizationDelete    = "organization.delete"
	ActionRepositoryDelete      = "repository.delete"
)

// SetOrgMember gives the user a role on the organization by hand, replacing
// any manual role they had there. Invalid for an empty or unknown role,
// NotFound for an unknown organization or user.
func (s *Syncer) SetOrgMember(ctx context.Context, actor, orgID, userID string, role groupgate.OrgRole) (groupgate.OrgMember, error) {
	if err := validateManualOrgRole(role); err != nil {
		return groupgate.OrgMember{}, err
	}
	var out groupgate.OrgMember
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		if _, err := tx.GetOrganization(ctx, orgID); err != nil {
			return fmt.Errorf("load organization %s: %w", orgID, err)
		}
		if _, err := tx.GetUser(ctx, userID); err != nil {
			return fmt.Errorf("load user %s: %w", userID, err)
		}
		var before any
		switch old, err := tx.GetOrgMember(ctx, orgID, userID); {
		case err == nil:
			before = orgMemberView{OrganizationID: orgID, UserID: userID, Role: old.Role}
		case !groupgate.IsCode(err, groupgate.NotFound):
			return fmt.Errorf("load role of %s on organization %s: %w", userID, orgID, err)
		}
		m, err := tx.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: orgID, UserID: userID, Role: role})
		if err != nil {
			return fmt.Errorf("set role of %s on organization %s: %w", userID, orgID, err)
		}
		out = m
		if err := s.record(ctx, tx, &entry, []string{userID}, nil); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionOrgMemberSet, "organization", orgID, before, orgMemberView{OrganizationID: orgID, UserID: userID, Role: role})
	})
	if err != nil {
		return groupgate.OrgMember{}, err
	}
	s.settle(ctx, entry, func() bool { return s.syncUsers(ctx, []string{userID}) })
	return out, nil
}

// RemoveOrgMember removes the user's manual role on the organization; roles
// from groups stay. NotFound when there is none.
func (s *Syncer) RemoveOrgMember(ctx context.Context, actor, orgID, userID string) error {
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		old, err := tx.GetOrgMember(ctx, orgID, userID)
		if err != nil {
			return fmt.Errorf("load role of %s on organization %s: %w", userID, orgID, err)
		}
		if err := tx.RemoveOrgMember(ctx, orgID, userID); err != nil {
			return fmt.Errorf("remove role of %s on organization %s: %w", userID, orgID, err)
		}
		if err := s.record(ctx, tx, &entry, []string{userID}, nil); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionOrgMemberRemove, "organization", orgID, orgMemberView{OrganizationID: orgID, UserID: userID, Role: old.Role}, nil)
	})
	if err != nil {
		return err
	}
	s.settle(ctx, entry, func() bool { return s.syncUsers(ctx, []string{userID}) })
	return nil
}

// SetRepoContributor gives the user a role on the repository by hand.
// OWNER is Invalid: the owner is the parent organization.
func (s *Syncer) SetRepoContributor(ctx context.Context, actor, repoID, userID string, role groupgate.RepoRole) (groupgate.RepoContributor, error) {
	if err := validateManualRepoRole(role); err != nil {
		return groupgate.RepoContributor{}, err
	}
	var out groupgate.RepoContributor
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		if _, err := tx.GetRepository(ctx, repoID); err != nil {
			return fmt.Errorf("load repository %s: %w", repoID, err)
		}
		if _, err := tx.GetUser(ctx, userID); err != nil {
			return fmt.Errorf("load user %s: %w", userID, err)
		}
		var before any
		switch old, err := tx.GetRepoContributor(ctx, repoID, userID); {
		case err == nil:
			before = repoContributorView{RepositoryID: repoID, UserID: userID, Role: old.Role}
		case !groupgate.IsCode(err, groupgate.NotFound):
			return fmt.Errorf("load role of %s on repository %s: %w", userID, repoID, err)
		}
		c, err := tx.SetRepoContributor(ctx, groupgate.RepoContributor{RepositoryID: repoID, UserID: userID, Role: role})
		if err != nil {
			return fmt.Errorf("set role of %s on repository %s: %w", userID, repoID, err)
		}
		out = c
		if err := s.record(ctx, tx, &entry, []string{userID}, nil); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionRepoContributorSet, "repository", repoID, before, repoContributorView{RepositoryID: repoID, UserID: userID, Role: role})
	})
	if err != nil {
		return groupgate.RepoContributor{}, err
	}
	s.settle(ctx, entry, func() bool { return s.syncUsers(ctx, []string{userID}) })
	return out, nil
}

// RemoveRepoContributor removes the user's manual role on the repository.
func (s *Syncer) RemoveRepoContributor(ctx context.Context, actor, repoID, userID string) error {
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		old, err := tx.GetRepoContributor(ctx, repoID, userID)
		if err != nil {
			return fmt.Errorf("load role of %s on repository %s: %w", userID, repoID, err)
		}
		if err := tx.RemoveRepoContributor(ctx, repoID, userID); err != nil {
			return fmt.Errorf("remove role of %s on repository %s: %w", userID, repoID, err)
		}
		if err := s.record(ctx, tx, &entry, []string{userID}, nil); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionRepoContributorRemove, "repository", repoID, repoContributorView{RepositoryID: repoID, UserID: userID, Role: old.Role}, nil)
	})
	if err != nil {
		return err
	}
	s.settle(ctx, entry, func() bool { return s.syncUsers(ctx, []string{userID}) })
	return nil
}

// DeleteOrganization deletes the organization with its repositories,
// mappings and manual roles, then refreshes everyone who had access through
// them. NotFound when absent.
func (s *Syncer) DeleteOrganization(ctx context.Context, actor, orgID string) error {
	var groups, holders []string
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		o, err := tx.GetOrganization(ctx, orgID)
		if err != nil {
			return fmt.Errorf("load organization %s: %w", orgID, err)
		}
		view := organizationView{ID: o.ID, Name: o.Name}
		oms, err := tx.ListOrgMappings(ctx, orgID, store.ListOptions{})
		if err != nil {
			return fmt.Errorf("list mappings of organization %s: %w", orgID, err)
		}
		for _, m := range oms {
			groups = append(groups, m.Group)
		}
		members, err := tx.ListOrgMembers(ctx, orgID)
		if err != nil {
			return fmt.Errorf("list members of organization %s: %w", orgID, err)
		}
		for _, m := range members {
			holders = append(holders, m.UserID)
		}
		repos, err := tx.ListRepositories(ctx, orgID, store.ListOptions{})
		if err != nil {
			return fmt.Errorf("list repositories of organization %s: %w", orgID, err)
		}
		for _, r := range repos {
			view.Repositories = append(view.Repositories, r.Name)
			g, h, err := repoGrantHolders(ctx, tx, r.ID)
			if err != nil {
				return err
			}
			groups, holders = append(groups, g...), append(holders, h...)
		}
		slices.Sort(groups)
		groups = slices.Compact(groups)
		slices.Sort(holders)
		holders = slices.Compact(holders)
		view.MappedGroups, view.ManualRoleHolders = groups, holders
		if err := tx.DeleteOrganization(ctx, orgID); err != nil {
			return fmt.Errorf("delete organization %s: %w", orgID, err)
		}
		if err := s.record(ctx, tx, &entry, holders, groups); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionOrganizationDelete, "organization", orgID, view, nil)
	})
	if err != nil {
		return err
	}
	s.settle(ctx, entry, func() bool { return s.syncGroupMembers(ctx, groups, holders...) })
	return nil
}

// repoGrantHolders lists the groups mapped to a repository and the users
// with a manual role on it.
func repoGrantHolders(ctx context.Context, st store.Store, repoID string) (groups, holders []string, err error) {
	rms, err := st.ListRepoMappings(ctx, repoID, store.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list mappings of repository %s: %w", repoID, err)
	}
	for _, m := range rms {
		groups = append(groups, m.Group)
	}
	cs, err := st.ListRepoContributors(ctx, repoID)
	if err != nil {
		return nil, nil, fmt.Errorf("list contributors of repository %s: %w", repoID, err)
	}
	for _, c := range cs {
		holders = append(holders, c.UserID)
	}
	return groups, holders, nil
}

// DeleteRepository deletes the repository with its mappings and manual
// roles, then refreshes everyone who had access through them.
func (s *Syncer) DeleteRepository(ctx context.Context, actor, repoID string) error {
	var groups, holders []string
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		r, err := tx.GetRepository(ctx, repoID)
		if err != nil {
			return fmt.Errorf("load repository %s: %w", repoID, err)
		}
		if groups, holders, err = repoGrantHolders(ctx, tx, repoID); err != nil {
			return err
		}
		if err := tx.DeleteRepository(ctx, repoID); err != nil {
			return fmt.Errorf("delete repository %s: %w", repoID, err)
		}
		view := repositoryView{ID: r.ID, FullName: r.FullName(), MappedGroups: groups, ManualRoleHolders: holders}
		if err := s.record(ctx, tx, &entry, holders, groups); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionRepositoryDelete, "repository", repoID, view, nil)
	})
	if err != nil {
		return err
	}
	s.settle(ctx, entry, func() bool { return s.syncGroupMembers(ctx, groups, holders...) })
	return nil
}
