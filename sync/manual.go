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

// UserActor is the audit actor of a change a user makes (the API's callers,
// a user's own login): "user:" + ID.
func UserActor(userID string) string { return "user:" + userID }

// SetOrgMember gives the user a role on the organization by hand, replacing
// any manual role they had there. Invalid for an empty or unknown role,
// NotFound for an unknown organization or user, Forbidden when the actor
// (UserActor) is the user and would create or raise their own role.
func (s *Syncer) SetOrgMember(ctx context.Context, actor, orgID, userID string, role groupgate.OrgRole) (groupgate.OrgMember, error) {
	return orgMembers().set(ctx, s, actor, orgID, userID, role)
}

// RemoveOrgMember removes the user's manual role on the organization; roles
// from groups stay. NotFound when there is none.
func (s *Syncer) RemoveOrgMember(ctx context.Context, actor, orgID, userID string) error {
	return orgMembers().remove(ctx, s, actor, orgID, userID)
}

// SetRepoContributor gives the user a role on the repository by hand.
// OWNER is Invalid: the owner is the parent organization. Forbidden, as in
// SetOrgMember, for creating or raising one's own role.
func (s *Syncer) SetRepoContributor(ctx context.Context, actor, repoID, userID string, role groupgate.RepoRole) (groupgate.RepoContributor, error) {
	return repoContributors().set(ctx, s, actor, repoID, userID, role)
}

// RemoveRepoContributor removes the user's manual role on the repository.
func (s *Syncer) RemoveRepoContributor(ctx context.Context, actor, repoID, userID string) error {
	return repoContributors().remove(ctx, s, actor, repoID, userID)
}

// manualKind is what differs between manual organization roles and
// manual repository roles; set and remove are written once over it. The
// store methods are method expressions, so that they run on the
// transaction.
type manualKind[H any, R ~string] struct {
	noun         string // "organization" or "repository": messages and audit target type
	setAction    string
	removeAction string
	validate     func(R) error // repositories refuse OWNER here
	rank         func(R) int
	loadParent   func(ctx context.Context, st store.Store, id string) error
	newHolder    func(id, userID string, role R) H
	role         func(H) R
	view         func(id, userID string, role R) any
	storeSet     func(store.Store, context.Context, H) (H, error)
	storeGet     func(st store.Store, ctx context.Context, id, userID string) (H, error)
	storeRemove  func(st store.Store, ctx context.Context, id, userID string) error
}

// orgMembers and repoContributors build the per-kind tables on each call
// rather than living in package variables, which anything could reassign.
func orgMembers() manualKind[groupgate.OrgMember, groupgate.OrgRole] {
	return manualKind[groupgate.OrgMember, groupgate.OrgRole]{
		noun:      "organization",
		setAction: ActionOrgMemberSet, removeAction: ActionOrgMemberRemove,
		validate: validateManualOrgRole,
		rank:     OrgRoleRank,
		loadParent: func(ctx context.Context, st store.Store, id string) error {
			_, err := st.GetOrganization(ctx, id)
			return err
		},
		newHolder: func(id, userID string, r groupgate.OrgRole) groupgate.OrgMember {
			return groupgate.OrgMember{OrganizationID: id, UserID: userID, Role: r}
		},
		role: func(m groupgate.OrgMember) groupgate.OrgRole { return m.Role },
		view: func(id, userID string, r groupgate.OrgRole) any {
			return orgMemberView{OrganizationID: id, UserID: userID, Role: r}
		},
		storeSet:    store.Store.SetOrgMember,
		storeGet:    store.Store.GetOrgMember,
		storeRemove: store.Store.RemoveOrgMember,
	}
}

