package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

func (s suite) groups(t *testing.T) {
	t.Run("a created group round-trips through every lookup", func(t *testing.T) {
		ctx, st := s.fresh(t)
		in := groupgate.Group{Name: "Eng-Platform", ExternalID: "00g-Ext", SCIM: json.RawMessage(`{"displayName":"Eng-Platform","members":[]}`), Version: 5}
		g := must[groupgate.Group](t, "create group")(st.CreateGroup(ctx, in))
		if g.ID == "" {
			t.Fatal("created group has no ID")
		}
		checkTime(t, "CreatedAt", g.CreatedAt)
		checkTime(t, "UpdatedAt", g.UpdatedAt)
		want := in
		want.ID, want.CreatedAt, want.UpdatedAt, want.Version = g.ID, g.CreatedAt, g.UpdatedAt, 1
		wantEqual(t, "created group", g, want)
		wantEqual(t, "group by ID", must[groupgate.Group](t, "get group")(st.GetGroup(ctx, g.ID)), g)
		wantEqual(t, "group by name", must[groupgate.Group](t, "get group by name")(st.GetGroupByName(ctx, "Eng-Platform")), g)
		wantEqual(t, "group by externalId", must[groupgate.Group](t, "get group by externalId")(st.GetGroupByExternalID(ctx, "00g-Ext")), g)
		_, err := st.GetGroupByName(ctx, "eng-platform")
		wantCode(t, err, groupgate.NotFound, "group names match exactly")
	})

	t.Run("a caller-chosen group ID is kept", func(t *testing.T) {
		ctx, st := s.fresh(t)
		g := must[groupgate.Group](t, "create group")(st.CreateGroup(ctx, groupgate.Group{ID: "group-chosen", Name: "eng"}))
		if g.ID != "group-chosen" {
			t.Fatalf("ID = %q, want group-chosen", g.ID)
		}
	})

	t.Run("creating a group checks required and unique fields", func(t *testing.T) {
		cases := []struct {
			name  string
			group groupgate.Group
			want  groupgate.ErrorCode
		}{
			{"an empty name is refused", groupgate.Group{ExternalID: "x"}, groupgate.Invalid},
			{"a taken name is a conflict", groupgate.Group{Name: "eng"}, groupgate.Conflict},
			{"a name differing only in case is a different group", groupgate.Group{Name: "ENG"}, ""},
			{"a taken externalId is allowed (RFC 7643 §3.1: not unique)", groupgate.Group{Name: "ops", ExternalID: "ext-eng"}, ""},
			{"several groups may have no externalId", groupgate.Group{Name: "ops"}, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				must[groupgate.Group](t, "create eng")(st.CreateGroup(ctx, groupgate.Group{Name: "eng", ExternalID: "ext-eng"}))
				must[groupgate.Group](t, "create sales")(st.CreateGroup(ctx, groupgate.Group{Name: "sales"}))
				_, err := st.CreateGroup(ctx, tc.group)
				n := len(must[[]groupgate.Group](t, "list groups")(st.ListGroups(ctx, store.ListOptions{})))
				if tc.want == "" {
					noErr(t, err, "create group")
					if n != 3 {
						t.Fatalf("%d groups, want 3", n)
					}
					return
				}
				wantCode(t, err, tc.want, "create group")
				if n != 2 {
					t.Fatalf("%d groups after a refused create, want 2", n)
				}
			})
		}
	})

	t.Run("looking up a missing group answers NotFound", func(t *testing.T) {
		ctx, st := s.fresh(t)
		_, err := st.GetGroup(ctx, store.NewID())
		wantCode(t, err, groupgate.NotFound, "GetGroup")
		_, err = st.GetGroupByName(ctx, "absent")
		wantCode(t, err, groupgate.NotFound, "GetGroupByName")
		_, err = st.GetGroupByExternalID(ctx, "absent")
		wantCode(t, err, groupgate.NotFound, "GetGroupByExternalID")
		must[groupgate.Group](t, "create group without externalId")(st.CreateGroup(ctx, groupgate.Group{Name: "eng"}))
		_, err = st.GetGroupByExternalID(ctx, "")
		wantCode(t, err, groupgate.NotFound, "GetGroupByExternalID of the empty string")
	})

	t.Run("updating a group bumps the version and keeps ID and CreatedAt", func(t *testing.T) {
		ctx, st := s.fresh(t)
		g := must[groupgate.Group](t, "create group")(st.CreateGroup(ctx, groupgate.Group{Name: "eng"}))
		got := must[groupgate.Group](t, "update group")(st.UpdateGroup(ctx, g.ID, func(cur *groupgate.Group) error {
			cur.ID, cur.CreatedAt, cur.Version = "other", fixedTime(1), 50
			cur.Name, cur.ExternalID, cur.SCIM = "engineering", "ext-1", json.RawMessage(`{"displayName":"engineering"}`)
			return nil
		}))
		want := groupgate.Group{ID: g.ID, Name: "engineering", ExternalID: "ext-1", SCIM: json.RawMessage(`{"displayName":"engineering"}`),
			CreatedAt: g.CreatedAt, UpdatedAt: got.UpdatedAt, Version: 2}
		wantEqual(t, "updated group", got, want)
		checkNotBefore(t, "UpdatedAt after update", got.UpdatedAt, g.UpdatedAt)
		wantEqual(t, "updated group read back", must[groupgate.Group](t, "get group")(st.GetGroup(ctx, g.ID)), got)
		_, err := st.UpdateGroup(ctx, store.NewID(), func(*groupgate.Group) error { return nil })
		wantCode(t, err, groupgate.NotFound, "update missing group")
	})

	t.Run("a refused group update changes nothing", func(t *testing.T) {
		cases := []struct {
			name   string
			change func(*groupgate.Group) error
			want   groupgate.ErrorCode // "" means fn's own error
		}{
			{"taking another group's name is a conflict", func(g *groupgate.Group) error { g.Name = "ops"; return nil }, groupgate.Conflict},
			{"clearing the name is invalid", func(g *groupgate.Group) error { g.Name = ""; return nil }, groupgate.Invalid},
			{"an error from fn is returned unchanged", func(g *groupgate.Group) error { g.Name = "changed"; return errBoom }, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				eng := must[groupgate.Group](t, "create eng")(st.CreateGroup(ctx, groupgate.Group{Name: "eng", ExternalID: "ext-eng"}))
				must[groupgate.Group](t, "create ops")(st.CreateGroup(ctx, groupgate.Group{Name: "ops", ExternalID: "ext-ops"}))
				_, err := st.UpdateGroup(ctx, eng.ID, tc.change)
				if tc.want == "" {
					if !errors.Is(err, errBoom) {
						t.Fatalf("update error = %v, want fn's error", err)
					}
				} else {
					wantCode(t, err, tc.want, "update group")
				}
				wantEqual(t, "eng after a refused update", must[groupgate.Group](t, "get eng")(st.GetGroup(ctx, eng.ID)), eng)
			})
		}
	})

	t.Run("deleting a group leaves group sets alone", func(t *testing.T) {
		ctx, st := s.fresh(t)
		g := must[groupgate.Group](t, "create group")(st.CreateGroup(ctx, groupgate.Group{Name: "eng"}))
		u := mkUser(t, ctx, st, "alice")
		setGroups(t, ctx, st, u.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceSCIM}})
		noErr(t, st.DeleteGroup(ctx, g.ID), "delete group")
		_, err := st.GetGroup(ctx, g.ID)
		wantCode(t, err, groupgate.NotFound, "get deleted group")
		_, err = st.GetGroupByName(ctx, "eng")
		wantCode(t, err, groupgate.NotFound, "get deleted group by name")
		wantCode(t, st.DeleteGroup(ctx, g.ID), groupgate.NotFound, "delete group twice")
		wantEqual(t, "group set after deleting the group", must[groupgate.GroupSet](t, "get group set")(st.GetGroupSet(ctx, u.ID)).Names(), []string{"eng"})
		must[groupgate.Group](t, "re-create group with the same name")(st.CreateGroup(ctx, groupgate.Group{Name: "eng"}))
	})

	t.Run("groups are listed by name and paged", func(t *testing.T) {
		ctx, st := s.fresh(t)
		if got := must[[]groupgate.Group](t, "list groups")(st.ListGroups(ctx, store.ListOptions{})); len(got) != 0 {
			t.Fatalf("empty store lists groups %+v", got)
		}
		var want []groupgate.Group
		for _, name := range []string{"ops", "eng", "sales", "admins", "dev"} {
			want = append(want, must[groupgate.Group](t, "create group")(st.CreateGroup(ctx, groupgate.Group{Name: name})))
		}
		slices.SortFunc(want, func(a, b groupgate.Group) int { return strings.Compare(a.Name, b.Name) })
		for _, o := range pages(len(want)) {
			got := must[[]groupgate.Group](t, "list groups "+pageName(o))(st.ListGroups(ctx, o))
			wantEqual(t, "groups "+pageName(o), got, window(want, o))
		}
	})
}
