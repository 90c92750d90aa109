package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"

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
// The user is found by the provider's subject; an unknown subject is linked
// to an existing account only by a verified email (see findLoginUser),
// else a new account is created. Their login-sourced groups are replaced by
// ident.Groups (after the group filter); SCIM-sourced ones stay. The new
// snapshot is returned for the session being created and pushed to the
// user's other live sessions. Forbidden for a deactivated user, Invalid
// without provider or subject, Conflict (nothing changed, a message safe
// to show) when the login cannot be linked or would take another
// account's user name or email.
func (s *Syncer) Login(ctx context.Context, ident groupgate.Identity) (groupgate.User, groupgate.Memberships, error) {
	if ident.Provider == "" || ident.Subject == "" {
		return groupgate.User{}, groupgate.Memberships{}, groupgate.Errorf(groupgate.Invalid, "identity without provider or subject")
	}
	groups := s.cleanGroups(ident.Groups)
	user, entry, err := s.login(ctx, ident, groups)
	if groupgate.IsCode(err, groupgate.Conflict) && !errors.Is(err, ErrLinkRefused) {
		// A concurrent first login of the same person created the user
		// between our lookup and our insert: the second try finds it.
		user, entry, err = s.login(ctx, ident, groups)
	}
	if err != nil {
		return groupgate.User{}, groupgate.Memberships{}, err
	}
	var a Access
	s.settle(ctx, entry, func() bool {
		var (
			pushed bool
			gen    int64
		)
		a, gen, pushed, err = s.syncUserGen(ctx, user.ID)
		if err == nil && pushed {
			// The Refresh after the caller saves the session may then
			// skip its resolution (logingen.go).
			s.loginGens.put(user.ID, gen, s.now())
		}
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

// ErrLinkRefused marks the Conflicts Login decides itself: a sign-in that
// cannot be linked to an account (an unverified or look-alike email, a
// second subject of one provider, a user name or email another account
// holds). No retry helps, as opposed to a store Conflict from a
// concurrent first login; an administrator must look.
var ErrLinkRefused = errors.New("the sign-in cannot be linked to an account")

// ErrDeactivated is the cause when a deactivated account (SCIM
// active=false) tries to log in.
var ErrDeactivated = errors.New("account deactivated")

func refuseLogin(format string, args ...any) error {
	return groupgate.WrapError(groupgate.Conflict, ErrLinkRefused, format, args...)
}

// emailVerified reports whether ident's email may be trusted as the
// person's: the IdP said so (OIDC email_verified), or the provider is
// configured to vouch for its emails.
func (s *Syncer) emailVerified(ident groupgate.Identity) bool {
	return ident.Email != "" && (ident.EmailVerified || s.trustEmail[ident.Provider])
}

func (s *Syncer) login(ctx context.Context, ident groupgate.Identity, groups []string) (groupgate.User, int64, error) {
	var (
		out   groupgate.User
		entry int64
	)
	verified := s.emailVerified(ident)
	err := s.st.InTx(ctx, func(tx store.Store) error {
		u, how, err := s.findLoginUser(ctx, tx, ident)
		var (
			before any
			// prior is the existing user's view; its groups are read
			// below, where the group set is locked and read anyway.
			prior *userView
		)
		// A user found by subject is linked already, by the row that
		// found them, read in this transaction: linking again would only
		// cost round trips (a savepoint, an insert that does nothing, a
		// read of the owner).
		linked := err == nil && how == foundBySubject
		switch {
		case groupgate.IsCode(err, groupgate.NotFound):
			if u, err = createLoginUser(ctx, tx, ident, verified); err != nil {
				return racedOr(ctx, tx, ident, err)
			}
		case err != nil:
			return racedOr(ctx, tx, ident, err)
		default:
			if !u.Active {
				return groupgate.WrapError(groupgate.Forbidden, ErrDeactivated, "account deactivated")
			}
			v := viewUser(u)
			prior = &v
			if u, err = s.refreshProfile(ctx, tx, u, ident, how, verified); err != nil {
				return err
			}
		}
		if !linked {
			if err := tx.LinkIdentity(ctx, u.ID, ident.Provider, ident.Subject); err != nil {
				return fmt.Errorf("link %s identity to user %s: %w", ident.Provider, u.ID, err)
			}
		}
		set, err := tx.UpdateGroupSet(ctx, u.ID, func(old groupgate.GroupSet) (groupgate.GroupSet, error) {
			if prior != nil {
				prior.Groups = old.Names()
			}
			return replaceSource(old, groupgate.SourceLogin, groups), nil
		})
		if err != nil {
			return fmt.Errorf("update group set of %s: %w", u.ID, err)
		}
		if prior != nil {
			before = *prior
		}
		out = u
		after := viewUser(u)
		after.Groups = set.Names()
		return s.recordAudited(ctx, tx, &entry, []string{u.ID}, "user:"+u.ID, ActionUserLogin, "user", u.ID, before, after)
	})
	return out, entry, err
}

// racedOr returns err, unless err is a refusal and a concurrent login of
// the same identity has linked it meanwhile (two tabs, two replicas): the
// account it found or created is then this person's, not another's, and a
// plain Conflict makes Login try again and find it by subject.
func racedOr(ctx context.Context, tx store.Store, ident groupgate.Identity, err error) error {
	if !errors.Is(err, ErrLinkRefused) {
		return err
	}
	if _, lerr := tx.GetUserByIdentity(ctx, ident.Provider, ident.Subject); lerr == nil {
		// Not wrapping err: errors.Is(…, ErrLinkRefused) must be false.
		return groupgate.Errorf(groupgate.Conflict, "a concurrent login of %s/%s linked it first", ident.Provider, ident.Subject)
	}
	return err
}

// createLoginUser creates the account of a subject that matched none. Its
// user name and email must be free: a user name is never a reason to link
// (anyone may pick one at some IdP), and an email another account has is
// not stored on a second one by a login, since the next verified login
// with that address could then link to neither.
func createLoginUser(ctx context.Context, tx store.Store, ident groupgate.Identity, verified bool) (groupgate.User, error) {
	userName := cmp.Or(ident.Username, ident.Email, ident.Subject)
	if ident.Email != "" {
		others, err := tx.ListUsersByEmail(ctx, ident.Email)
		if err != nil {
			return groupgate.User{}, fmt.Errorf("find users by email: %w", err)
		}
		if len(others) > 0 {
			return groupgate.User{}, refuseLogin("an account with the email address %s already exists, and this sign-in cannot be linked to it "+
				"(the identity provider %q did not say the address is verified, or it is spelled differently); ask an administrator",
				ident.Email, ident.Provider)
		}
	}
	switch _, err := tx.GetUserByUserName(ctx, userName); {
	case err == nil:
		return groupgate.User{}, refuseLogin("the user name %s belongs to another account; "+
			"sign in with the identity provider that account uses, or ask an administrator", userName)
	case !groupgate.IsCode(err, groupgate.NotFound):
		return groupgate.User{}, fmt.Errorf("find user by user name: %w", err)
	}
	u := groupgate.User{UserName: userName, Email: ident.Email, DisplayName: ident.DisplayName, Active: true}
	if verified {
		u.VerifiedEmail = ident.Email
	}
	u, err := tx.CreateUser(ctx, u)
	if err != nil {
		return groupgate.User{}, fmt.Errorf("create user %q: %w", userName, err)
	}
	return u, nil
}

// How a login found its user.
type foundBy int

const (
	foundBySubject foundBy = iota // already linked
	foundByEmail                  // to be linked now
)

// findLoginUser finds the account an identity belongs to: the one its
// (provider, subject) is linked to; else, only when the email is verified
// (emailVerified), the one account whose email has the same key
// (groupgate.NormalizeEmail) and the same spelling up to ASCII case, and
// that no other subject of this provider is linked to. NotFound when there
// is none (a new account); Conflict (nothing to link, and nothing may be
// created) when the address is ambiguous or taken. Never by user name.
func (s *Syncer) findLoginUser(ctx context.Context, tx store.Store, ident groupgate.Identity) (groupgate.User, foundBy, error) {
	u, err := tx.GetUserByIdentity(ctx, ident.Provider, ident.Subject)
	if !groupgate.IsCode(err, groupgate.NotFound) {
		return u, foundBySubject, wrapLookup(err, "identity")
	}
	if !s.emailVerified(ident) {
		return groupgate.User{}, 0, err
	}
	users, err := tx.ListUsersByEmail(ctx, ident.Email)
	if err != nil {
		return groupgate.User{}, 0, wrapLookup(err, "email")
	}
	switch {
	case len(users) == 0:
		return groupgate.User{}, 0, groupgate.Errorf(groupgate.NotFound, "no account with this email")
	case len(users) > 1:
		return groupgate.User{}, 0, refuseLogin("several accounts have the email address %s, so this sign-in cannot be linked to one of them; ask an administrator", ident.Email)
	}
	u = users[0]
	if !groupgate.SameEmailSpelling(u.Email, ident.Email) {
		// Equal keys, different letters: a Kelvin sign for a K, a
		// fullwidth letter. Mail systems need not deliver both to one
		// mailbox, so proving one proves nothing about the other.
		return groupgate.User{}, 0, refuseLogin("the email address %s differs from an existing account's only by look-alike characters; ask an administrator", ident.Email)
	}
	ids, err := tx.ListIdentities(ctx, u.ID)
	if err != nil {
		return groupgate.User{}, 0, fmt.Errorf("list identities of user %s: %w", u.ID, err)
	}
	for _, id := range ids {
		if id.Provider == ident.Provider {
			// One account, one subject per provider: a second subject is
			// another person at that IdP (or the IdP re-created them),
			// which only an administrator can tell apart.
			return groupgate.User{}, 0, refuseLogin("the account with the email address %s is already linked to another %s identity; ask an administrator", ident.Email, ident.Provider)
		}
	}
	return u, foundByEmail, nil
}

func wrapLookup(err error, by string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("find user by %s: %w", by, err)
}

// refreshProfile stores the email and display name the IdP sent, when they
// changed, and the verified email. Only a subject already linked to the
// account may change its email (a just-linked one matched it), and never
// to an address another account has: that login is refused, nothing
// changed. The verified email follows the email when the login proves it,
// and is cleared when the account's address moves to an unproven one.
func (s *Syncer) refreshProfile(ctx context.Context, tx store.Store, u groupgate.User, ident groupgate.Identity, how foundBy, verified bool) (groupgate.User, error) {
	email, name, proven := u.Email, u.DisplayName, u.VerifiedEmail
	if how == foundBySubject && ident.Email != "" && ident.Email != u.Email {
		if groupgate.NormalizeEmail(ident.Email) != groupgate.NormalizeEmail(u.Email) {
			others, err := tx.ListUsersByEmail(ctx, ident.Email)
			if err != nil {
				return u, fmt.Errorf("find users by email: %w", err)
			}
			for _, o := range others {
				if o.ID != u.ID {
					s.log.WarnContext(ctx, "login email belongs to another user; login refused",
						"user", u.ID, "other_user", o.ID, "provider", ident.Provider)
					return u, refuseLogin("the identity provider %q now gives your account the email address %s, which another account has; "+
						"nothing was changed; ask an administrator", ident.Provider, ident.Email)
				}
			}
		}
		email = ident.Email
	}
	switch {
	case verified && groupgate.NormalizeEmail(ident.Email) == groupgate.NormalizeEmail(email):
		proven = ident.Email
	case groupgate.NormalizeEmail(proven) != groupgate.NormalizeEmail(email):
		proven = ""
	}
	if ident.DisplayName != "" {
		name = ident.DisplayName
	}
	if email == u.Email && name == u.DisplayName && proven == u.VerifiedEmail {
		return u, nil // no write: the SCIM version (ETag) stays
	}
	updated, err := tx.UpdateUser(ctx, u.ID, func(u *groupgate.User) error {
		u.Email, u.DisplayName, u.VerifiedEmail = email, name, proven
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