func repoContributors() manualKind[groupgate.RepoContributor, groupgate.RepoRole] {
	return manualKind[groupgate.RepoContributor, groupgate.RepoRole]{
		noun:      "repository",
		setAction: ActionRepoContributorSet, removeAction: ActionRepoContributorRemove,
		validate: validateManualRepoRole,
		rank:     RepoRoleRank,
		loadParent: func(ctx context.Context, st store.Store, id string) error {
			_, err := st.GetRepository(ctx, id)
			return err
		},
		newHolder: func(id, userID string, r groupgate.RepoRole) groupgate.RepoContributor {
			return groupgate.RepoContributor{RepositoryID: id, UserID: userID, Role: r}
		},
		role: func(c groupgate.RepoContributor) groupgate.RepoRole { return c.Role },
		view: func(id, userID string, r groupgate.RepoRole) any {
			return repoContributorView{RepositoryID: id, UserID: userID, Role: r}
		},
		storeSet:    store.Store.SetRepoContributor,
		storeGet:    store.Store.GetRepoContributor,
		storeRemove: store.Store.RemoveRepoContributor,
	}
}

// set: see SetOrgMember.
func (k manualKind[H, R]) set(ctx context.Context, s *Syncer, actor, id, userID string, role R) (H, error) {
	var out H
	if err := k.validate(role); err != nil {
		return out, err
	}
	err := s.commitGrant(ctx, k.change(actor, k.setAction, id, userID), func(tx store.Store) (before, after any, err error) {
		if err := k.loadParent(ctx, tx, id); err != nil {
			return nil, nil, fmt.Errorf("load %s %s: %w", k.noun, id, err)
		}
		if _, err := tx.GetUser(ctx, userID); err != nil {
			return nil, nil, fmt.Errorf("load user %s: %w", userID, err)
		}
		// Nobody creates or raises a manual role on their own account: a
		// role held through an IdP group would otherwise outlive the group
		// (an admin by group making himself admin by hand). Lowering or
		// keeping one's own role takes nothing from the IdP.
		self := actor == UserActor(userID)
		switch old, err := k.storeGet(tx, ctx, id, userID); {
		case err == nil:
			before = k.view(id, userID, k.role(old))
			if self && k.rank(role) > k.rank(k.role(old)) {
				return nil, nil, groupgate.Errorf(groupgate.Forbidden,
					"you cannot raise your own role on this %s; another administrator must do it", k.noun)
			}
		case !groupgate.IsCode(err, groupgate.NotFound):
			return nil, nil, fmt.Errorf("load role of %s on %s %s: %w", userID, k.noun, id, err)
		case self:
			return nil, nil, groupgate.Errorf(groupgate.Forbidden,
				"you cannot give yourself a role by hand on this %s; another administrator must do it", k.noun)
		}
		if out, err = k.storeSet(tx, ctx, k.newHolder(id, userID, role)); err != nil {
			return nil, nil, fmt.Errorf("set role of %s on %s %s: %w", userID, k.noun, id, err)
		}
		return before, k.view(id, userID, role), nil
	})
	if err != nil {
		var zero H
		return zero, err
	}
	return out, nil
}

// remove: see RemoveOrgMember.
func (k manualKind[H, R]) remove(ctx context.Context, s *Syncer, actor, id, userID string) error {
	return s.commitGrant(ctx, k.change(actor, k.removeAction, id, userID), func(tx store.Store) (before, after any, err error) {
		old, err := k.storeGet(tx, ctx, id, userID)
		if err != nil {
			return nil, nil, fmt.Errorf("load role of %s on %s %s: %w", userID, k.noun, id, err)
		}
		if err := k.storeRemove(tx, ctx, id, userID); err != nil {
			return nil, nil, fmt.Errorf("remove role of %s on %s %s: %w", userID, k.noun, id, err)
		}
		return k.view(id, userID, k.role(old)), nil, nil
	})
}

// change: a manual role change reaches only its holder.
func (k manualKind[H, R]) change(actor, action, id, userID string) grantChange {
	return grantChange{actor: actor, action: action, targetType: k.noun, targetID: id, users: []string{userID}}
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
		// Members held the organization's base role on it too.
		if groups, holders, err = withBaseRoleHolders(ctx, tx, r.OrganizationID, groups, holders); err != nil {
			return err
		}
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
