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
//
// Every name (user, email, group, organization, repository) is written
// with encodeName, so that each header parses back to exactly the names
// groupgate holds: split lists on ",", role entries on "=", then
// percent-decode each name.
func (ih IdentityHeaders) Set(h http.Header) {
	// Forward-auth sets these on every request: the five values share one
	// backing array, each sliced to capacity 1 so that a later Add to one
	// header reallocates instead of overwriting its neighbour. The names are
	// already canonical, which is all h.Set would add.
	vals := make([]string, 5)
	vals[0] = encodeName(ih.User)
	vals[1] = encodeName(ih.Email)
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

// joinList writes items comma-separated, each encoded, in one allocation
// (none for a single plain item).
func joinList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return encodeName(items[0])
	}
	n := len(items) - 1
	for _, it := range items {
		n += encodedLen(it)
	}
	var b strings.Builder
	b.Grow(n)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		writeName(&b, it)
	}
	return b.String()
}

// joinRoles writes name=role pairs sorted by name, so the header is the
// same for the same roles whatever the map order. Roles are fixed words
// (ADMIN, WRITE, …): only the names need encoding.
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
		n += encodedLen(k) + 1 + len(r)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(n)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeName(&b, k)
		b.WriteByte('=')
		b.WriteString(string(roles[k]))
	}
	return b.String()
}

// The identity headers carry names that IdPs, SCIM clients and API
// callers choose, and directories hold groups such as "Sales, EMEA", so
// names are encoded rather than refused. encodeName writes as %XX
// (RFC 3986 §2.1 percent-encoding, upper-case hex) every byte of a name
// that would change how a header parses:
//
//   - "," separates list entries and "=" a name from its role;
//   - "%" itself, so that decoding is unambiguous;
//   - control bytes (U+0000–U+001F, U+007F): a CR or LF would forge a
//     header, and the rest are not valid in a field value (RFC 9110 §5.5);
//   - a space at either end of a name, which HTTP parsers trim from field
//     values and list elements (RFC 9110 §5.5, §5.6.1).
//
// Every other byte, UTF-8 included, is written as is, so a plain name
// such as "eng" or "acme/api" reads the same encoded or not.
func encodeName(s string) string {
	if !needsEncoding(s) {
		return s
	}
	var b strings.Builder
	b.Grow(encodedLen(s))
	writeName(&b, s)
	return b.String()
}

// mustEncode reports whether byte i of s is written as %XX.
func mustEncode(s string, i int) bool {
	switch c := s[i]; {
	case c == ',' || c == '=' || c == '%' || c < 0x20 || c == 0x7f:
		return true
	case c == ' ':
		return i == 0 || i == len(s)-1
	}
	return false
}

func needsEncoding(s string) bool {
	for i := 0; i < len(s); i++ {
		if mustEncode(s, i) {
			return true
		}
	}
	return false
}

// encodedLen is the length of encodeName(s).
func encodedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if mustEncode(s, i) {
			n += 2
		}
	}
	return n
}

// writeName is encodeName writing into b.
func writeName(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		if !mustEncode(s, i) {
			continue
		}
		b.WriteString(s[start:i])
		b.WriteByte('%')
		b.WriteByte(hex[s[i]>>4])
		b.WriteByte(hex[s[i]&0xf])
		start = i + 1
	}
	b.WriteString(s[start:])
}
