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
	// Forward-auth sets these on every request: the five values share one
	// backing array, each sliced to capacity 1 so that a later Add to one
	// header reallocates instead of overwriting its neighbour. The names are
	// already canonical, which is all h.Set would add.
	vals := make([]string, 5)
	vals[0] = headerSafe(ih.User)
	vals[1] = headerSafe(ih.Email)
	vals[2] = joinList(ih.Memberships.Groups)
	vals[3] = joinRoles(ih.Memberships.OrgRoles)
	vals[4] = joinRoles(ih.Memberships.RepoRoles)
	h[HeaderUser] = vals[0:1:1]
	h[HeaderEmail] = vals[1:2:2]
	h[HeaderGroups] = vals[2:3:3]
	h[HeaderOrgRoles] = vals[3:4:4]
	h[HeaderRepoRoles] = vals[4:5:5]
}

// StripIdentityHeaders removes every header a client sent that an upstream
// could read as an identity header: any name that, compared without case
// and with "_" read as "-", starts with X-Auth-Request-. CGI (RFC 3875
// §4.1.18), WSGI (PEP 3333) and Rack map "-" to "_" and upper-case names,
// so X_Auth_Request_User lands in the same variable as X-Auth-Request-User
// and would be merged with, or replace, the value groupgate sets.
func StripIdentityHeaders(h http.Header) {
	for name := range h {
		if headerNameHasPrefix(name, identityHeaderPrefix) {
			delete(h, name)
		}
	}
}

// headerNameHasPrefix reports whether name starts with prefix, a canonical
// header name prefix, compared as CGI-style gateways compare names: ASCII
// case-insensitively, "_" and "-" alike.
func headerNameHasPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		a, b := name[i], prefix[i]
		if a == '_' {
			a = '-'
		}
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// headerNameIs is headerNameHasPrefix for the whole name.
func headerNameIs(name, want string) bool {
	return len(name) == len(want) && headerNameHasPrefix(name, want)
}

// joinList writes items comma-separated, in one allocation (none for a
// single clean item).
func joinList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return headerSafe(items[0])
	}
	n := len(items) - 1
	for _, it := range items {
		n += len(it)
	}
	var b strings.Builder
	b.Grow(n)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		writeSafe(&b, it)
	}
	return b.String()
}

// joinRoles writes name=role pairs sorted by name, so the header is the
// same for the same roles whatever the map order.
func joinRoles[R ~string](roles map[string]R) string {
	if len(roles) == 0 {
		return ""
	}
	// Most users hold a handful of roles: sort their names on the stack.
	var buf [16]string
	keys := buf[:0]
	n := len(roles) - 1
	for k, r := range roles {
		keys = append(keys, k)
		n += len(k) + 1 + len(r)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(n)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeSafe(&b, k)
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

// writeSafe is headerSafe writing into b.
func writeSafe(b *strings.Builder, s string) {
	if strings.IndexFunc(s, isControl) < 0 {
		b.WriteString(s)
		return
	}
	for _, r := range s {
		if !isControl(r) {
			b.WriteRune(r)
		}
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
