package storetest

import (
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

func (s suite) users(t *testing.T) {
	t.Run("a created user round-trips through every lookup", func(t *testing.T) {
		ctx, st := s.fresh(t)
		in := groupgate.User{
			UserName: "Alice.Smith", Email: "Alice@Example.COM", VerifiedEmail: "alice@example.com", DisplayName: "Alice Smith (Zoë, 山田) \u2013 ok",
			Active: true, ExternalID: "Ext-0001",
			SCIM:      json.RawMessage(`{"name":{"givenName":"Alice","familyName":"Smith"},"emails":[{"value":"Alice@Example.COM","primary":true}]}`),
			CreatedAt: fixedTime(1), UpdatedAt: fixedTime(2), Version: 42,
		}
		u := must[groupgate.User](t, "create user")(st.CreateUser(ctx, in))
		if u.ID == "" {
			t.Fatal("created user has no ID")
		}
		checkTime(t, "CreatedAt", u.CreatedAt)
		checkTime(t, "UpdatedAt", u.UpdatedAt)
		checkNotBefore(t, "UpdatedAt vs CreatedAt", u.UpdatedAt, u.CreatedAt)
		if u.CreatedAt.Equal(in.CreatedAt) {
			t.Errorf("CreatedAt = caller's %v, want the store's clock", u.CreatedAt)
		}
		if u.Version != 1 {
			t.Errorf("Version = %d, want 1", u.Version)
		}
		want := in
		want.ID, want.CreatedAt, want.UpdatedAt, want.Version = u.ID, u.CreatedAt, u.UpdatedAt, 1
		wantEqual(t, "created user", u, want)

		lookups := []struct {
			name string
			get  func() (groupgate.User, error)
		}{
			{"by ID", func() (groupgate.User, error) { return st.GetUser(ctx, u.ID) }},
			{"by userName in its own case", func() (groupgate.User, error) { return st.GetUserByUserName(ctx, "Alice.Smith") }},
			{"by userName in another case", func() (groupgate.User, error) { return st.GetUserByUserName(ctx, "aLICE.sMITH") }},
			{"by email in its own case", func() (groupgate.User, error) { return onlyUser(st.ListUsersByEmail(ctx, "Alice@Example.COM")) }},
			{"by email in another case", func() (groupgate.User, error) { return onlyUser(st.ListUsersByEmail(ctx, "alice@example.com")) }},
			{"by externalId", func() (groupgate.User, error) { return st.GetUserByExternalID(ctx, "Ext-0001") }},
		}
		for _, l := range lookups {
			got, err := l.get()
			noErr(t, err, "get user "+l.name)
			wantEqual(t, "user got "+l.name, got, u)
		}
	})

	t.Run("optional fields stay empty and Active is stored as given", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := must[groupgate.User](t, "create user")(st.CreateUser(ctx, groupgate.User{UserName: "bare", Active: false}))
		got := must[groupgate.User](t, "get user")(st.GetUser(ctx, u.ID))
		wantEqual(t, "bare user", got, u)
		if got.Active || got.Email != "" || got.ExternalID != "" || got.DisplayName != "" || len(got.SCIM) != 0 {
			t.Errorf("bare user read back as %+v, want inactive with empty optional fields", got)
		}
	})

	t.Run("a caller-chosen ID is kept", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := must[groupgate.User](t, "create user")(st.CreateUser(ctx, groupgate.User{ID: "user-chosen-1", UserName: "chosen"}))
		if u.ID != "user-chosen-1" {
			t.Fatalf("ID = %q, want the caller's user-chosen-1", u.ID)
		}
		must[groupgate.User](t, "get user by chosen ID")(st.GetUser(ctx, "user-chosen-1"))
	})

	t.Run("creating a user checks required and unique fields", func(t *testing.T) {
		cases := []struct {
			name string
			user groupgate.User
			want groupgate.ErrorCode // "" for success
		}{
			{"an empty userName is refused", groupgate.User{Email: "x@example.com"}, groupgate.Invalid},
			{"a userName taken in another case is a conflict", groupgate.User{UserName: "ALICE"}, groupgate.Conflict},
			{"an email another user has, in another case, may be stored again", groupgate.User{UserName: "bob", Email: "alice@EXAMPLE.com"}, ""},
			{"a taken externalId is allowed (RFC 7643 §3.1: not unique)", groupgate.User{UserName: "bob", ExternalID: "ext-1"}, ""},
			{"an externalId differing only in case is distinct", groupgate.User{UserName: "bob", ExternalID: "EXT-1"}, ""},
			{"several users may have no email", groupgate.User{UserName: "bob"}, ""},
			{"several users may have no externalId", groupgate.User{UserName: "bob", Email: "bob@example.com"}, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				must[groupgate.User](t, "create alice")(st.CreateUser(ctx, groupgate.User{UserName: "Alice", Email: "Alice@Example.com", ExternalID: "ext-1"}))
				must[groupgate.User](t, "create carol")(st.CreateUser(ctx, groupgate.User{UserName: "carol"}))
				_, err := st.CreateUser(ctx, tc.user)
				n := must[int](t, "count users")(st.CountUsers(ctx))
				if tc.want == "" {
					noErr(t, err, "create user")
					if n != 3 {
						t.Fatalf("CountUsers = %d, want 3", n)
					}
					return
				}
				wantCode(t, err, tc.want, "create user")
				if n != 2 {
					t.Fatalf("CountUsers = %d after a refused create, want 2", n)
				}
			})
		}
	})

	t.Run("looking up a missing user answers NotFound", func(t *testing.T) {
		ctx, st := s.fresh(t)
		mkUser(t, ctx, st, "present")
		// A user without email or externalId must not match an empty key:
		// a login without an email would otherwise find them.
		must[groupgate.User](t, "create bare user")(st.CreateUser(ctx, groupgate.User{UserName: "bare"}))
		lookups := map[string]func() (groupgate.User, error){
			"ListUsersByEmail of the empty string":    func() (groupgate.User, error) { return onlyUser(st.ListUsersByEmail(ctx, "")) },
			"GetUserByExternalID of the empty string": func() (groupgate.User, error) { return st.GetUserByExternalID(ctx, "") },
			"GetUserByUserName of the empty string":   func() (groupgate.User, error) { return st.GetUserByUserName(ctx, "") },
			"GetUser":                                 func() (groupgate.User, error) { return st.GetUser(ctx, store.NewID()) },
			"GetUserByUserName":                       func() (groupgate.User, error) { return st.GetUserByUserName(ctx, "absent") },
			"ListUsersByEmail":                        func() (groupgate.User, error) { return onlyUser(st.ListUsersByEmail(ctx, "absent@example.com")) },
			"GetUserByExternalID":                     func() (groupgate.User, error) { return st.GetUserByExternalID(ctx, "absent") },
			"GetUserByIdentity":                       func() (groupgate.User, error) { return st.GetUserByIdentity(ctx, "okta", "absent") },
		}
		for name, get := range lookups {
			_, err := get()
			wantCode(t, err, groupgate.NotFound, name)
		}
	})

	t.Run("updating a user stores fn's changes, bumps the version and keeps ID and CreatedAt", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := must[groupgate.User](t, "create user")(st.CreateUser(ctx, groupgate.User{UserName: "alice", Email: "alice@example.com", Active: true}))
		var seen groupgate.User
		got := must[groupgate.User](t, "update user")(st.UpdateUser(ctx, u.ID, func(cur *groupgate.User) error {
			seen = *cur
			cur.ID = "someone-else"
			cur.CreatedAt = fixedTime(1)
			cur.UpdatedAt = fixedTime(2)
			cur.Version = 99
			cur.UserName = "Alice.New"
			cur.Email = "Alice.New@Example.com"
			cur.DisplayName = "Alice New"
			cur.Active = false
			cur.ExternalID = "ext-9"
			cur.SCIM = json.RawMessage(`{"title":"Engineer"}`)
			return nil
		}))
		wantEqual(t, "user seen by fn", seen, u)
		want := groupgate.User{
			ID: u.ID, UserName: "Alice.New", Email: "Alice.New@Example.com", DisplayName: "Alice New",
			Active: false, ExternalID: "ext-9", SCIM: json.RawMessage(`{"title":"Engineer"}`),
			CreatedAt: u.CreatedAt, UpdatedAt: got.UpdatedAt, Version: 2,
		}
		wantEqual(t, "updated user", got, want)
		checkTime(t, "UpdatedAt", got.UpdatedAt)
		checkNotBefore(t, "UpdatedAt after update", got.UpdatedAt, u.UpdatedAt)
		wantEqual(t, "updated user read back", must[groupgate.User](t, "get user")(st.GetUser(ctx, u.ID)), got)
		must[groupgate.User](t, "get user by new userName")(st.GetUserByUserName(ctx, "alice.new"))
		_, err := st.GetUserByUserName(ctx, "alice")
		wantCode(t, err, groupgate.NotFound, "get user by old userName")

		again := must[groupgate.User](t, "update user again")(st.UpdateUser(ctx, u.ID, func(cur *groupgate.User) error { return nil }))
		if again.Version != 3 {
			t.Errorf("Version after second update = %d, want 3", again.Version)
		}
	})

	t.Run("a user may change the case of their own userName and email", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		got := must[groupgate.User](t, "update user")(st.UpdateUser(ctx, u.ID, func(cur *groupgate.User) error {
			cur.UserName, cur.Email = "ALICE", "ALICE@example.com"
			return nil
		}))
		if got.UserName != "ALICE" || got.Email != "ALICE@example.com" {
			t.Fatalf("updated user = %+v, want new case kept", got)
		}
	})

	t.Run("updating a missing user answers NotFound without calling fn", func(t *testing.T) {
		ctx, st := s.fresh(t)
		called := false
		_, err := st.UpdateUser(ctx, store.NewID(), func(*groupgate.User) error { called = true; return nil })
		wantCode(t, err, groupgate.NotFound, "update missing user")
		if called {
			t.Error("fn was called for a missing user")
		}
	})

	t.Run("a refused update changes nothing", func(t *testing.T) {
		cases := []struct {
			name   string
			change func(*groupgate.User) error
			check  func(t *testing.T, err error)
		}{
			{"taking another user's userName in another case is a conflict",
				func(u *groupgate.User) error { u.UserName = "BOB"; return nil },
				func(t *testing.T, err error) { wantCode(t, err, groupgate.Conflict, "update") }},
			{"clearing the userName is invalid",
				func(u *groupgate.User) error { u.UserName = ""; return nil },
				func(t *testing.T, err error) { wantCode(t, err, groupgate.Invalid, "update") }},
			{"an error from fn is returned unchanged",
				func(u *groupgate.User) error {
					u.DisplayName = "changed before failing"
					u.Active = false
					return errBoom
				},
				func(t *testing.T, err error) {
					if !errors.Is(err, errBoom) {
						t.Fatalf("update error = %v, want fn's error", err)
					}
				}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				alice := must[groupgate.User](t, "create alice")(st.CreateUser(ctx, groupgate.User{UserName: "alice", Email: "alice@example.com", DisplayName: "Alice", Active: true, ExternalID: "ext-alice"}))
				must[groupgate.User](t, "create bob")(st.CreateUser(ctx, groupgate.User{UserName: "bob", Email: "bob@example.com", ExternalID: "ext-bob"}))
				_, err := st.UpdateUser(ctx, alice.ID, tc.change)
				tc.check(t, err)
				wantEqual(t, "alice after a refused update", must[groupgate.User](t, "get alice")(st.GetUser(ctx, alice.ID)), alice)
			})
		}
	})

	t.Run("deleting a user removes their identities, group set, manual roles and API tokens", func(t *testing.T) {
		ctx, st := s.fresh(t)
		org := mkOrg(t, ctx, st, "acme")
		repo := mkRepo(t, ctx, st, org, "api")
		gone, kept := mkUser(t, ctx, st, "gone"), mkUser(t, ctx, st, "kept")
		for i, u := range []groupgate.User{gone, kept} {
			noErr(t, st.LinkIdentity(ctx, u.ID, "okta", u.UserName), "link identity")
			setGroups(t, ctx, st, u.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceLogin}})
			must[groupgate.OrgMember](t, "set org member")(st.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: org.ID, UserID: u.ID, Role: groupgate.OrgRoleAdmin}))
			must[groupgate.RepoContributor](t, "set contributor")(st.SetRepoContributor(ctx, groupgate.RepoContributor{RepositoryID: repo.ID, UserID: u.ID, Role: groupgate.RepoRoleWrite}))
			must[groupgate.Token](t, "create token")(st.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, UserID: u.ID, Hash: []byte{byte(i), 1, 2, 3}}))
		}

		noErr(t, st.DeleteUser(ctx, gone.ID), "delete user")

		_, err := st.GetUser(ctx, gone.ID)
		wantCode(t, err, groupgate.NotFound, "get deleted user")
		_, err = st.GetUserByIdentity(ctx, "okta", "gone")
		wantCode(t, err, groupgate.NotFound, "get deleted user by identity")
		_, err = st.GetGroupSet(ctx, gone.ID)
		wantCode(t, err, groupgate.NotFound, "get deleted user's group set")
		_, err = st.GetOrgMember(ctx, org.ID, gone.ID)
		wantCode(t, err, groupgate.NotFound, "get deleted user's org role")
		_, err = st.GetRepoContributor(ctx, repo.ID, gone.ID)
		wantCode(t, err, groupgate.NotFound, "get deleted user's repo role")
		_, err = st.GetTokenByHash(ctx, groupgate.TokenAPI, []byte{0, 1, 2, 3})
		wantCode(t, err, groupgate.NotFound, "get deleted user's token")

		wantEqual(t, "eng members", must[[]string](t, "list members")(st.ListGroupMembers(ctx, "eng")), []string{kept.ID})
		if got := must[[]groupgate.OrgMember](t, "list org members")(st.ListOrgMembers(ctx, org.ID)); len(got) != 1 || got[0].UserID != kept.ID {
			t.Errorf("org members after delete = %+v, want only kept", got)
		}
		if got := must[[]groupgate.RepoContributor](t, "list contributors")(st.ListRepoContributors(ctx, repo.ID)); len(got) != 1 || got[0].UserID != kept.ID {
			t.Errorf("contributors after delete = %+v, want only kept", got)
		}
		if got := must[[]groupgate.Token](t, "list tokens")(st.ListTokens(ctx, groupgate.TokenAPI, "")); len(got) != 1 || got[0].UserID != kept.ID {
			t.Errorf("API tokens after delete = %+v, want only kept's", got)
		}
		if got := must[[]groupgate.Token](t, "list tokens")(st.ListTokens(ctx, groupgate.TokenAPI, gone.ID)); len(got) != 0 {
			t.Errorf("deleted user's API tokens = %+v, want none", got)
		}
		if got := must[[]groupgate.OrgMember](t, "list user org roles")(st.ListUserOrgMembers(ctx, gone.ID)); len(got) != 0 {
			t.Errorf("deleted user's org roles = %+v, want none", got)
		}
		if got := must[[]groupgate.RepoContributor](t, "list user repo roles")(st.ListUserRepoContributors(ctx, gone.ID)); len(got) != 0 {
			t.Errorf("deleted user's repo roles = %+v, want none", got)
		}
		// The identity row is gone: the subject may now be linked to another user.
		noErr(t, st.LinkIdentity(ctx, kept.ID, "okta", "gone"), "link the deleted user's identity to another user")
		// The unique names are free again.
		must[groupgate.User](t, "re-create user with the deleted user's names")(st.CreateUser(ctx, groupgate.User{UserName: "GONE", Email: "gone@example.com"}))
		// The kept user is untouched.
		wantEqual(t, "kept user's group set", must[groupgate.GroupSet](t, "get kept set")(st.GetGroupSet(ctx, kept.ID)).Names(), []string{"eng"})
		must[groupgate.Token](t, "get kept token")(st.GetTokenByHash(ctx, groupgate.TokenAPI, []byte{1, 1, 2, 3}))
	})

	t.Run("deleting a missing user answers NotFound", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		noErr(t, st.DeleteUser(ctx, u.ID), "delete user")
		wantCode(t, st.DeleteUser(ctx, u.ID), groupgate.NotFound, "delete user twice")
		wantCode(t, st.DeleteUser(ctx, store.NewID()), groupgate.NotFound, "delete unknown user")
	})

	t.Run("an empty store lists no users and counts zero", func(t *testing.T) {
		ctx, st := s.fresh(t)
		if got := must[[]groupgate.User](t, "list users")(st.ListUsers(ctx, store.ListOptions{})); len(got) != 0 {
			t.Errorf("ListUsers = %v, want none", got)
		}
		if n := must[int](t, "count users")(st.CountUsers(ctx)); n != 0 {
			t.Errorf("CountUsers = %d, want 0", n)
		}
	})

	t.Run("users are listed by creation then ID and paged", func(t *testing.T) {
		ctx, st := s.fresh(t)
		var created []groupgate.User
		for _, name := range []string{"erin", "alice", "dave", "bob", "carol"} {
			created = append(created, mkUser(t, ctx, st, name))
		}
		if n := must[int](t, "count users")(st.CountUsers(ctx)); n != len(created) {
			t.Errorf("CountUsers = %d, want %d", n, len(created))
		}
		want := slices.Clone(created)
		slices.SortStableFunc(want, func(a, b groupgate.User) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
		})
		all := must[[]groupgate.User](t, "list users")(st.ListUsers(ctx, store.ListOptions{}))
		wantEqual(t, "all users", all, want)
		for _, o := range pages(len(want)) {
			got := must[[]groupgate.User](t, "list users "+pageName(o))(st.ListUsers(ctx, o))
			wantEqual(t, "users "+pageName(o), got, window(want, o))
		}
	})
}

