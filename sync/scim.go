package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Audit actions written by SCIM operations.
const (
	ActionSCIMUserCreate  = "scim.user.create"
	ActionSCIMUserAdopt   = "scim.user.adopt"
	ActionSCIMUserUpdate  = "scim.user.update"
	ActionSCIMUserDelete  = "scim.user.delete"
	ActionUserReactivate  = "user.reactivate"
	ActionSCIMGroupCreate = "scim.group.create"
	ActionSCIMGroupUpdate = "scim.group.update"
	ActionSCIMGroupDelete = "scim.group.delete"
)

// MatchKey says which attribute makes a SCIM-provisioned user the same
// person as a user created by an SSO login.
type MatchKey string

const (
	MatchEmail    MatchKey = "email"
	MatchUserName MatchKey = "userName"
)

// scimTx returns the SCIM part of a store (a transaction of it).
func scimTx(st store.Store) (store.SCIMStore, error) {
	sc, ok := st.(store.SCIMStore)
	if !ok {
		return nil, groupgate.Errorf(groupgate.Internal, "the store does not support SCIM")
	}
	return sc, nil
}

// scimUserView is the audit view of a SCIM user write.
type scimUserView struct {
	userView
	ExternalID string `json:"external_id,omitempty"`
}

func viewSCIMUser(u groupgate.User) scimUserView {
	return scimUserView{userView: viewUser(u), ExternalID: u.ExternalID}
}

// SCIMCreateUser provisions u. When a user created by an SSO login (no
// externalId, no SCIM document) has the same email or userName (by match),
// that user is adopted: it keeps its ID, identities, group set and
// sessions, and takes u's attributes. A user already provisioned over SCIM
// with that key, or any other uniqueness clash, is Conflict. Provisioning
// an inactive user ends the sessions an adopted user had.
func (s *Syncer) SCIMCreateUser(ctx context.Context, actor string, u groupgate.User, match MatchKey) (groupgate.User, error) {
	var (
		out, before groupgate.User
		entry       int64
	)
	adopted := false
	u.VerifiedEmail = "" // only a login proves an email
	if fast, ok := s.st.(unmatchedCreator); ok && (match == MatchEmail || match == "" || match == MatchUserName) {
		// The common case of an import, a user nobody has yet, in one
		// round trip; any match or clash takes the transaction below.
		if u.ID == "" {
			u.ID = store.NewID()
		}
		ev, err := s.auditEvent(actor, ActionSCIMUserCreate, "user", u.ID, nil, viewSCIMUser(u))
		if err != nil {
			return groupgate.User{}, err
		}
		created, ok, err := fast.CreateUserUnmatched(ctx, u, match != MatchUserName, ev)
		if err != nil {
			return groupgate.User{}, fmt.Errorf("create user %q: %w", u.UserName, err)
		}
		if ok {
			return created, nil
		}
	}
	err := s.st.InTx(ctx, func(tx store.Store) error {
		if l, ok := tx.(emailLocker); ok && (match == MatchEmail || match == "") && u.Email != "" {
			// Without it two creates of one email both find no user
			// and both insert (emails are not unique in the table).
			if err := l.LockEmail(ctx, u.Email); err != nil {
				return fmt.Errorf("create user %q: %w", u.UserName, err)
			}
		}
		existing, err := findSCIMMatch(ctx, tx, u, match)
		if err != nil {
			return err
		}
		if existing.ID != "" {
			if existing.ExternalID != "" || len(existing.SCIM) > 0 {
				if match == MatchUserName {
					return groupgate.Errorf(groupgate.Conflict, "userName %q is already provisioned", u.UserName)
				}
				return groupgate.Errorf(groupgate.Conflict, "emails: a user with email %q is already provisioned", u.Email)
			}
			before, adopted = existing, true
			out, err = tx.UpdateUser(ctx, existing.ID, func(cur *groupgate.User) error {
				cur.UserName, cur.Email, cur.DisplayName = u.UserName, u.Email, u.DisplayName
				cur.Active, cur.ExternalID, cur.SCIM = u.Active, u.ExternalID, u.SCIM
				return nil
			})
			if err != nil {
				as := u
				as.ID = existing.ID
				return fmt.Errorf("adopt user %s: %w", existing.ID, userConflict(ctx, tx, err, as))
			}
			if before.Active && !out.Active {
				if err := s.record(ctx, tx, &entry, []string{out.ID}, nil); err != nil {
					return err
				}
			}
			return s.audit(ctx, tx, actor, ActionSCIMUserAdopt, "user", out.ID, viewSCIMUser(before), viewSCIMUser(out))
		}
		if out, err = tx.CreateUser(ctx, u); err != nil {
			return fmt.Errorf("create user %q: %w", u.UserName, userConflict(ctx, tx, err, u))
		}
		return s.audit(ctx, tx, actor, ActionSCIMUserCreate, "user", out.ID, nil, viewSCIMUser(out))
	})
	if err != nil {
		return groupgate.User{}, err
	}
	if adopted && before.Active && !out.Active {
		s.settle(ctx, entry, func() bool { return s.endSessions(ctx, out.ID) })
	}
	return out, nil
}

