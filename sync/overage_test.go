package sync_test

import (
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

func TestHoldsSCIMGroups(t *testing.T) {
	e := newEnv(t, sync.WithGroupFilter(func(g string) bool { return g != "hidden" }), sync.WithTrustedEmailProviders("entra"))
	e.user("alice", "eng")         // SCIM memberships
	e.user("hiddenonly", "hidden") // only a group the filter hides
	bob := e.user("bob")           // no SCIM memberships
	if _, err := e.st.UpdateGroupSet(e.ctx, bob.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) {
		return groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceLogin}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"s1", "s2"} {
		if _, err := e.st.CreateUser(e.ctx, groupgate.User{UserName: n, Email: "shared@example.com", Active: true}); err != nil {
			t.Fatal(err)
		}
	}
	gone := e.user("gone", "eng")
	if _, err := e.s.DeactivateUser(e.ctx, "admin", gone.ID); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		ident groupgate.Identity
		want  bool
	}{
		{"a user whose groups SCIM pushed, matched by email the provider vouches for", groupgate.Identity{Provider: "entra", Subject: "x1", Email: "ALICE@example.com"}, true},
		{"a user whose groups SCIM pushed is never matched by user name", groupgate.Identity{Provider: "entra", Subject: "x2", Username: "alice"}, false},
		{"an unverified email from a provider that does not vouch matches nobody", groupgate.Identity{Provider: "okta", Subject: "x7", Email: "alice@example.com"}, false},
		{"a user whose only memberships came from logins", groupgate.Identity{Provider: "entra", Subject: "x3", Email: "bob@example.com"}, false},
		{"a user whose SCIM groups are all hidden by the filter", groupgate.Identity{Provider: "entra", Subject: "x4", Email: "hiddenonly@example.com"}, false},
		{"a deactivated user", groupgate.Identity{Provider: "entra", Subject: "x5", Email: "gone@example.com"}, false},
		{"an unknown user", groupgate.Identity{Provider: "entra", Subject: "x6", Email: "nobody@example.com"}, false},
		{"an email several accounts share", groupgate.Identity{Provider: "entra", Subject: "x8", Email: "shared@example.com"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.s.HoldsSCIMGroups(e.ctx, tt.ident)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("HoldsSCIMGroups = %v, want %v", got, tt.want)
			}
		})
	}
}
