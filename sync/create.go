package sync

import (
	"context"
	"fmt"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Audit actions written by resource creation.
const (
	ActionOrganizationCreate = "organization.create"
	ActionRepositoryCreate   = "repository.create"
)

// CreateOrganization creates the organization named name and makes
// ownerID its OWNER by hand, in one transaction with the audit event and
// the outbox entry that carries the new role to the owner's live sessions
// (so a crash between the commit and the push loses nothing). Invalid for
// a bad name, Conflict when the name is taken, NotFound for an unknown
// owner.
func (s *Syncer) CreateOrganization(ctx context.Context, actor, name, ownerID string) (groupgate.Organization, error) {
	// The name goes into X-Auth-Request-Org-Roles: the BSR's rules keep
	// ',', '=', '/' and control characters out of it.
	if err := groupgate.ValidateOrganizationName(name); err != nil {
		return groupgate.Organization{}, err
	}
	var out groupgate.Organization
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		if _, err := tx.GetUser(ctx, ownerID); err != nil {
			return fmt.Errorf("load owner %s: %w", ownerID, err)
		}
		o, err := tx.CreateOrganization(ctx, groupgate.Organization{Name: name})
		if err != nil {
			return fmt.Errorf("create organization %q: %w", name, err)
		}
		if _, err := tx.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: o.ID, UserID: ownerID, Role: groupgate.OrgRoleOwner}); err != nil {
			return fmt.Errorf("make %s owner of organization %s: %w", ownerID, o.ID, err)
		}
		if err := s.record(ctx, tx, &entry, []string{ownerID}, nil); err != nil {
			return err
		}
		out = o
		return s.audit(ctx, tx, actor, ActionOrganizationCreate, "organization", o.ID, nil,
			organizationView{ID: o.ID, Name: o.Name, Owner: ownerID})
	})
	if err != nil {
		return groupgate.Organization{}, err
	}
	s.settle(ctx, entry, func() bool { return s.syncUsers(ctx, []string{ownerID}) })
	return out, nil
}

// CreateRepository creates r in its organization, with its audit event.
// A repository is a new place where the organization's roles apply (its
// base repository role), so the organization's holders (manual members
// and the members of its mapped groups) are refreshed through the outbox
// like any access change. Invalid for a bad name, NotFound for an unknown
// organization, Conflict when the name is taken there.
func (s *Syncer) CreateRepository(ctx context.Context, actor string, r groupgate.Repository) (groupgate.Repository, error) {
	// The name goes into X-Auth-Request-Repo-Roles: the BSR's rules keep
	// ',', '=', '/' and control characters out of it.
	if err := groupgate.ValidateRepositoryName(r.Name); err != nil {
		return groupgate.Repository{}, err
	}
	var out groupgate.Repository
	var groups, holders []string
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		var err error
		if groups, holders, err = orgGrantHolders(ctx, tx, r.OrganizationID); err != nil {
			return err
		}
		if out, err = tx.CreateRepository(ctx, r); err != nil {
			return fmt.Errorf("create repository %q in organization %s: %w", r.Name, r.OrganizationID, err)
		}
		if err := s.record(ctx, tx, &entry, holders, groups); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionRepositoryCreate, "repository", out.ID, nil,
			repositoryView{ID: out.ID, FullName: out.FullName(), Visibility: out.Visibility})
	})
	if err != nil {
		return groupgate.Repository{}, err
	}
	s.settle(ctx, entry, func() bool { return s.syncGroupMembers(ctx, groups, holders...) })
	return out, nil
}

// orgGrantHolders lists the groups mapped to an organization and the users
// with a manual role on it. NotFound for an unknown organization.
func orgGrantHolders(ctx context.Context, st store.Store, orgID string) (groups, holders []string, err error) {
	if _, err := st.GetOrganization(ctx, orgID); err != nil {
		return nil, nil, fmt.Errorf("load organization %s: %w", orgID, err)
	}
	oms, err := st.ListOrgMappings(ctx, orgID, store.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list mappings of organization %s: %w", orgID, err)
	}
	for _, m := range oms {
		groups = append(groups, m.Group)
	}
	members, err := st.ListOrgMembers(ctx, orgID)
	if err != nil {
		return nil, nil, fmt.Errorf("list members of organization %s: %w", orgID, err)
	}
	for _, m := range members {
		holders = append(holders, m.UserID)
	}
	return groups, holders, nil
}

// Audit appends, inside tx, the audit event of a change that moves no
// access (API and SCIM tokens, session revocation), so that every event
// has one writer, one clock and one encoding. Changes that move access
// write theirs through the Syncer's own operations.
func (s *Syncer) Audit(ctx context.Context, tx store.Store, actor, action, targetType, targetID string, before, after any) error {
	return s.audit(ctx, tx, actor, action, targetType, targetID, before, after)
}