// SCIMCreateUsers provisions users in order as SCIMCreateUser does each,
// with one commit for as many as the store can write so (SCIM Bulk at
// import speed, issue 15). It returns the created prefix: every user in it
// is committed, was nobody's yet and has its audit event, exactly as the
// one-statement create of SCIMCreateUser writes it. It stops before the
// first user that needs more (an adoption, a conflict to name); the caller
// creates that one with SCIMCreateUser and may pass the rest again. With
// a store that has no batched creates (SQLite) or a match key it does not
// know the error wraps errors.ErrUnsupported. After an error nothing of
// this call is committed.
func (s *Syncer) SCIMCreateUsers(ctx context.Context, actor string, users []groupgate.User, match MatchKey) ([]groupgate.User, error) {
	batch, ok := s.st.(unmatchedBatchCreator)
	if !ok || (match != MatchEmail && match != "" && match != MatchUserName) {
		return nil, fmt.Errorf("create users in one batch: %w", errors.ErrUnsupported)
	}
	if len(users) == 0 {
		return nil, nil
	}
	users = slices.Clone(users)
	evs := make([]groupgate.AuditEvent, len(users))
	for i := range users {
		users[i].VerifiedEmail = "" // only a login proves an email
		if users[i].ID == "" {
			users[i].ID = store.NewID()
		}
		ev, err := s.auditEvent(actor, ActionSCIMUserCreate, "user", users[i].ID, nil, viewSCIMUser(users[i]))
		if err != nil {
			return nil, err
		}
		evs[i] = ev
	}
	created, err := batch.CreateUsersUnmatched(ctx, users, match != MatchUserName, evs)
	if err != nil {
		return nil, fmt.Errorf("create %d users: %w", len(users), err)
	}
	return created, nil
}

// unmatchedBatchCreator is a store that writes several unmatched creates
// with one commit (store/postgres).
type unmatchedBatchCreator interface {
	CreateUsersUnmatched(ctx context.Context, users []groupgate.User, byEmail bool, evs []groupgate.AuditEvent) ([]groupgate.User, error)
}

// unmatchedCreator is a store that creates a user with its audit event in
// one statement when no user matches it (store/postgres: a create was
// eight round trips, issue 15).
type unmatchedCreator interface {
	CreateUserUnmatched(ctx context.Context, u groupgate.User, byEmail bool, ev groupgate.AuditEvent) (groupgate.User, bool, error)
}

// emailLocker is a store whose transactions run concurrently
// (store/postgres): LockEmail serializes, until the transaction ends, the
// creates of users with one email key. SQLite runs one write transaction
// at a time and needs none.
type emailLocker interface {
	LockEmail(ctx context.Context, email string) error
}

