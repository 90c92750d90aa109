package web

import (
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

func TestStripIdentityHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("X-Auth-Request-User", "admin")
	h["x-auth-request-groups"] = []string{"platform-admins"} // non-canonical spelling
	h.Set("X-Auth-Request-Anything", "x")
	h.Set("X-Other", "kept")
	StripIdentityHeaders(h)
	if len(h) != 1 || h.Get("X-Other") != "kept" {
		t.Fatalf("after strip: %v", h)
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
