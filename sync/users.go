package sync

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Audit actions written by user operations.
const (
	ActionUserLogin      = "user.login"
	ActionUserGroupsSet  = "user.groups.set"
	ActionUserDeactivate = "user.deactivate"
)

// Login turns a verified Identity into a user, a group set and a snapshot.
// The user is found by the provider's subject, else by email, else by user
// name, else created. Their login-sourced groups are replaced by
// ident.Groups (after the group filter); SCIM-sourced ones stay. The new
// snapshot is returned for the session being created and pushed to the
// user's other live sessions. Forbidden for a deactivated user, Invalid
// without provider or subject.
func (s *Syncer) Login(ctx context.Context, ident groupgate.Identity) (groupgate.User, groupgate.Memberships, error) {
	if ident.Provider == "" || ident.Subject == "" {
		return groupgate.User{}, groupgate.Memberships{}, groupgate.Errorf(groupgate.Invalid, "identity without provider or subject")
	}
	groups := s.cleanGroups(ident.Groups)
	user, entry, err := s.login(ctx, ident, groups)
	if groupgate.IsCode(err, groupgate.Conflict) {
		// A concurrent first login of the same person created the user
		// between our lookup and our insert: the second try finds it.
		user, entry, err = s.login(ctx, ident, groups)
	}
	if err != nil {
		return groupgate.User{}, groupgate.Memberships{}, err
	}
	var a Access
	s.settle(ctx, entry, func() bool {
		var pushed bool
		a, pushed, err = s.syncUser(ctx, user.ID)
		return err == nil && pushed
	})
	if s.crashAfterCommit {
		a, err = s.resolve(ctx, s.st, user.ID)
	}
	if err != nil {
		return groupgate.User{}, groupgate.Memberships{}, fmt.Errorf("resolve access of %s: %w", user.ID, err)
	}
	return user, a.Memberships(), nil
}

func (s *Syncer) login(ctx context.Context, ident groupgate.Identity, groups []string) (groupgate.User, int64, error) {
	userName := cmp.Or(ident.Username, ident.Email, ident.Subject)
	var (
		out   groupgate.User
		entry int64
	)
	err := s.st.InTx(ctx, func(tx store.Store) error {
		u, err := findLoginUser(ctx, tx, ident, userName)
		var before any
		switch {
		case groupgate.IsCode(err, groupgate.NotFound):
			u, err = tx.CreateUser(ctx, groupgate.User{UserName: userName, Email: ident.Email, DisplayName: ident.DisplayName, Active: true})
			if err != nil {
				return fmt.Errorf("create user %q: %w", userName, err)
			}
		case err != nil:
			return err
		default:
			if !u.Active {
				return groupgate.Errorf(groupgate.Forbidden, "account deactivated")
			}
			old, err := tx.GetGroupSet(ctx, u.ID)
			if err != nil {
				return fmt.Errorf("load group set of %s: %w", u.ID, err)
			}
			v := viewUser(u)
			v.Groups = old.Names()
			before = v
			if u, err = s.refreshProfile(ctx, tx, u, ident); err != nil {
				return err
			}
		}
		if err := tx.LinkIdentity(ctx, u.ID, ident.Provider, ident.Subject); err != nil {
			return fmt.Errorf("link %s identity to user %s: %w", ident.Provider, u.ID, err)
		}
		set, err := tx.UpdateGroupSet(ctx, u.ID, func(old groupgate.GroupSet) (groupgate.GroupSet, error) {
			return replaceSource(old, groupgate.SourceLogin, groups), nil
		})
		if err != nil {
			return fmt.Errorf("update group set of %s: %w", u.ID, err)
		}
		out = u
		after := viewUser(u)
		after.Groups = set.Names()
		if err := s.record(ctx, tx, &entry, []string{u.ID}, nil); err != nil {
			return err
		}
		return s.audit(ctx, tx, "user:"+u.ID, ActionUserLogin, "user", u.ID, before, after)
	})
	return out, entry, err
}

// findLoginUser finds the user an identity belongs to. Matching by email or
// user name trusts the IdP to have verified them, as every configured IdP
// is trusted to.
func findLoginUser(ctx context.Context, tx store.Store, ident groupgate.Identity, userName string) (groupgate.User, error) {
	u, err := tx.GetUserByIdentity(ctx, ident.Provider, ident.Subject)
	if !groupgate.IsCode(err, groupgate.NotFound) {
		return u, wrapLookup(err, "identity")
	}
	if ident.Email != "" {
		u, err = tx.GetUserByEmail(ctx, ident.Email)
		if !groupgate.IsCode(err, groupgate.NotFound) {
			return u, wrapLookup(err, "email")
		}
	}
	u, err = tx.GetUserByUserName(ctx, userName)
	return u, wrapLookup(err, "user name")
}

func wrapLookup(err error, by string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("find user by %s: %w", by, err)
}

