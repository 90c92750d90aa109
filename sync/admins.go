package sync

import (
	"strings"

	"github.com/groupgate/groupgate"
)

// Admins is the set of instance admins (config admins:). It is the one
// place that decides who they are, for the Connect API and the admin
// console alike. The zero value has no admins.
type Admins struct {
	byKey map[string]string // NormalizeEmail(entry) → entry as configured
}

// NewAdmins returns the admins named by emails; blank entries are skipped.
func NewAdmins(emails []string) Admins {
	a := Admins{byKey: map[string]string{}}
	a.add(emails)
	return a
}

// With returns a copy of a with emails added.
func (a Admins) With(emails []string) Admins {
	out := Admins{byKey: make(map[string]string, len(a.byKey)+len(emails))}
	for k, v := range a.byKey {
		out.byKey[k] = v
	}
	out.add(emails)
	return out
}

func (a Admins) add(emails []string) {
	for _, e := range emails {
		if e = strings.TrimSpace(e); e != "" {
			a.byKey[groupgate.NormalizeEmail(e)] = e
		}
	}
}

// IsAdmin reports whether u is an instance admin: an entry is its
// verified email (User.VerifiedEmail: written only by a login whose IdP
// said email_verified or whose provider vouches, never by SCIM or the
// API) spelled alike up to ASCII case, and the account's current email is
// still that address. So a SCIM client rewriting an email, or an IdP
// asserting an address it did not verify, or a look-alike spelling (Kelvin
// sign, fullwidth letters), makes nobody an admin; SCIM moving the email
// away does end it. A deactivated user is no admin.
func (a Admins) IsAdmin(u groupgate.User) bool {
	if u.VerifiedEmail == "" || !u.Active {
		return false
	}
	key := groupgate.NormalizeEmail(u.VerifiedEmail)
	entry, ok := a.byKey[key]
	return ok && groupgate.SameEmailSpelling(entry, u.VerifiedEmail) && groupgate.NormalizeEmail(u.Email) == key
}

// MayChangeOrgMember reports whether someone holding own on an
// organization may grant, change or remove each of roles by hand there:
// never a role above their own, so that an ADMIN cannot make (or unmake)
// an OWNER. Instance admins act as OWNER. Whether they administer the
// organization at all is CanAdminOrg's question.
func MayChangeOrgMember(own groupgate.OrgRole, roles ...groupgate.OrgRole) bool {
	for _, r := range roles {
		if OrgRoleRank(r) > OrgRoleRank(own) {
			return false
		}
	}
	return true
}
