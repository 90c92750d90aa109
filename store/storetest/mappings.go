package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// mapping is an organization or repository mapping seen the same way, so
// that one set of tests covers both kinds.
type mapping struct {
	ID        string
	Parent    string
	Group     string
	Role      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

type mappingKind struct {
	name   string
	parent func(t testing.TB, ctx context.Context, st store.Store, name string) string
	add    func(ctx context.Context, st store.Store, m mapping) (mapping, error)
	get    func(ctx context.Context, st store.Store, parent, group string) (mapping, error)
	update func(ctx context.Context, st store.Store, parent, group string, fn func(*mapping) error) (mapping, error)
	remove func(ctx context.Context, st store.Store, parent, group string) (mapping, error)
	list   func(ctx context.Context, st store.Store, parent string, opts store.ListOptions) ([]mapping, error)
}

func fromOrgMapping(m groupgate.OrgMapping) mapping {
	return mapping{m.ID, m.OrganizationID, m.Group, string(m.RoleOverride), m.CreatedAt, m.UpdatedAt}
}

func (m mapping) org() groupgate.OrgMapping {
	return groupgate.OrgMapping{ID: m.ID, OrganizationID: m.Parent, Group: m.Group, RoleOverride: groupgate.OrgRole(m.Role), CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

func fromRepoMapping(m groupgate.RepoMapping) mapping {
	return mapping{m.ID, m.RepositoryID, m.Group, string(m.RoleOverride), m.CreatedAt, m.UpdatedAt}
}

func (m mapping) repo() groupgate.RepoMapping {
	return groupgate.RepoMapping{ID: m.ID, RepositoryID: m.Parent, Group: m.Group, RoleOverride: groupgate.RepoRole(m.Role), CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

func convertAll[T any](in []T, f func(T) mapping) []mapping {
	out := make([]mapping, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

var mappingKinds = []mappingKind{
	{
		name: "organization",
		parent: func(t testing.TB, ctx context.Context, st store.Store, name string) string {
			return mkOrg(t, ctx, st, name).ID
		},
		add: func(ctx context.Context, st store.Store, m mapping) (mapping, error) {
			r, err := st.AddOrgMapping(ctx, m.org())
			return fromOrgMapping(r), err
		},
		get: func(ctx context.Context, st store.Store, parent, group string) (mapping, error) {
			r, err := st.GetOrgMapping(ctx, parent, group)
			return fromOrgMapping(r), err
		},
		update: func(ctx context.Context, st store.Store, parent, group string, fn func(*mapping) error) (mapping, error) {
			r, err := st.UpdateOrgMapping(ctx, parent, group, func(om *groupgate.OrgMapping) error {
				m := fromOrgMapping(*om)
				err := fn(&m)
				*om = m.org()
				return err
			})
			return fromOrgMapping(r), err
		},
		remove: func(ctx context.Context, st store.Store, parent, group string) (mapping, error) {
			r, err := st.RemoveOrgMapping(ctx, parent, group)
			return fromOrgMapping(r), err
		},
		list: func(ctx context.Context, st store.Store, parent string, opts store.ListOptions) ([]mapping, error) {
			r, err := st.ListOrgMappings(ctx, parent, opts)
			return convertAll(r, fromOrgMapping), err
		},
	},
	{
		name: "repository",
		parent: func(t testing.TB, ctx context.Context, st store.Store, name string) string {
			return mkRepo(t, ctx, st, mkOrg(t, ctx, st, name), "repo").ID
		},
		add: func(ctx context.Context, st store.Store, m mapping) (mapping, error) {
			r, err := st.AddRepoMapping(ctx, m.repo())
			return fromRepoMapping(r), err
		},
		get: func(ctx context.Context, st store.Store, parent, group string) (mapping, error) {
			r, err := st.GetRepoMapping(ctx, parent, group)
			return fromRepoMapping(r), err
		},
		update: func(ctx context.Context, st store.Store, parent, group string, fn func(*mapping) error) (mapping, error) {
			r, err := st.UpdateRepoMapping(ctx, parent, group, func(rm *groupgate.RepoMapping) error {
				m := fromRepoMapping(*rm)
				err := fn(&m)
				*rm = m.repo()
				return err
			})
			return fromRepoMapping(r), err
		},
		remove: func(ctx context.Context, st store.Store, parent, group string) (mapping, error) {
			r, err := st.RemoveRepoMapping(ctx, parent, group)
			return fromRepoMapping(r), err
		},
		list: func(ctx context.Context, st store.Store, parent string, opts store.ListOptions) ([]mapping, error) {
			r, err := st.ListRepoMappings(ctx, parent, opts)
			return convertAll(r, fromRepoMapping), err
		},
	},
}

func (s suite) mappings(t *testing.T) {
	for _, k := range mappingKinds {
		t.Run(k.name+" mappings", func(t *testing.T) { s.mappingKind(t, k) })
	}
	t.Run("MappingsForGroups", s.mappingsForGroups)
}

func (s suite) mappingKind(t *testing.T, k mappingKind) {
	t.Run("an added mapping round-trips and keeps its role override as given", func(t *testing.T) {
		ctx, st := s.fresh(t)
		parent := k.parent(t, ctx, st, "acme")
		for _, role := range []string{"", "ADMIN", "not-validated-here"} {
			group := "eng-" + role
			in := mapping{Parent: parent, Group: group, Role: role, CreatedAt: fixedTime(1), UpdatedAt: fixedTime(1)}
			m := must[mapping](t, "add mapping")(k.add(ctx, st, in))
			if m.ID == "" {
				t.Fatal("added mapping has no ID")
			}
			checkTime(t, "CreatedAt", m.CreatedAt)
			checkTime(t, "UpdatedAt", m.UpdatedAt)
			checkNotBefore(t, "UpdatedAt vs CreatedAt", m.UpdatedAt, m.CreatedAt)
			wantEqual(t, "added mapping", m, mapping{m.ID, parent, group, role, m.CreatedAt, m.UpdatedAt})
			wantEqual(t, "mapping read back", must[mapping](t, "get mapping")(k.get(ctx, st, parent, group)), m)
		}
		chosen := must[mapping](t, "add mapping with ID")(k.add(ctx, st, mapping{ID: "mapping-chosen", Parent: parent, Group: "chosen"}))
		if chosen.ID != "mapping-chosen" {
			t.Errorf("ID = %q, want the caller's mapping-chosen", chosen.ID)
		}
	})

	t.Run("adding a mapping checks group, parent and uniqueness", func(t *testing.T) {
		cases := []struct {
			name string
			m    func(parent, other string) mapping
			want groupgate.ErrorCode
		}{
			{"an empty group is refused", func(p, _ string) mapping { return mapping{Parent: p} }, groupgate.Invalid},
			{"a missing " + k.name + " is refused", func(string, string) mapping { return mapping{Parent: store.NewID(), Group: "eng"} }, groupgate.Invalid},
			{"an empty " + k.name + " is refused", func(string, string) mapping { return mapping{Group: "eng"} }, groupgate.Invalid},
			{"a group mapped already is a conflict, whatever the role", func(p, _ string) mapping { return mapping{Parent: p, Group: "eng", Role: "ADMIN"} }, groupgate.Conflict},
			{"a group name differing only in case is another group", func(p, _ string) mapping { return mapping{Parent: p, Group: "ENG"} }, ""},
			{"another " + k.name + " may map the same group", func(_, o string) mapping { return mapping{Parent: o, Group: "eng"} }, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				parent, other := k.parent(t, ctx, st, "acme"), k.parent(t, ctx, st, "beta")
				orig := must[mapping](t, "add eng")(k.add(ctx, st, mapping{Parent: parent, Group: "eng"}))
				_, err := k.add(ctx, st, tc.m(parent, other))
				n := len(must[[]mapping](t, "list")(k.list(ctx, st, parent, store.ListOptions{}))) +
					len(must[[]mapping](t, "list")(k.list(ctx, st, other, store.ListOptions{})))
				if tc.want == "" {
					noErr(t, err, "add mapping")
					if n != 2 {
						t.Fatalf("%d mappings, want 2", n)
					}
				} else {
					wantCode(t, err, tc.want, "add mapping")
					if n != 1 {
						t.Fatalf("%d mappings after a refused add, want 1", n)
					}
				}
				wantEqual(t, "first mapping", must[mapping](t, "get eng")(k.get(ctx, st, parent, "eng")), orig)
			})
		}
	})

	t.Run("a missing mapping is NotFound everywhere", func(t *testing.T) {
		ctx, st := s.fresh(t)
		parent := k.parent(t, ctx, st, "acme")
		must[mapping](t, "add")(k.add(ctx, st, mapping{Parent: parent, Group: "eng"}))
		for _, key := range [][2]string{{parent, "ENG"}, {parent, "ops"}, {store.NewID(), "eng"}} {
			_, err := k.get(ctx, st, key[0], key[1])
			wantCode(t, err, groupgate.NotFound, "get "+key[1])
			called := false
			_, err = k.update(ctx, st, key[0], key[1], func(*mapping) error { called = true; return nil })
			wantCode(t, err, groupgate.NotFound, "update "+key[1])
			if called {
				t.Errorf("update called fn for a missing mapping %s", key[1])
			}
			_, err = k.remove(ctx, st, key[0], key[1])
			wantCode(t, err, groupgate.NotFound, "remove "+key[1])
		}
	})

	t.Run("updating a mapping keeps only the role override change", func(t *testing.T) {
		ctx, st := s.fresh(t)
		parent, other := k.parent(t, ctx, st, "acme"), k.parent(t, ctx, st, "beta")
		m := must[mapping](t, "add")(k.add(ctx, st, mapping{Parent: parent, Group: "eng", Role: "ADMIN"}))
		var seen mapping
		got := must[mapping](t, "update")(k.update(ctx, st, parent, "eng", func(cur *mapping) error {
			seen = *cur
			*cur = mapping{ID: "other", Parent: other, Group: "ops", Role: "WRITER", CreatedAt: fixedTime(1), UpdatedAt: fixedTime(1)}
			return nil
		}))
		wantEqual(t, "mapping seen by fn", seen, m)
		wantEqual(t, "updated mapping", got, mapping{m.ID, parent, "eng", "WRITER", m.CreatedAt, got.UpdatedAt})
		checkTime(t, "UpdatedAt", got.UpdatedAt)
		checkNotBefore(t, "UpdatedAt after update", got.UpdatedAt, m.UpdatedAt)
		wantEqual(t, "updated mapping read back", must[mapping](t, "get")(k.get(ctx, st, parent, "eng")), got)
		if n := len(must[[]mapping](t, "list other")(k.list(ctx, st, other, store.ListOptions{}))); n != 0 {
			t.Errorf("the update moved the mapping: other has %d mappings", n)
		}
		cleared := must[mapping](t, "clear override")(k.update(ctx, st, parent, "eng", func(cur *mapping) error { cur.Role = ""; return nil }))
		if cleared.Role != "" {
			t.Errorf("override after clearing = %q, want empty", cleared.Role)
		}
	})

	t.Run("an error from the update's fn is returned unchanged and nothing is written", func(t *testing.T) {
		ctx, st := s.fresh(t)
		parent := k.parent(t, ctx, st, "acme")
		m := must[mapping](t, "add")(k.add(ctx, st, mapping{Parent: parent, Group: "eng", Role: "ADMIN"}))
		_, err := k.update(ctx, st, parent, "eng", func(cur *mapping) error { cur.Role = "MEMBER"; return errBoom })
		if !errors.Is(err, errBoom) {
			t.Fatalf("update error = %v, want fn's error", err)
		}
		wantEqual(t, "mapping after a failed update", must[mapping](t, "get")(k.get(ctx, st, parent, "eng")), m)
	})

	t.Run("removing a mapping returns it and frees the group", func(t *testing.T) {
		ctx, st := s.fresh(t)
		parent := k.parent(t, ctx, st, "acme")
		m := must[mapping](t, "add")(k.add(ctx, st, mapping{Parent: parent, Group: "eng", Role: "ADMIN"}))
		keep := must[mapping](t, "add")(k.add(ctx, st, mapping{Parent: parent, Group: "ops"}))
		wantEqual(t, "removed mapping", must[mapping](t, "remove")(k.remove(ctx, st, parent, "eng")), m)
		_, err := k.get(ctx, st, parent, "eng")
		wantCode(t, err, groupgate.NotFound, "get removed mapping")
		_, err = k.remove(ctx, st, parent, "eng")
		wantCode(t, err, groupgate.NotFound, "remove twice")
		wantEqual(t, "mappings left", must[[]mapping](t, "list")(k.list(ctx, st, parent, store.ListOptions{})), []mapping{keep})
		again := must[mapping](t, "add again")(k.add(ctx, st, mapping{Parent: parent, Group: "eng"}))
		if again.Role != "" {
			t.Errorf("re-added mapping has override %q, want none", again.Role)
		}
	})

	t.Run("mappings are listed by group and paged, one "+k.name+" at a time", func(t *testing.T) {
		ctx, st := s.fresh(t)
		parent, other := k.parent(t, ctx, st, "acme"), k.parent(t, ctx, st, "beta")
		if got := must[[]mapping](t, "list")(k.list(ctx, st, parent, store.ListOptions{})); len(got) != 0 {
			t.Fatalf("no mappings yet, listed %+v", got)
		}
		must[mapping](t, "add other")(k.add(ctx, st, mapping{Parent: other, Group: "eng"}))
		var want []mapping
		for _, g := range []string{"ops", "eng", "sales", "admins", "dev", "qa"} {
			want = append(want, must[mapping](t, "add "+g)(k.add(ctx, st, mapping{Parent: parent, Group: g})))
		}
		slices.SortFunc(want, func(a, b mapping) int { return strings.Compare(a.Group, b.Group) })
		for _, o := range pages(len(want)) {
			got := must[[]mapping](t, "list "+pageName(o))(k.list(ctx, st, parent, o))
			wantEqual(t, "mappings "+pageName(o), got, window(want, o))
		}
	})
}

func (s suite) mappingsForGroups(t *testing.T) {
	t.Run("no groups find no mappings", func(t *testing.T) {
		ctx, st := s.fresh(t)
		org := mkOrg(t, ctx, st, "acme")
		mkOrgMapping(t, ctx, st, org.ID, "eng", "")
		mkRepoMapping(t, ctx, st, mkRepo(t, ctx, st, org, "api").ID, "eng", "")
		for name, groups := range map[string][]string{"nil": nil, "empty": {}, "unmapped": {"nobody", "ENG"}} {
			om, rm := must2(t, "mappings for "+name)(st.MappingsForGroups(ctx, groups))
			if len(om) != 0 || len(rm) != 0 {
				t.Errorf("%s groups found %+v and %+v, want none", name, om, rm)
			}
		}
	})

	t.Run("every mapping of the groups is found, ordered by resource then group", func(t *testing.T) {
		ctx, st := s.fresh(t)
		var orgMaps []groupgate.OrgMapping
		var repoMaps []groupgate.RepoMapping
		groups := []string{"eng", "ops", "sales", "zeta"}
		for i, name := range []string{"acme", "beta", "gamma"} {
			org := mkOrg(t, ctx, st, name)
			repos := []groupgate.Repository{mkRepo(t, ctx, st, org, "api"), mkRepo(t, ctx, st, org, "web")}
			// Each resource maps a different mix, added in reverse order.
			for j := len(groups) - 1; j >= 0; j-- {
				g := groups[j]
				if (i+j)%2 == 0 {
					orgMaps = append(orgMaps, mkOrgMapping(t, ctx, st, org.ID, g, groupgate.OrgRoleAdmin))
				}
				for ri, r := range repos {
					if (i+j+ri)%3 != 0 {
						repoMaps = append(repoMaps, mkRepoMapping(t, ctx, st, r.ID, g, groupgate.RepoRoleWrite))
					}
				}
			}
		}
		// A group asked twice still finds each mapping once.
		asked := []string{"zeta", "eng", "ops", "not-mapped", "eng"}
		wantOrg := slices.DeleteFunc(slices.Clone(orgMaps), func(m groupgate.OrgMapping) bool { return !slices.Contains(asked, m.Group) })
		wantRepo := slices.DeleteFunc(slices.Clone(repoMaps), func(m groupgate.RepoMapping) bool { return !slices.Contains(asked, m.Group) })
		slices.SortFunc(wantOrg, func(a, b groupgate.OrgMapping) int {
			return cmp.Or(strings.Compare(a.OrganizationID, b.OrganizationID), strings.Compare(a.Group, b.Group))
		})
		slices.SortFunc(wantRepo, func(a, b groupgate.RepoMapping) int {
			return cmp.Or(strings.Compare(a.RepositoryID, b.RepositoryID), strings.Compare(a.Group, b.Group))
		})
		om, rm := must2(t, "mappings for groups")(st.MappingsForGroups(ctx, asked))
		wantEqual(t, "org mappings", om, wantOrg)
		wantEqual(t, "repo mappings", rm, wantRepo)
	})

	t.Run("1,500 groups do not hit a bound-parameter limit", func(t *testing.T) {
		ctx, st := s.fresh(t)
		const n = 1500
		groups := make([]string, n)
		for i := range groups {
			groups[i] = fmt.Sprintf("group-%05d", i)
		}
		var wantOrg []groupgate.OrgMapping
		var wantRepo []groupgate.RepoMapping
		noErr(t, st.InTx(ctx, func(tx store.Store) error {
			orgs := []groupgate.Organization{mkOrg(t, ctx, tx, "acme"), mkOrg(t, ctx, tx, "beta")}
			repo := mkRepo(t, ctx, tx, orgs[0], "api")
			for i, g := range groups {
				switch i % 4 {
				case 0:
					wantOrg = append(wantOrg, mkOrgMapping(t, ctx, tx, orgs[i%8/4].ID, g, ""))
				case 1:
					wantRepo = append(wantRepo, mkRepoMapping(t, ctx, tx, repo.ID, g, ""))
				case 2:
					mkOrgMapping(t, ctx, tx, orgs[0].ID, "unasked-"+g, "")
				}
			}
			return nil
		}), "seed mappings")
		slices.SortFunc(wantOrg, func(a, b groupgate.OrgMapping) int {
			return cmp.Or(strings.Compare(a.OrganizationID, b.OrganizationID), strings.Compare(a.Group, b.Group))
		})
		slices.Reverse(groups) // the input order must not matter
		om, rm := must2(t, "mappings for 1,500 groups")(st.MappingsForGroups(ctx, groups))
		wantEqual(t, "org mappings", om, wantOrg)
		wantEqual(t, "repo mappings", rm, wantRepo)
	})
}
