package groupset

import (
	"testing"
	"time"

	"github.com/groupgate/groupgate"
)

func TestDiff(t *testing.T) {
	t0, t1 := time.Unix(100, 0), time.Unix(200, 0)
	m := func(g string, s groupgate.MembershipSource, at time.Time) groupgate.Membership {
		return groupgate.Membership{Group: g, Source: s, AddedAt: at}
	}
	login, scim := groupgate.SourceLogin, groupgate.SourceSCIM
	cases := []struct {
		name               string
		cur, next          groupgate.GroupSet
		removed, added     int
		firstAdd, firstRem string
	}{
		{"an unchanged set writes nothing", groupgate.GroupSet{m("a", login, t0), m("b", scim, t0)}, groupgate.GroupSet{m("a", login, t0), m("b", scim, t0)}, 0, 0, "", ""},
		{"a new group is added only", groupgate.GroupSet{m("a", login, t0)}, groupgate.GroupSet{m("a", login, t0), m("c", login, t1)}, 0, 1, "c", ""},
		{"a dropped group is removed only", groupgate.GroupSet{m("a", login, t0), m("b", login, t0)}, groupgate.GroupSet{m("b", login, t0)}, 1, 0, "", "a"},
		{"the same group from another source is another membership", groupgate.GroupSet{m("a", login, t0)}, groupgate.GroupSet{m("a", scim, t0)}, 1, 1, "a", "a"},
		{"a changed AddedAt rewrites the membership", groupgate.GroupSet{m("a", login, t0)}, groupgate.GroupSet{m("a", login, t1)}, 1, 1, "a", "a"},
		{"an emptied set removes everything", groupgate.GroupSet{m("a", login, t0), m("b", scim, t0)}, nil, 2, 0, "", "a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rem, add := Diff(tc.cur, tc.next)
			if len(rem) != tc.removed || len(add) != tc.added {
				t.Fatalf("removed %v, added %v; want %d and %d", rem, add, tc.removed, tc.added)
			}
			if tc.firstAdd != "" && add[0].Group != tc.firstAdd {
				t.Errorf("added %v, want %s first", add, tc.firstAdd)
			}
			if tc.firstRem != "" && rem[0].Group != tc.firstRem {
				t.Errorf("removed %v, want %s first", rem, tc.firstRem)
			}
		})
	}
}
