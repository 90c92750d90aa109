package storetest

import (
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// hugeName is a name no index can hold: incompressible, so that
// PostgreSQL's TOAST compression cannot bring it under the B-tree entry
// limit (about 2.7 KB), which a repetitive string would pass.
func hugeName(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24_000)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// wantRefusedOrKept fails t when err is anything but nil or Invalid: a
// value the database cannot keep is bad input, never an internal error.
// (The callers above the store bound names first; this is the backstop,
// and SQLite, which has no such limits, may keep the value.)
func wantRefusedOrKept(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil && !groupgate.IsCode(err, groupgate.Invalid) {
		t.Fatalf("%s: error %.300v has code %s, want invalid (or success)", what, err, groupgate.ErrorCodeOf(err))
	}
}

// badInput checks that oversized and NUL-holding values are Invalid, and
// leave the store usable, on every backend (issue 10, point 13).
func (s suite) badInput(t *testing.T) {
	values := map[string]func(t testing.TB) string{
		"an over-long name": hugeName,
		"a NUL byte":        func(testing.TB) string { return "nul\x00byte" },
		"invalid UTF-8":     func(testing.TB) string { return "bad\xff\xfeutf8" },
	}
	for what, value := range values {
		t.Run(what+" is invalid input, never an internal error", func(t *testing.T) {
			ctx, st := s.fresh(t)
			v := value(t)
			alice := mkUser(t, ctx, st, "alice")
			org := mkOrg(t, ctx, st, "acme")
			repo := mkRepo(t, ctx, st, org, "api")

			_, err := st.CreateUser(ctx, groupgate.User{UserName: v, Email: "u1@example.com", Active: true})
			wantRefusedOrKept(t, err, "create user with this user name")
			_, err = st.CreateUser(ctx, groupgate.User{UserName: "u2", Email: v, Active: true})
			wantRefusedOrKept(t, err, "create user with this email")
			_, err = st.CreateUser(ctx, groupgate.User{UserName: "u3", Email: "u3@example.com", ExternalID: v, Active: true})
			wantRefusedOrKept(t, err, "create user with this external ID")
			_, err = st.UpdateUser(ctx, alice.ID, func(u *groupgate.User) error { u.DisplayName = v; return nil })
			wantRefusedOrKept(t, err, "rename user")
			wantRefusedOrKept(t, st.LinkIdentity(ctx, alice.ID, "okta", v), "link identity with this subject")
			_, err = st.CreateGroup(ctx, groupgate.Group{Name: v})
			wantRefusedOrKept(t, err, "create group")
			_, err = st.CreateOrganization(ctx, groupgate.Organization{Name: v})
			wantRefusedOrKept(t, err, "create organization")
			_, err = st.CreateRepository(ctx, groupgate.Repository{OrganizationID: org.ID, Name: v})
			wantRefusedOrKept(t, err, "create repository")
			_, err = st.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: org.ID, Group: v})
			wantRefusedOrKept(t, err, "map group to organization")
			_, err = st.AddRepoMapping(ctx, groupgate.RepoMapping{RepositoryID: repo.ID, Group: v})
			wantRefusedOrKept(t, err, "map group to repository")
			_, err = st.UpdateGroupSet(ctx, alice.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) {
				return groupgate.GroupSet{{Group: v, Source: groupgate.SourceSCIM, AddedAt: fixedTime(1)}}, nil
			})
			wantRefusedOrKept(t, err, "set group set")
			_, err = st.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, UserID: alice.ID, Name: v, Hash: hashOf("t")})
			wantRefusedOrKept(t, err, "create token with this note")

			// Lookups by such a value find nothing or refuse it.
			for name, lookup := range map[string]func() error{
				"user by user name":    func() error { _, err := st.GetUserByUserName(ctx, v); return err },
				"users by email":       func() error { _, err := st.ListUsersByEmail(ctx, v); return err },
				"user by external ID":  func() error { _, err := st.GetUserByExternalID(ctx, v); return err },
				"user by identity":     func() error { _, err := st.GetUserByIdentity(ctx, "okta", v); return err },
				"group by name":        func() error { _, err := st.GetGroupByName(ctx, v); return err },
				"organization by name": func() error { _, err := st.GetOrganizationByName(ctx, v); return err },
				"repository by name":   func() error { _, err := st.GetRepositoryByFullName(ctx, "acme", v); return err },
				"group members":        func() error { _, err := st.ListGroupMembers(ctx, v); return err },
			} {
				if err := lookup(); err != nil && !groupgate.IsCode(err, groupgate.Invalid) && !groupgate.IsCode(err, groupgate.NotFound) {
					t.Errorf("look up %s: error %.300v has code %s, want invalid, not_found or success", name, err, groupgate.ErrorCodeOf(err))
				}
			}
			// A refused write inside a transaction undoes only itself.
			noErr(t, st.InTx(ctx, func(tx store.Store) error {
				_, err := tx.CreateOrganization(ctx, groupgate.Organization{Name: v + "-tx"})
				wantRefusedOrKept(t, err, "create organization in a transaction")
				_, err = tx.CreateOrganization(ctx, groupgate.Organization{Name: "beta"})
				return err
			}), "create organization after a refused one in the same transaction")
			mkUser(t, ctx, st, "bob")
		})
	}
}