// findSCIMMatch returns the user u is the same person as, or a zero user.
func findSCIMMatch(ctx context.Context, tx store.Store, u groupgate.User, match MatchKey) (groupgate.User, error) {
	var (
		found groupgate.User
		err   error
	)
	switch match {
	case MatchUserName:
		found, err = tx.GetUserByUserName(ctx, u.UserName)
	case MatchEmail, "":
		if u.Email == "" {
			return groupgate.User{}, nil
		}
		var users []groupgate.User
		if users, err = tx.ListUsersByEmail(ctx, u.Email); err == nil {
			switch len(users) {
			case 0:
				return groupgate.User{}, nil
			case 1:
				if found = users[0]; !groupgate.SameEmailSpelling(found.Email, u.Email) {
					return groupgate.User{}, groupgate.Errorf(groupgate.Conflict, "the email %s differs from user %s's only by look-alike characters", u.Email, found.UserName)
				}
			default:
				return groupgate.User{}, groupgate.Errorf(groupgate.Conflict, "several users have the email %s; provision with match_key username", u.Email)
			}
		}
	default:
		return groupgate.User{}, groupgate.Errorf(groupgate.Invalid, "unknown SCIM match key %q", string(match))
	}
	if groupgate.IsCode(err, groupgate.NotFound) {
		return groupgate.User{}, nil
	}
	if err != nil {
		return groupgate.User{}, fmt.Errorf("find user by %s: %w", match, err)
	}
	return found, nil
}

// userConflict names the attribute behind a Conflict of a write of u,
// as RFC 7644 §3.12 asks of a 409 uniqueness error: the userName of another
// user (emails are not unique in the store; match_key email refuses a
// second provisioned user with one in findSCIMMatch). It runs in the writing transaction (the store
// wraps each write in a savepoint, so the transaction is still usable).
// Any other error is returned as it is.
func userConflict(ctx context.Context, tx store.Store, err error, u groupgate.User) error {
	if !groupgate.IsCode(err, groupgate.Conflict) {
		return err
	}
	if other, gerr := tx.GetUserByUserName(ctx, u.UserName); gerr == nil && other.ID != u.ID {
		return groupgate.WrapError(groupgate.Conflict, err, "userName %q is already taken by another user", u.UserName)
	}
	return err
}

// groupConflict names the attribute behind a Conflict of a group write:
// the displayName, taken by another group or mapped together with the
// old name on one resource.
func groupConflict(ctx context.Context, tx store.Store, err error, id, name string) error {
	if !groupgate.IsCode(err, groupgate.Conflict) {
		return err
	}
	if other, gerr := tx.GetGroupByName(ctx, name); gerr == nil && other.ID != id {
		return groupgate.WrapError(groupgate.Conflict, err, "displayName %q is already taken by another group", name)
	}
	return groupgate.WrapError(groupgate.Conflict, err, "displayName %q: %s", name, groupgate.ErrorMessageOf(err))
}

// SCIMUpdateUser runs fn on the stored user in one transaction with its
// audit event. Turning Active off ends every session of the user at once
// (logins are then refused); turning it on again reactivates the user.
// fn's error is returned unchanged.
func (s *Syncer) SCIMUpdateUser(ctx context.Context, actor, userID string, fn func(*groupgate.User) error) (groupgate.User, error) {
	var (
		before, out groupgate.User
		entry       int64
	)
	err := s.st.InTx(ctx, func(tx store.Store) error {
		var next groupgate.User
		u, err := tx.UpdateUser(ctx, userID, func(u *groupgate.User) error {
			before = *u
			err := fn(u)
			// Only a login proves an email (instance admins bind to it):
			// nothing SCIM sends may set or move it.
			u.VerifiedEmail = before.VerifiedEmail
			next = *u
			return err
		})
		if err != nil {
			return fmt.Errorf("update user %s: %w", userID, userConflict(ctx, tx, err, next))
		}
		out = u
		if err := s.audit(ctx, tx, actor, ActionSCIMUserUpdate, "user", userID, viewSCIMUser(before), viewSCIMUser(out)); err != nil {
			return err
		}
		switch {
		case before.Active && !out.Active:
			if err := s.record(ctx, tx, &entry, []string{userID}, nil); err != nil {
				return err
			}
			return s.audit(ctx, tx, actor, ActionUserDeactivate, "user", userID, viewUser(before), viewUser(out))
		case !before.Active && out.Active:
			return s.audit(ctx, tx, actor, ActionUserReactivate, "user", userID, viewUser(before), viewUser(out))
		}
		return nil
	})
	if err != nil {
		return groupgate.User{}, err
	}
	if before.Active && !out.Active {
		s.settle(ctx, entry, func() bool { return s.endSessions(ctx, userID) })
	}
	return out, nil
}

