package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/groupgate/groupgate"
)

// onlyUser turns a ListUsersByEmail answer into one user: NotFound for
// none, Conflict for several, so that lookup tables can share a shape.
func onlyUser(users []groupgate.User, err error) (groupgate.User, error) {
	switch {
	case err != nil:
		return groupgate.User{}, err
	case len(users) == 0:
		return groupgate.User{}, groupgate.Errorf(groupgate.NotFound, "no user with this email")
	case len(users) > 1:
		return groupgate.User{}, groupgate.Errorf(groupgate.Conflict, "%d users with this email", len(users))
	}
	return users[0], nil
}

// emails: one key (groupgate.NormalizeEmail) computed in Go and stored,
// compared as stored by every backend, so that SQLite and PostgreSQL
// answer alike for spellings their own folding treats differently.
func (s suite) emails(t *testing.T) {
	t.Run("every backend folds emails with groupgate.NormalizeEmail and nothing else", func(t *testing.T) {
		stored := []string{
			"kelly@example.com",
			"\u0131vy@example.com", // ıvy, Turkish dotless i
			"Mixed.Case@Example.COM",
			"\uff4c\uff49\uff4c\uff59@example.com", // ｌｉｌｙ, fullwidth
		}
		cases := []struct {
			name   string
			lookup string
			want   []string // emails of the users found, in creation order
		}{
			{"mixed case finds the address", "MIXED.case@example.com", []string{"Mixed.Case@Example.COM"}},
			{"the Kelvin sign folds to k under the key", "\u212Aelly@example.com", []string{"kelly@example.com"}},
			{"a capital K finds kelly", "Kelly@Example.com", []string{"kelly@example.com"}},
			{"dotless ı is not i", "ivy@example.com", nil},
			{"dotless ı finds dotless ı", "\u0131VY@example.com", []string{"\u0131vy@example.com"}},
			{"capital dotted İ lowers to plain i, not to dotless ı", "\u0130vy@example.com", nil},
			{"ASCII finds the fullwidth address", "LILY@example.com", []string{"\uff4c\uff49\uff4c\uff59@example.com"}},
			{"a different address finds nothing", "kelly@example.org", nil},
			{"surrounding space is ignored", "  kelly@example.com ", []string{"kelly@example.com"}},
		}
		ctx, st := s.fresh(t)
		for i, e := range stored {
			must[groupgate.User](t, "create user")(st.CreateUser(ctx, groupgate.User{UserName: fmt.Sprintf("u%d", i), Email: e}))
		}
		for _, tc := range cases {
			got := must[[]groupgate.User](t, "list users by email")(st.ListUsersByEmail(ctx, tc.lookup))
			var emails []string
			for _, u := range got {
				emails = append(emails, u.Email)
			}
			if !slices.Equal(emails, tc.want) {
				t.Errorf("%s: ListUsersByEmail(%q) = %q, want %q", tc.name, tc.lookup, emails, tc.want)
			}
		}
	})

	t.Run("the email lookup returns every user sharing the key, oldest first", func(t *testing.T) {
		ctx, st := s.fresh(t)
		a := must[groupgate.User](t, "create a")(st.CreateUser(ctx, groupgate.User{UserName: "a", Email: "kelly@example.com"}))
		b := must[groupgate.User](t, "create b")(st.CreateUser(ctx, groupgate.User{UserName: "b", Email: "\u212Aelly@example.com"}))
		must[groupgate.User](t, "create c")(st.CreateUser(ctx, groupgate.User{UserName: "c", Email: "other@example.com"}))
		got := must[[]groupgate.User](t, "list")(st.ListUsersByEmail(ctx, "KELLY@example.com"))
		if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
			t.Fatalf("ListUsersByEmail = %+v, want a then b", got)
		}
	})

	t.Run("an update moves the user to the key of the new email", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := must[groupgate.User](t, "create")(st.CreateUser(ctx, groupgate.User{UserName: "u", Email: "old@example.com"}))
		must[groupgate.User](t, "update")(st.UpdateUser(ctx, u.ID, func(u *groupgate.User) error {
			u.Email = "New@Example.com"
			return nil
		}))
		if got := must[[]groupgate.User](t, "list old")(st.ListUsersByEmail(ctx, "old@example.com")); len(got) != 0 {
			t.Errorf("the old email still finds %d users", len(got))
		}
		if got := must[[]groupgate.User](t, "list new")(st.ListUsersByEmail(ctx, "new@example.com")); len(got) != 1 || got[0].ID != u.ID {
			t.Errorf("the new email finds %+v", got)
		}
	})

	t.Run("users without an email never match, not even the empty email", func(t *testing.T) {
		ctx, st := s.fresh(t)
		must[groupgate.User](t, "create")(st.CreateUser(ctx, groupgate.User{UserName: "bare"}))
		for _, e := range []string{"", "  "} {
			if got := must[[]groupgate.User](t, "list")(st.ListUsersByEmail(ctx, e)); len(got) != 0 {
				t.Errorf("ListUsersByEmail(%q) = %+v, want none", e, got)
			}
		}
	})

	t.Run("the verified email round-trips and is kept by updates that do not touch it", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := must[groupgate.User](t, "create")(st.CreateUser(ctx, groupgate.User{UserName: "v", Email: "v@example.com", VerifiedEmail: "v@example.com"}))
		got := must[groupgate.User](t, "update")(st.UpdateUser(ctx, u.ID, func(u *groupgate.User) error {
			u.Email = "root@example.com"
			return nil
		}))
		if got.VerifiedEmail != "v@example.com" {
			t.Errorf("VerifiedEmail = %q after an email change, want it kept", got.VerifiedEmail)
		}
		if again := must[groupgate.User](t, "get")(st.GetUser(ctx, u.ID)); again.VerifiedEmail != "v@example.com" || again.Email != "root@example.com" {
			t.Errorf("stored user = %+v", again)
		}
	})
}
