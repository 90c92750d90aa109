package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/groupgate/groupgate"
)

// The identity headers of ARCHITECTURE.md §4, sent on a 200 from /auth and
// set on upstream requests in reverse-proxy mode.
const (
	HeaderUser      = "X-Auth-Request-User"
	HeaderEmail     = "X-Auth-Request-Email"
	HeaderGroups    = "X-Auth-Request-Groups"
	HeaderOrgRoles  = "X-Auth-Request-Org-Roles"
	HeaderRepoRoles = "X-Auth-Request-Repo-Roles"

	identityHeaderPrefix = "X-Auth-Request-"
)

// IdentityHeaders is the caller as the proxy and the upstream see it.
type IdentityHeaders struct {
	User        string
	Email       string
	Memberships groupgate.Memberships
}

// usernameOf applies ARCHITECTURE.md §7: username, else email, else subject.
func usernameOf(id groupgate.Identity) string {
	switch {
	case id.Username != "":
		return id.Username
	case id.Email != "":
		return id.Email
	default:
		return id.Subject
	}
}

// Set writes every identity header on h. Groups is always present, empty
// for a user with no groups, so an upstream can tell "no groups" from "not
// behind groupgate".
func (ih IdentityHeaders) Set(h http.Header) {
	h.Set(HeaderUser, headerSafe(ih.User))
	h.Set(HeaderEmail, headerSafe(ih.Email))
	h.Set(HeaderGroups, joinList(ih.Memberships.Groups))
	h.Set(HeaderOrgRoles, joinRoles(ih.Memberships.OrgRoles))
	h.Set(HeaderRepoRoles, joinRoles(ih.Memberships.RepoRoles))
}

// StripIdentityHeaders removes every X-Auth-Request-* header a client sent,
// so that only groupgate can assert an identity to the upstream.
func StripIdentityHeaders(h http.Header) {
	for name := range h {
		if len(name) >= len(identityHeaderPrefix) && strings.EqualFold(name[:len(identityHeaderPrefix)], identityHeaderPrefix) {
			delete(h, name)
		}
	}
}

func joinList(items []string) string {
	safe := make([]string, 0, len(items))
	for _, it := range items {
		safe = append(safe, headerSafe(it))
	}
	return strings.Join(safe, ",")
}

func joinRoles[R ~string](roles map[string]R) string {
	keys := make([]string, 0, len(roles))
	for k := range roles {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(headerSafe(k))
		b.WriteByte('=')
		b.WriteString(string(roles[k]))
	}
	return b.String()
}

// headerSafe drops control characters: IdP-supplied names end up in header
// values, where a CR or LF would let them forge headers.
func headerSafe(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, s)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