// refreshProfile stores the email and display name the IdP sent, when they
// changed. An email another user holds is kept off rather than failing the
// login; the conflict is logged for an operator.
func (s *Syncer) refreshProfile(ctx context.Context, tx store.Store, u groupgate.User, ident groupgate.Identity) (groupgate.User, error) {
	email, name := u.Email, u.DisplayName
	if ident.Email != "" && !strings.EqualFold(ident.Email, u.Email) {
		switch other, err := tx.GetUserByEmail(ctx, ident.Email); {
		case err == nil && other.ID != u.ID:
			s.log.WarnContext(ctx, "login email belongs to another user; keeping the stored one",
				"user", u.ID, "other_user", other.ID, "provider", ident.Provider)
		case err == nil || groupgate.IsCode(err, groupgate.NotFound):
			email = ident.Email
		default:
			return u, fmt.Errorf("find user by email: %w", err)
		}
	} else if ident.Email != "" {
		email = ident.Email // same address, maybe new capitalization
	}
	if ident.DisplayName != "" {
		name = ident.DisplayName
	}
	if email == u.Email && name == u.DisplayName {
		return u, nil // no write: the SCIM version (ETag) stays
	}
	updated, err := tx.UpdateUser(ctx, u.ID, func(u *groupgate.User) error {
		u.Email, u.DisplayName = email, name
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("update profile of user %s: %w", u.ID, err)
	}
	return updated, nil
}

// replaceSource returns set with source's memberships replaced by groups;
// other sources are kept, and so is AddedAt of memberships that stay.
func replaceSource(set groupgate.GroupSet, source groupgate.MembershipSource, groups []string) groupgate.GroupSet {
	added := map[string]groupgate.Membership{}
	out := make(groupgate.GroupSet, 0, len(set)+len(groups))
	for _, m := range set {
		if m.Source == source {
			added[m.Group] = m
		} else {
			out = append(out, m)
		}
	}
	for _, g := range groups {
		m, ok := added[g]
		if !ok {
			m = groupgate.Membership{Group: g, Source: source}
		}
		out = append(out, m)
	}
	return out
}

// SetUserGroups replaces the user's memberships from source (the SCIM
// ingest path, or an administrator) by groups, after the group filter, and
// refreshes their sessions. Invalid for an unknown source, NotFound for an
// unknown user.
func (s *Syncer) SetUserGroups(ctx context.Context, actor, userID string, source groupgate.MembershipSource, groups []string) (groupgate.GroupSet, error) {
	if source != groupgate.SourceLogin && source != groupgate.SourceSCIM {
		return nil, groupgate.Errorf(groupgate.Invalid, "unknown membership source %q", string(source))
	}
	clean := s.cleanGroups(groups)
	var (
		out   groupgate.GroupSet
		entry int64
	)
	err := s.st.InTx(ctx, func(tx store.Store) error {
		old, err := tx.GetGroupSet(ctx, userID)
		if err != nil {
			return fmt.Errorf("load group set of %s: %w", userID, err)
		}
		set, err := tx.UpdateGroupSet(ctx, userID, func(cur groupgate.GroupSet) (groupgate.GroupSet, error) {
			return replaceSource(cur, source, clean), nil
		})
		if err != nil {
			return fmt.Errorf("update group set of %s: %w", userID, err)
		}
		out = set
		if err := s.record(ctx, tx, &entry, []string{userID}, nil); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionUserGroupsSet, "user", userID,
			groupSetView{UserID: userID, Source: string(source), Groups: sourceGroups(old, source)},
			groupSetView{UserID: userID, Source: string(source), Groups: clean})
	})
	if err != nil {
		return nil, err
	}
	s.settle(ctx, entry, func() bool { return s.syncUsers(ctx, []string{userID}) })
	return out, nil
}

func sourceGroups(set groupgate.GroupSet, source groupgate.MembershipSource) []string {
	out := []string{}
	for _, m := range set {
		if m.Source == source {
			out = append(out, m.Group)
		}
	}
	return out
}

// DeactivateUser marks the user inactive, so that logins are refused, and
// ends every session they have. NotFound for an unknown user.
func (s *Syncer) DeactivateUser(ctx context.Context, actor, userID string) (groupgate.User, error) {
	var (
		out   groupgate.User
		entry int64
	)
	err := s.st.InTx(ctx, func(tx store.Store) error {
		before, err := tx.GetUser(ctx, userID)
		if err != nil {
			return fmt.Errorf("load user %s: %w", userID, err)
		}
		u, err := tx.UpdateUser(ctx, userID, func(u *groupgate.User) error {
			u.Active = false
			return nil
		})
		if err != nil {
			return fmt.Errorf("deactivate user %s: %w", userID, err)
		}
		out = u
		if err := s.record(ctx, tx, &entry, []string{userID}, nil); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, ActionUserDeactivate, "user", userID, viewUser(before), viewUser(u))
	})
	if err != nil {
		return groupgate.User{}, err
	}
	s.settle(ctx, entry, func() bool { return s.endSessions(ctx, userID) })
	return out, nil
}
