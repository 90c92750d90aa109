package web

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
)

func TestIdentityHeaders(t *testing.T) {
	tests := []struct {
		name string
		in   IdentityHeaders
		want map[string]string
	}{
		{
			name: "a user with groups and roles gets every header, sorted",
			in: IdentityHeaders{User: "alice", Email: "alice@example.com", Memberships: groupgate.Memberships{
				Groups:    []string{"eng", "platform-admins"},
				OrgRoles:  map[string]groupgate.OrgRole{"beta": groupgate.OrgRoleMember, "acme": groupgate.OrgRoleAdmin},
				RepoRoles: map[string]groupgate.RepoRole{"acme/api": groupgate.RepoRoleWrite},
			}},
			want: map[string]string{
				HeaderUser: "alice", HeaderEmail: "alice@example.com", HeaderGroups: "eng,platform-admins",
				HeaderOrgRoles: "acme=ADMIN,beta=MEMBER", HeaderRepoRoles: "acme/api=WRITE",
			},
		},
		{
			name: "a user without groups gets an empty groups header",
			in:   IdentityHeaders{User: "carol"},
			want: map[string]string{HeaderUser: "carol", HeaderGroups: "", HeaderOrgRoles: "", HeaderRepoRoles: ""},
		},
		{
			name: "control characters in IdP-supplied names are percent-encoded, so they forge no header",
			in:   IdentityHeaders{User: "mallory\r\nX-Evil: 1", Memberships: groupgate.Memberships{Groups: []string{"a\nb"}}},
			want: map[string]string{HeaderUser: "mallory%0D%0AX-Evil: 1", HeaderGroups: "a%0Ab"},
		},
		{
			name: "control characters are encoded in every group and role name of a list",
			in: IdentityHeaders{User: "dave", Memberships: groupgate.Memberships{
				Groups:   []string{"eng", "ops\r\nX-Evil: 1", "sre"},
				OrgRoles: map[string]groupgate.OrgRole{"ac\x00me": groupgate.OrgRoleOwner, "beta": groupgate.OrgRoleMember},
			}},
			want: map[string]string{HeaderGroups: "eng,ops%0D%0AX-Evil: 1,sre", HeaderOrgRoles: "ac%00me=OWNER,beta=MEMBER"},
		},
		{
			name: "a comma in a group name is encoded, so the group stays one",
			in: IdentityHeaders{User: "frank", Memberships: groupgate.Memberships{
				Groups: []string{"Sales, EMEA", "eng-x,platform-admins", "100%"},
			}},
			want: map[string]string{HeaderGroups: "Sales%2C EMEA,eng-x%2Cplatform-admins,100%25"},
		},
		{
			name: "an equals sign or comma in a role key is encoded, so it forges no role",
			in: IdentityHeaders{User: "grace", Memberships: groupgate.Memberships{
				OrgRoles:  map[string]groupgate.OrgRole{"x,acme=ADMIN": groupgate.OrgRoleMember},
				RepoRoles: map[string]groupgate.RepoRole{"acme/a=b": groupgate.RepoRoleRead},
			}},
			want: map[string]string{HeaderOrgRoles: "x%2Cacme%3DADMIN=MEMBER", HeaderRepoRoles: "acme/a%3Db=READ"},
		},
		{
			name: "spaces around a name are encoded, since list parsers trim them",
			in:   IdentityHeaders{User: " root ", Memberships: groupgate.Memberships{Groups: []string{" eng", "ops "}}},
			want: map[string]string{HeaderUser: "%20root%20", HeaderGroups: "%20eng,ops%20"},
		},
		{
			name: "more roles than the stack buffer holds are still all sorted",
			in:   IdentityHeaders{User: "erin", Memberships: groupgate.Memberships{RepoRoles: manyRepoRoles(20)}},
			want: map[string]string{HeaderRepoRoles: "o/r00=READ,o/r01=READ,o/r02=READ,o/r03=READ,o/r04=READ,o/r05=READ," +
				"o/r06=READ,o/r07=READ,o/r08=READ,o/r09=READ,o/r10=READ,o/r11=READ,o/r12=READ,o/r13=READ,o/r14=READ," +
				"o/r15=READ,o/r16=READ,o/r17=READ,o/r18=READ,o/r19=READ"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			tt.in.Set(h)
			for k, v := range tt.want {
				got, ok := h[http.CanonicalHeaderKey(k)]
				if !ok {
					t.Fatalf("header %s missing", k)
				}
				if got[0] != v {
					t.Errorf("%s = %q, want %q", k, got[0], v)
				}
			}
		})
	}
}

func manyRepoRoles(n int) map[string]groupgate.RepoRole {
	out := make(map[string]groupgate.RepoRole, n)
	for i := range n {
		out[fmt.Sprintf("o/r%02d", i)] = groupgate.RepoRoleRead
	}
	return out
}

