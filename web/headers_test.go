package web

import (
	"fmt"
	"net/http"
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
			name: "control characters in IdP-supplied names are dropped",
			in:   IdentityHeaders{User: "mallory\r\nX-Evil: 1", Memberships: groupgate.Memberships{Groups: []string{"a\nb"}}},
			want: map[string]string{HeaderUser: "malloryX-Evil: 1", HeaderGroups: "ab"},
		},
		{
			name: "control characters are dropped from every group and role name of a list",
			in: IdentityHeaders{User: "dave", Memberships: groupgate.Memberships{
				Groups:   []string{"eng", "ops\r\nX-Evil: 1", "sre"},
				OrgRoles: map[string]groupgate.OrgRole{"ac\x00me": groupgate.OrgRoleOwner, "beta": groupgate.OrgRoleMember},
			}},
			want: map[string]string{HeaderGroups: "eng,opsX-Evil: 1,sre", HeaderOrgRoles: "acme=OWNER,beta=MEMBER"},
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
