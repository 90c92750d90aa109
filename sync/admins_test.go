package sync_test

import (
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

func TestInstanceAdminsAreBoundToAVerifiedEmail(t *testing.T) {
	admins := sync.NewAdmins([]string{" Alice@Example.com ", ""}).With([]string{"root@example.com"})
	user := func(email, verified string, active bool) groupgate.User {
		return groupgate.User{Email: email, VerifiedEmail: verified, Active: active}
	}
	cases := []struct {
		name string
		u    groupgate.User
		want bool
	}{
		{"a verified listed email is an admin", user("alice@example.com", "alice@example.com", true), true},
		{"ASCII case does not matter", user("ALICE@example.com", "ALICE@EXAMPLE.COM", true), true},
		{"an entry added later counts", user("root@example.com", "root@example.com", true), true},
		{"an unverified email is not", user("alice@example.com", "", true), false},
		{"an email moved away from the verified one ends it", user("other@example.com", "alice@example.com", true), false},
		{"a look-alike spelling is not", user("alice@example.com", "alice@exampl\u212a.com", true), false},
		{"a deactivated account is not", user("alice@example.com", "alice@example.com", false), false},
		{"an unlisted email is not", user("bob@example.com", "bob@example.com", true), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := admins.IsAdmin(tc.u); got != tc.want {
				t.Fatalf("IsAdmin = %v, want %v", got, tc.want)
			}
		})
	}
	if (sync.Admins{}).IsAdmin(user("alice@example.com", "alice@example.com", true)) {
		t.Fatal("the zero Admins has an admin")
	}
}