// Set shares one backing array between the header values; adding to one
// header afterwards must not overwrite the next one.
func TestIdentityHeadersAddAfterSetKeepsNeighbours(t *testing.T) {
	h := http.Header{}
	IdentityHeaders{User: "alice", Email: "alice@example.com"}.Set(h)
	h.Add(HeaderUser, "second")
	if got := h.Values(HeaderUser); len(got) != 2 || got[0] != "alice" || got[1] != "second" {
		t.Fatalf("user header = %q, want [alice second]", got)
	}
	if got := h.Get(HeaderEmail); got != "alice@example.com" {
		t.Fatalf("email header = %q after adding a user value, want it unchanged", got)
	}
}

func TestStripIdentityHeaders(t *testing.T) {
	for _, tt := range []struct {
		name    string
		headers []string
		kept    bool
	}{
		{"canonical identity headers are dropped", []string{"X-Auth-Request-User", "X-Auth-Request-Anything"}, false},
		{"any case is dropped", []string{"x-auth-request-groups", "X-AUTH-REQUEST-EMAIL"}, false},
		{"underscores read as dashes are dropped", []string{"X_Auth_Request_User", "X-Auth_Request-Groups", "X_AUTH_REQUEST_ORG_ROLES", "x_auth_request_"}, false},
		{"other headers stay", []string{"X-Other", "X-Auth-Request", "X-Auth-Requests-User", "X_Auth", "Cookie"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, n := range tt.headers {
				h[n] = []string{"v"} // as spelled: no canonicalization
			}
			StripIdentityHeaders(h)
			if tt.kept && len(h) != len(tt.headers) || !tt.kept && len(h) != 0 {
				t.Fatalf("after strip: %v", h)
			}
		})
	}
}