// ReactivateUser lets a deactivated user log in again. Their sessions were
// ended at deactivation, so there is nothing to push. NotFound for an
// unknown user.
func (s *Syncer) ReactivateUser(ctx context.Context, actor, userID string) (groupgate.User, error) {
	return s.SCIMUpdateUser(ctx, actor, userID, func(u *groupgate.User) error {
		u.Active = true
		return nil
	})
}

// SCIMDeleteUser deletes the user with their identities, group set and
// manual roles, and ends every session they have. NotFound for an unknown
// user.
func (s *Syncer) SCIMDeleteUser(ctx context.Context, actor, userID string) error {
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		u, err := tx.GetUser(ctx, userID)
		if err != nil {
			return fmt.Errorf("load user %s: %w", userID, err)
		}
		set, err := tx.GetGroupSet(ctx, userID)
		if err != nil {
			return fmt.Errorf("load group set of %s: %w", userID, err)
		}
		if err := tx.DeleteUser(ctx, userID); err != nil {
			return fmt.Errorf("delete user %s: %w", userID, err)
		}
		v := viewUser(u)
		v.Groups = set.Names()
		if err := s.record(ctx, tx, &entry, []string{userID}, nil); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionSCIMUserDelete, "user", userID, v, nil)
	})
	if err != nil {
		return err
	}
	s.settle(ctx, entry, func() bool { return s.endSessions(ctx, userID) })
	return nil
}

// groupChangeView is the audit view of a SCIM group write: the name
// before and after and the members that came and went, not the whole
// member list (which may hold many thousands).
type groupChangeView struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	ExternalID string   `json:"external_id,omitempty"`
	Added      []string `json:"added_members,omitempty"`
	Removed    []string `json:"removed_members,omitempty"`
	Members    int      `json:"members"`
}

// SCIMCreateGroup creates g with the given SCIM members (user IDs) in one
// transaction, then pushes fresh access to the members. Conflict (naming
// displayName) when the name is taken, Invalid for an unknown user ID or a
// bad name. externalId need not be unique (RFC 7643 §3.1).
func (s *Syncer) SCIMCreateGroup(ctx context.Context, actor string, g groupgate.Group, members []string) (groupgate.Group, []string, error) {
	if err := checkGroupName(g.Name); err != nil {
		return groupgate.Group{}, nil, err
	}
	var (
		out      groupgate.Group
		final    []string
		affected []string
		entry    int64
	)
	err := s.st.InTx(ctx, func(tx store.Store) error {
		sc, err := scimTx(tx)
		if err != nil {
			return err
		}
		// One store call, so that the new group is at its first version
		// with lastModified = created (RFC 7643 §3.1).
		final = dedupe(members)
		out, affected, err = sc.CreateGroupWithMembers(ctx, g, final)
		if err != nil {
			return fmt.Errorf("create group %q: %w", g.Name, groupConflict(ctx, tx, err, "", g.Name))
		}
		if err := s.record(ctx, tx, &entry, affected, nil); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionSCIMGroupCreate, "group", out.ID, nil,
			groupChangeView{ID: out.ID, Name: out.Name, ExternalID: out.ExternalID, Added: final, Members: len(final)})
	})
	if err != nil {
		return groupgate.Group{}, nil, err
	}
	s.settle(ctx, entry, func() bool { return s.syncUsers(ctx, affected) })
	return out, final, nil
}

