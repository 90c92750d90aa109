package storetest

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// grant is a manual org role or repo role seen the same way, so that one
// set of tests covers members and contributors.
type grant struct {
	Resource  string
	UserID    string
	Role      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

type grantKind struct {
	name     string
	resource func(t testing.TB, ctx context.Context, st store.Store, name string) string
	set      func(ctx context.Context, st store.Store, g grant) (grant, error)
	get      func(ctx context.Context, st store.Store, resource, userID string) (grant, error)
	remove   func(ctx context.Context, st store.Store, resource, userID string) error
	list     func(ctx context.Context, st store.Store, resource string) ([]grant, error)
	listUser func(ctx context.Context, st store.Store, userID string) ([]grant, error)
}

func fromMember(m groupgate.OrgMember) grant {
	return grant{m.OrganizationID, m.UserID, string(m.Role), m.CreatedAt, m.UpdatedAt}
}

func fromContributor(c groupgate.RepoContributor) grant {
	return grant{c.RepositoryID, c.UserID, string(c.Role), c.CreatedAt, c.UpdatedAt}
}

func convertGrants[T any](in []T, f func(T) grant) []grant {
	out := make([]grant, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

var grantKinds = []grantKind{
	{
		name: "organization member",
		resource: func(t testing.TB, ctx context.Context, st store.Store, name string) string {
			return mkOrg(t, ctx, st, name).ID
		},
		set: func(ctx context.Context, st store.Store, g grant) (grant, error) {
			m, err := st.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: g.Resource, UserID: g.UserID, Role: groupgate.OrgRole(g.Role), CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt})
			return fromMember(m), err
		},
		get: func(ctx context.Context, st store.Store, resource, userID string) (grant, error) {
			m, err := st.GetOrgMember(ctx, resource, userID)
			return fromMember(m), err
		},
		remove: func(ctx context.Context, st store.Store, resource, userID string) error {
			return st.RemoveOrgMember(ctx, resource, userID)
		},
		list: func(ctx context.Context, st store.Store, resource string) ([]grant, error) {
			m, err := st.ListOrgMembers(ctx, resource)
			return convertGrants(m, fromMember), err
		},
		listUser: func(ctx context.Context, st store.Store, userID string) ([]grant, error) {
			m, err := st.ListUserOrgMembers(ctx, userID)
			return convertGrants(m, fromMember), err
		},
	},
	{
		name: "repository contributor",
		resource: func(t testing.TB, ctx context.Context, st store.Store, name string) string {
			return mkRepo(t, ctx, st, mkOrg(t, ctx, st, name), "repo").ID
		},
		set: func(ctx context.Context, st store.Store, g grant) (grant, error) {
			c, err := st.SetRepoContributor(ctx, groupgate.RepoContributor{RepositoryID: g.Resource, UserID: g.UserID, Role: groupgate.RepoRole(g.Role), CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt})
			return fromContributor(c), err
		},
		get: func(ctx context.Context, st store.Store, resource, userID string) (grant, error) {
			c, err := st.GetRepoContributor(ctx, resource, userID)
			return fromContributor(c), err
		},
		remove: func(ctx context.Context, st store.Store, resource, userID string) error {
			return st.RemoveRepoContributor(ctx, resource, userID)
		},
		list: func(ctx context.Context, st store.Store, resource string) ([]grant, error) {
			c, err := st.ListRepoContributors(ctx, resource)
			return convertGrants(c, fromContributor), err
		},
		listUser: func(ctx context.Context, st store.Store, userID string) ([]grant, error) {
			c, err := st.ListUserRepoContributors(ctx, userID)
			return convertGrants(c, fromContributor), err
		},
	},
}

func (s suite) roles(t *testing.T) {
	for _, k := range grantKinds {
		t.Run(k.name+"s", func(t *testing.T) { s.grantKind(t, k) })
	}
}

func (s suite) grantKind(t *testing.T, k grantKind) {
	t.Run("setting a role stores it and setting it again replaces the role but keeps CreatedAt", func(t *testing.T) {
		ctx, st := s.fresh(t)
		res := k.resource(t, ctx, st, "acme")
		u := mkUser(t, ctx, st, "alice")
		g := must[grant](t, "set role")(k.set(ctx, st, grant{Resource: res, UserID: u.ID, Role: "ADMIN", CreatedAt: fixedTime(1), UpdatedAt: fixedTime(1)}))
		checkTime(t, "CreatedAt", g.CreatedAt)
		checkTime(t, "UpdatedAt", g.UpdatedAt)
		wantEqual(t, "set role", g, grant{res, u.ID, "ADMIN", g.CreatedAt, g.UpdatedAt})
		wantEqual(t, "role read back", must[grant](t, "get role")(k.get(ctx, st, res, u.ID)), g)

		r := must[grant](t, "replace role")(k.set(ctx, st, grant{Resource: res, UserID: u.ID, Role: "WRITER"}))
		wantEqual(t, "replaced role", r, grant{res, u.ID, "WRITER", g.CreatedAt, r.UpdatedAt})
		checkNotBefore(t, "UpdatedAt after replace", r.UpdatedAt, g.UpdatedAt)
		wantEqual(t, "replaced role read back", must[grant](t, "get role")(k.get(ctx, st, res, u.ID)), r)
		if n := len(must[[]grant](t, "list")(k.list(ctx, st, res))); n != 1 {
			t.Errorf("%d roles after replacing, want 1", n)
		}
	})

	t.Run("setting a role checks resource, user and role", func(t *testing.T) {
		cases := []struct {
			name string
			g    func(res, user string) grant
		}{
			{"a missing " + strings.Fields(k.name)[0] + " is refused", func(_, u string) grant { return grant{Resource: store.NewID(), UserID: u, Role: "ADMIN"} }},
			{"a missing user is refused", func(r, _ string) grant { return grant{Resource: r, UserID: store.NewID(), Role: "ADMIN"} }},
			{"an empty role is refused", func(r, u string) grant { return grant{Resource: r, UserID: u} }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				res := k.resource(t, ctx, st, "acme")
				u := mkUser(t, ctx, st, "alice")
				_, err := k.set(ctx, st, tc.g(res, u.ID))
				wantCode(t, err, groupgate.Invalid, "set role")
				if got := must[[]grant](t, "list")(k.list(ctx, st, res)); len(got) != 0 {
					t.Errorf("roles after a refused set: %+v", got)
				}
				if got := must[[]grant](t, "list user")(k.listUser(ctx, st, u.ID)); len(got) != 0 {
					t.Errorf("user roles after a refused set: %+v", got)
				}
			})
		}
	})

	t.Run("removing a role deletes it and a missing role is NotFound", func(t *testing.T) {
		ctx, st := s.fresh(t)
		res := k.resource(t, ctx, st, "acme")
		alice, bob := mkUser(t, ctx, st, "alice"), mkUser(t, ctx, st, "bob")
		must[grant](t, "set alice")(k.set(ctx, st, grant{Resource: res, UserID: alice.ID, Role: "ADMIN"}))
		kept := must[grant](t, "set bob")(k.set(ctx, st, grant{Resource: res, UserID: bob.ID, Role: "ADMIN"}))
		noErr(t, k.remove(ctx, st, res, alice.ID), "remove alice")
		_, err := k.get(ctx, st, res, alice.ID)
		wantCode(t, err, groupgate.NotFound, "get removed role")
		wantCode(t, k.remove(ctx, st, res, alice.ID), groupgate.NotFound, "remove twice")
		wantCode(t, k.remove(ctx, st, store.NewID(), bob.ID), groupgate.NotFound, "remove on a missing resource")
		wantEqual(t, "roles left", must[[]grant](t, "list")(k.list(ctx, st, res)), []grant{kept})
	})

	t.Run("roles are listed by user for a resource and by resource for a user", func(t *testing.T) {
		ctx, st := s.fresh(t)
		var users []groupgate.User
		for _, name := range []string{"carol", "alice", "bob"} {
			users = append(users, mkUser(t, ctx, st, name))
		}
		var resources []string
		for _, name := range []string{"gamma", "alpha", "beta"} {
			resources = append(resources, k.resource(t, ctx, st, name))
		}
		var all []grant
		for _, r := range resources {
			for _, u := range users {
				all = append(all, must[grant](t, "set")(k.set(ctx, st, grant{Resource: r, UserID: u.ID, Role: "READ"})))
			}
		}
		for _, r := range resources {
			want := slices.DeleteFunc(slices.Clone(all), func(g grant) bool { return g.Resource != r })
			slices.SortFunc(want, func(a, b grant) int { return strings.Compare(a.UserID, b.UserID) })
			wantEqual(t, "roles on "+r, must[[]grant](t, "list")(k.list(ctx, st, r)), want)
		}
		for _, u := range users {
			want := slices.DeleteFunc(slices.Clone(all), func(g grant) bool { return g.UserID != u.ID })
			slices.SortFunc(want, func(a, b grant) int { return cmp.Compare(a.Resource, b.Resource) })
			wantEqual(t, "roles of "+u.UserName, must[[]grant](t, "list user")(k.listUser(ctx, st, u.ID)), want)
		}
		if got := must[[]grant](t, "list")(k.list(ctx, st, store.NewID())); len(got) != 0 {
			t.Errorf("a missing resource lists %+v", got)
		}
	})
}