func TestUsernameFallsBackToEmailThenSubject(t *testing.T) {
	for _, tt := range []struct {
		id   groupgate.Identity
		want string
	}{
		{groupgate.Identity{Username: "u", Email: "e", Subject: "s"}, "u"},
		{groupgate.Identity{Email: "e", Subject: "s"}, "e"},
		{groupgate.Identity{Subject: "s"}, "s"},
	} {
		if got := usernameOf(tt.id); got != tt.want {
			t.Errorf("usernameOf(%+v) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

// decodeIdentityName reverses the identity headers' encoding as an
// upstream would: percent-decoding, with anything left over that is not
// a plain name byte a failure.
func decodeIdentityName(t testing.TB, s string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) {
				t.Fatalf("truncated escape in %q", s)
			}
			var v byte
			for _, h := range []byte{s[i+1], s[i+2]} {
				switch {
				case '0' <= h && h <= '9':
					v = v<<4 | (h - '0')
				case 'A' <= h && h <= 'F':
					v = v<<4 | (h - 'A' + 10)
				default:
					t.Fatalf("bad escape in %q", s)
				}
			}
			b.WriteByte(v)
			i += 2
		case c == ',' || c == '=' || c < 0x20 || c == 0x7f:
			t.Fatalf("raw %q in the name %q", c, s)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// trimOWS is what an HTTP parser does to a field value and to each
// element of a list (RFC 9110 §5.5, §5.6.1).
func trimOWS(s string) string { return strings.Trim(s, " \t") }

// parseIdentityList splits a list header as an upstream would: on ",",
// each element trimmed and decoded.
func parseIdentityList(t testing.TB, v string) []string {
	t.Helper()
	if trimOWS(v) == "" {
		return nil
	}
	var out []string
	for el := range strings.SplitSeq(v, ",") {
		out = append(out, decodeIdentityName(t, trimOWS(el)))
	}
	return out
}

// parseIdentityRoles splits a roles header into name → role.
func parseIdentityRoles(t testing.TB, v string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, el := range strings.Split(trimOWS(v), ",") {
		if el == "" {
			continue
		}
		k, r, ok := strings.Cut(el, "=")
		if !ok {
			t.Fatalf("role entry %q has no =", el)
		}
		name := decodeIdentityName(t, trimOWS(k))
		if _, dup := out[name]; dup {
			t.Fatalf("role for %q appears twice in %q", name, v)
		}
		out[name] = r
	}
	return out
}

// checkIdentityRoundTrip sets the headers of in and parses them back as
// an upstream would: the names must be exactly the ones groupgate holds,
// and every value a valid, single-line HTTP field value.
func checkIdentityRoundTrip(t testing.TB, in IdentityHeaders) {
	t.Helper()
	h := http.Header{}
	in.Set(h)
	for _, k := range []string{HeaderUser, HeaderEmail, HeaderGroups, HeaderOrgRoles, HeaderRepoRoles} {
		vs := h[k]
		if len(vs) != 1 {
			t.Fatalf("%s has %d values", k, len(vs))
		}
		for i := 0; i < len(vs[0]); i++ {
			if c := vs[0][i]; c < 0x20 || c == 0x7f {
				t.Fatalf("%s = %q holds a control byte", k, vs[0])
			}
		}
	}
	if got := decodeIdentityName(t, trimOWS(h.Get(HeaderUser))); got != in.User {
		t.Errorf("user %q reads back as %q", in.User, got)
	}
	if got := decodeIdentityName(t, trimOWS(h.Get(HeaderEmail))); got != in.Email {
		t.Errorf("email %q reads back as %q", in.Email, got)
	}
	if got := parseIdentityList(t, h.Get(HeaderGroups)); !slices.Equal(got, in.Memberships.Groups) {
		t.Errorf("groups %q read back as %q (header %q)", in.Memberships.Groups, got, h.Get(HeaderGroups))
	}
	wantOrgs := map[string]string{}
	for k, r := range in.Memberships.OrgRoles {
		wantOrgs[k] = string(r)
	}
	if got := parseIdentityRoles(t, h.Get(HeaderOrgRoles)); !maps.Equal(got, wantOrgs) {
		t.Errorf("org roles %q read back as %q (header %q)", wantOrgs, got, h.Get(HeaderOrgRoles))
	}
	wantRepos := map[string]string{}
	for k, r := range in.Memberships.RepoRoles {
		wantRepos[k] = string(r)
	}
	if got := parseIdentityRoles(t, h.Get(HeaderRepoRoles)); !maps.Equal(got, wantRepos) {
		t.Errorf("repo roles %q read back as %q (header %q)", wantRepos, got, h.Get(HeaderRepoRoles))
	}
}

func TestIdentityHeadersParseBackToExactlyTheNames(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   IdentityHeaders
	}{
		{"plain names", IdentityHeaders{User: "alice", Email: "alice@example.com", Memberships: groupgate.Memberships{
			Groups: []string{"eng", "platform-admins"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin},
			RepoRoles: map[string]groupgate.RepoRole{"acme/api": groupgate.RepoRoleWrite}}}},
		{"a group that looks like two", IdentityHeaders{User: "bob", Memberships: groupgate.Memberships{
			Groups: []string{"eng-x,platform-admins"}}}},
		{"a directory group with a comma and a space", IdentityHeaders{User: "bob", Memberships: groupgate.Memberships{
			Groups: []string{"Sales, EMEA", "Sales"}}}},
		{"role keys that forge entries", IdentityHeaders{User: "bob", Memberships: groupgate.Memberships{
			OrgRoles:  map[string]groupgate.OrgRole{"x,acme=ADMIN": groupgate.OrgRoleMember, "acme": groupgate.OrgRoleMember},
			RepoRoles: map[string]groupgate.RepoRole{"a/b=OWNER,c/d": groupgate.RepoRoleRead}}}},
		{"names that already look encoded", IdentityHeaders{User: "%2C", Email: "a%40b", Memberships: groupgate.Memberships{
			Groups: []string{"%25", "100%", "%"}}}},
		{"control characters, spaces and non-ASCII", IdentityHeaders{User: "root\r\nX-Evil: 1", Email: " é@example.com ",
			Memberships: groupgate.Memberships{Groups: []string{"\t", " eng ", "日本", "a\x7fb"}}}},
		{"a user whose name is a user list", IdentityHeaders{User: "bob,root", Email: "bob@example.com"}},
	} {
		t.Run(tt.name, func(t *testing.T) { checkIdentityRoundTrip(t, tt.in) })
	}
}

// FuzzIdentityHeaderRoundTrip: whatever the names (IdP groups, SCIM
// attributes, organization and repository names), the identity headers
// parse back to exactly them.
func FuzzIdentityHeaderRoundTrip(f *testing.F) {
	f.Add("alice", "alice@example.com", "eng", "platform-admins", "acme", "acme/api")
	f.Add("bob,root", "bob@example.com", "eng-x,platform-admins", "Sales, EMEA", "x,acme=ADMIN", "acme/api=OWNER")
	f.Add("mallory\r\nX-Evil: 1", "%41", "100%", " lead", "a\x00b", "trail ")
	f.Fuzz(func(t *testing.T, user, email, g1, g2, org, repo string) {
		var groups []string
		for _, g := range []string{g1, g2} {
			// Names are never empty: an empty element is no element in an
			// HTTP list (RFC 9110 §5.6.1).
			if g != "" {
				groups = append(groups, g)
			}
		}
		m := groupgate.Memberships{Groups: groups, OrgRoles: map[string]groupgate.OrgRole{}, RepoRoles: map[string]groupgate.RepoRole{}}
		for _, k := range []string{org, g1} {
			if k != "" {
				m.OrgRoles[k] = groupgate.OrgRoleAdmin
			}
		}
		if repo != "" {
			m.RepoRoles[repo] = groupgate.RepoRoleWrite
		}
		checkIdentityRoundTrip(t, IdentityHeaders{User: user, Email: email, Memberships: m})
	})
}