// SCIMUpdateGroup runs fn on the group and its SCIM members (sorted user
// IDs) in one transaction that locks the group, stores the result with an
// audit event, and then pushes fresh access to every affected user. A
// rename moves memberships and mappings to the new name (see
// store.SCIMStore). It returns the stored group and its members. fn's
// error is returned unchanged.
func (s *Syncer) SCIMUpdateGroup(ctx context.Context, actor, groupID string, fn func(g *groupgate.Group, members []string) ([]string, error)) (groupgate.Group, []string, error) {
	var (
		out      groupgate.Group
		final    []string
		affected []string
		entry    int64
	)
	err := s.st.InTx(ctx, func(tx store.Store) error {
		sc, err := scimTx(tx)
		if err != nil {
			return err
		}
		var before groupChangeView
		var old []string
		var name string
		out, affected, err = sc.UpdateGroupMembers(ctx, groupID, func(g *groupgate.Group, members []string) ([]string, error) {
			before = groupChangeView{ID: g.ID, Name: g.Name, ExternalID: g.ExternalID, Members: len(members)}
			old = members
			next, err := fn(g, slices.Clone(members))
			name = g.Name
			if err != nil {
				return nil, err
			}
			if err := checkGroupName(g.Name); err != nil {
				return nil, err
			}
			final = dedupe(next)
			return final, nil
		})
		if err != nil {
			return fmt.Errorf("update group %s: %w", groupID, groupConflict(ctx, tx, err, groupID, name))
		}
		added, removed := diffSorted(old, final)
		if err := s.record(ctx, tx, &entry, affected, nil); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionSCIMGroupUpdate, "group", groupID, before,
			groupChangeView{ID: out.ID, Name: out.Name, ExternalID: out.ExternalID, Added: added, Removed: removed, Members: len(final)})
	})
	if err != nil {
		return groupgate.Group{}, nil, err
	}
	s.settle(ctx, entry, func() bool { return s.syncUsers(ctx, affected) })
	return out, final, nil
}

// SCIMDeleteGroup removes every SCIM membership of the group and deletes
// it, then pushes fresh access to the former members. Mappings of the name
// stay: a login may still bring the group. NotFound for an unknown group.
func (s *Syncer) SCIMDeleteGroup(ctx context.Context, actor, groupID string) error {
	var (
		affected []string
		entry    int64
	)
	err := s.st.InTx(ctx, func(tx store.Store) error {
		sc, err := scimTx(tx)
		if err != nil {
			return err
		}
		var before groupChangeView
		var g groupgate.Group
		g, affected, err = sc.UpdateGroupMembers(ctx, groupID, func(g *groupgate.Group, members []string) ([]string, error) {
			before = groupChangeView{ID: g.ID, Name: g.Name, ExternalID: g.ExternalID, Removed: members, Members: len(members)}
			return nil, nil
		})
		if err != nil {
			return fmt.Errorf("remove members of group %s: %w", groupID, err)
		}
		if err := tx.DeleteGroup(ctx, g.ID); err != nil {
			return fmt.Errorf("delete group %s: %w", groupID, err)
		}
		if err := s.record(ctx, tx, &entry, affected, nil); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionSCIMGroupDelete, "group", groupID, before, nil)
	})
	if err != nil {
		return err
	}
	s.settle(ctx, entry, func() bool { return s.syncUsers(ctx, affected) })
	return nil
}

func checkGroupName(name string) error {
	if strings.TrimSpace(name) == "" {
		return groupgate.Errorf(groupgate.Invalid, "group displayName required")
	}
	if strings.TrimSpace(name) != name {
		return groupgate.Errorf(groupgate.Invalid, "group name %q has leading or trailing spaces", name)
	}
	return nil
}

func dedupe(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// diffSorted returns what is in b but not a, and in a but not b.
func diffSorted(a, b []string) (added, removed []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			removed = append(removed, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			added = append(added, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}
