package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

func (s suite) groupSets(t *testing.T) {
	t.Run("a new user's group set is empty", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		if got := must[groupgate.GroupSet](t, "get group set")(st.GetGroupSet(ctx, u.ID)); len(got) != 0 {
			t.Fatalf("GetGroupSet = %+v, want empty", got)
		}
	})

	t.Run("a missing user's group set is NotFound", func(t *testing.T) {
		ctx, st := s.fresh(t)
		_, err := st.GetGroupSet(ctx, store.NewID())
		wantCode(t, err, groupgate.NotFound, "GetGroupSet")
		called := false
		_, err = st.UpdateGroupSet(ctx, store.NewID(), func(gs groupgate.GroupSet) (groupgate.GroupSet, error) {
			called = true
			return gs, nil
		})
		wantCode(t, err, groupgate.NotFound, "UpdateGroupSet")
		if called {
			t.Error("fn was called for a missing user")
		}
	})

	t.Run("UpdateGroupSet replaces the whole set and returns it sorted by group then source", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		first := groupgate.GroupSet{
			{Group: "zeta", Source: groupgate.SourceLogin, AddedAt: fixedTime(4)},
			{Group: "alpha", Source: groupgate.SourceSCIM, AddedAt: fixedTime(3)},
			{Group: "alpha", Source: groupgate.SourceLogin, AddedAt: fixedTime(2)},
			{Group: "mid", Source: groupgate.SourceLogin, AddedAt: fixedTime(1)},
		}
		got := setGroups(t, ctx, st, u.ID, first)
		want := groupgate.GroupSet{first[2], first[1], first[3], first[0]}
		wantEqual(t, "stored set", got, want)
		wantEqual(t, "set read back", must[groupgate.GroupSet](t, "get group set")(st.GetGroupSet(ctx, u.ID)), want)

		var seen groupgate.GroupSet
		got = must[groupgate.GroupSet](t, "replace set")(st.UpdateGroupSet(ctx, u.ID, func(cur groupgate.GroupSet) (groupgate.GroupSet, error) {
			seen = slices.Clone(cur)
			return groupgate.GroupSet{
				{Group: "new", Source: groupgate.SourceSCIM, AddedAt: fixedTime(9)},
				cur[2], // mid/login, kept as it was
			}, nil
		}))
		wantEqual(t, "set seen by fn", seen, want)
		wantEqual(t, "replaced set", got, groupgate.GroupSet{want[2], {Group: "new", Source: groupgate.SourceSCIM, AddedAt: fixedTime(9)}})
		wantEqual(t, "replaced set read back", must[groupgate.GroupSet](t, "get group set")(st.GetGroupSet(ctx, u.ID)), got)

		got = setGroups(t, ctx, st, u.ID, nil)
		if len(got) != 0 {
			t.Fatalf("set after clearing = %+v, want empty", got)
		}
		if got := must[groupgate.GroupSet](t, "get group set")(st.GetGroupSet(ctx, u.ID)); len(got) != 0 {
			t.Fatalf("cleared set read back as %+v", got)
		}
	})

	t.Run("a zero AddedAt is filled with now and a given one is kept, also in another time zone", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		given := fixedTime(5).In(time.FixedZone("UTC+2", 2*3600))
		got := setGroups(t, ctx, st, u.ID, groupgate.GroupSet{
			{Group: "eng", Source: groupgate.SourceLogin},
			{Group: "ops", Source: groupgate.SourceLogin, AddedAt: given},
		})
		if len(got) != 2 {
			t.Fatalf("set = %+v, want 2 entries", got)
		}
		checkTime(t, "filled AddedAt", got[0].AddedAt)
		checkTime(t, "given AddedAt", got[1].AddedAt)
		if !got[1].AddedAt.Equal(given) {
			t.Errorf("given AddedAt stored as %v, want %v", got[1].AddedAt, given)
		}
		read := must[groupgate.GroupSet](t, "get group set")(st.GetGroupSet(ctx, u.ID))
		wantEqual(t, "set read back", read, got)
		// Passing the set through unchanged keeps every AddedAt.
		again := must[groupgate.GroupSet](t, "rewrite set")(st.UpdateGroupSet(ctx, u.ID, func(cur groupgate.GroupSet) (groupgate.GroupSet, error) {
			return cur, nil
		}))
		wantEqual(t, "set after an identity update", again, got)
	})

	t.Run("an invalid set is refused and nothing is written", func(t *testing.T) {
		cases := []struct {
			name string
			set  groupgate.GroupSet
		}{
			{"an entry with an empty group", groupgate.GroupSet{{Group: "ok", Source: groupgate.SourceLogin}, {Group: "", Source: groupgate.SourceLogin}}},
			{"an entry with an unknown source", groupgate.GroupSet{{Group: "eng", Source: "ldap"}}},
			{"an entry with an empty source", groupgate.GroupSet{{Group: "eng"}}},
			{"a duplicate group and source", groupgate.GroupSet{{Group: "dup", Source: groupgate.SourceSCIM}, {Group: "x", Source: groupgate.SourceSCIM}, {Group: "dup", Source: groupgate.SourceSCIM}}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				u := mkUser(t, ctx, st, "alice")
				before := setGroups(t, ctx, st, u.ID, groupgate.GroupSet{{Group: "keep", Source: groupgate.SourceLogin}})
				_, err := st.UpdateGroupSet(ctx, u.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) { return tc.set, nil })
				wantCode(t, err, groupgate.Invalid, "UpdateGroupSet")
				wantEqual(t, "set after a refused update", must[groupgate.GroupSet](t, "get group set")(st.GetGroupSet(ctx, u.ID)), before)
			})
		}
	})

	t.Run("the same group from two sources is two entries", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		got := setGroups(t, ctx, st, u.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceSCIM}, {Group: "eng", Source: groupgate.SourceLogin}})
		if len(got) != 2 || got[0].Source != groupgate.SourceLogin || got[1].Source != groupgate.SourceSCIM {
			t.Fatalf("set = %+v, want eng/login then eng/scim", got)
		}
	})

	t.Run("a refused update inside a transaction undoes only itself", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		setGroups(t, ctx, st, u.ID, groupgate.GroupSet{{Group: "keep", Source: groupgate.SourceLogin}})
		noErr(t, st.InTx(ctx, func(tx store.Store) error {
			setGroups(t, ctx, tx, u.ID, groupgate.GroupSet{{Group: "first", Source: groupgate.SourceSCIM}})
			_, err := tx.UpdateGroupSet(ctx, u.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) {
				return groupgate.GroupSet{{Group: "dup", Source: groupgate.SourceSCIM}, {Group: "dup", Source: groupgate.SourceSCIM}}, nil
			})
			wantCode(t, err, groupgate.Invalid, "UpdateGroupSet of a duplicate")
			_, err = tx.UpdateGroupSet(ctx, u.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) { return nil, errBoom })
			if !errors.Is(err, errBoom) {
				t.Fatalf("UpdateGroupSet error = %v, want fn's error", err)
			}
			_, err = tx.UpdateGroupSet(ctx, store.NewID(), func(groupgate.GroupSet) (groupgate.GroupSet, error) { return nil, nil })
			wantCode(t, err, groupgate.NotFound, "UpdateGroupSet of an unknown user")
			// The transaction is still usable and holds the first update.
			setGroups(t, ctx, tx, u.ID, groupgate.GroupSet{{Group: "first", Source: groupgate.SourceSCIM}, {Group: "second", Source: groupgate.SourceLogin}})
			return nil
		}), "transaction")
		got := must[groupgate.GroupSet](t, "get group set")(st.GetGroupSet(ctx, u.ID))
		if names := got.Names(); len(names) != 2 || names[0] != "first" || names[1] != "second" {
			t.Fatalf("set after the transaction = %+v, want first and second", got)
		}
	})

	t.Run("an error from fn is returned unchanged and nothing is written", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		before := setGroups(t, ctx, st, u.ID, groupgate.GroupSet{{Group: "keep", Source: groupgate.SourceLogin}})
		_, err := st.UpdateGroupSet(ctx, u.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) {
			return groupgate.GroupSet{{Group: "other", Source: groupgate.SourceSCIM}}, errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("UpdateGroupSet error = %v, want fn's error", err)
		}
		wantEqual(t, "set after fn failed", must[groupgate.GroupSet](t, "get group set")(st.GetGroupSet(ctx, u.ID)), before)
	})

	t.Run("ListGroupMembers returns each member once, sorted", func(t *testing.T) {
		ctx, st := s.fresh(t)
		var eng []string
		for i, name := range []string{"alice", "bob", "carol", "dave"} {
			u := mkUser(t, ctx, st, name)
			switch i {
			case 0: // in eng through both sources
				setGroups(t, ctx, st, u.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceLogin}, {Group: "eng", Source: groupgate.SourceSCIM}, {Group: "ops", Source: groupgate.SourceLogin}})
				eng = append(eng, u.ID)
			case 1, 3:
				setGroups(t, ctx, st, u.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceSCIM}})
				eng = append(eng, u.ID)
			case 2: // a group name that differs only in case is another group
				setGroups(t, ctx, st, u.ID, groupgate.GroupSet{{Group: "ENG", Source: groupgate.SourceLogin}})
			}
		}
		slices.Sort(eng)
		wantEqual(t, "eng members", must[[]string](t, "list eng")(st.ListGroupMembers(ctx, "eng")), eng)
		if got := must[[]string](t, "list nobody")(st.ListGroupMembers(ctx, "nobody")); len(got) != 0 {
			t.Errorf("members of an unused group = %v, want none", got)
		}
	})
}