func (s suite) identities(t *testing.T) {
	t.Run("linked identities find their user and are listed by provider then subject", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		other := mkUser(t, ctx, st, "bob")
		noErr(t, st.LinkIdentity(ctx, other.ID, "okta", "bob-sub"), "link bob")
		for _, id := range [][2]string{{"okta", "sub-b"}, {"entra", "sub-z"}, {"okta", "sub-a"}} {
			noErr(t, st.LinkIdentity(ctx, u.ID, id[0], id[1]), "link "+id[0]+"/"+id[1])
		}
		got := must[[]groupgate.UserIdentity](t, "list identities")(st.ListIdentities(ctx, u.ID))
		if len(got) != 3 {
			t.Fatalf("ListIdentities = %+v, want 3", got)
		}
		for i, want := range [][2]string{{"entra", "sub-z"}, {"okta", "sub-a"}, {"okta", "sub-b"}} {
			if got[i].UserID != u.ID || got[i].Provider != want[0] || got[i].Subject != want[1] {
				t.Errorf("identity %d = %+v, want %s/%s of %s", i, got[i], want[0], want[1], u.ID)
			}
			checkTime(t, "identity CreatedAt", got[i].CreatedAt)
			byID := must[groupgate.User](t, "get user by identity")(st.GetUserByIdentity(ctx, want[0], want[1]))
			if byID.ID != u.ID {
				t.Errorf("GetUserByIdentity(%s, %s) = %s, want %s", want[0], want[1], byID.ID, u.ID)
			}
		}
	})

	t.Run("linking rules", func(t *testing.T) {
		cases := []struct {
			name     string
			user     func(alice, bob groupgate.User) string
			provider string
			subject  string
			want     groupgate.ErrorCode
		}{
			{"linking an identity again to its own user is a no-op", func(a, _ groupgate.User) string { return a.ID }, "okta", "alice-sub", ""},
			{"linking an identity of another user is a conflict", func(_, b groupgate.User) string { return b.ID }, "okta", "alice-sub", groupgate.Conflict},
			{"the same subject at another provider is a different identity", func(_, b groupgate.User) string { return b.ID }, "entra", "alice-sub", ""},
			{"linking to a missing user is invalid", func(groupgate.User, groupgate.User) string { return store.NewID() }, "okta", "new-sub", groupgate.Invalid},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				alice, bob := mkUser(t, ctx, st, "alice"), mkUser(t, ctx, st, "bob")
				noErr(t, st.LinkIdentity(ctx, alice.ID, "okta", "alice-sub"), "link alice")
				err := st.LinkIdentity(ctx, tc.user(alice, bob), tc.provider, tc.subject)
				if tc.want != "" {
					wantCode(t, err, tc.want, "link")
				} else {
					noErr(t, err, "link")
				}
				owner := must[groupgate.User](t, "get okta/alice-sub owner")(st.GetUserByIdentity(ctx, "okta", "alice-sub"))
				if owner.ID != alice.ID {
					t.Errorf("okta/alice-sub belongs to %s, want alice %s", owner.ID, alice.ID)
				}
				if n := len(must[[]groupgate.UserIdentity](t, "list alice's identities")(st.ListIdentities(ctx, alice.ID))); n != 1 {
					t.Errorf("alice has %d identities, want 1", n)
				}
			})
		}
	})

	t.Run("a user without identities lists none", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		if got := must[[]groupgate.UserIdentity](t, "list identities")(st.ListIdentities(ctx, u.ID)); len(got) != 0 {
			t.Errorf("ListIdentities = %+v, want none", got)
		}
	})
}
