// Package groupset compares group sets for the SQL backends, so that
// rewriting a user's set writes only the memberships that changed.
package groupset

import "github.com/groupgate/groupgate"

type key struct {
	group  string
	source groupgate.MembershipSource
}

// Diff returns the memberships of cur that next does not hold as they are
// (removed) and those of next that cur does not (added). A membership
// whose AddedAt changed is in both.
func Diff(cur, next groupgate.GroupSet) (removed, added groupgate.GroupSet) {
	old := make(map[key]groupgate.Membership, len(cur))
	for _, m := range cur {
		old[key{m.Group, m.Source}] = m
	}
	for _, m := range next {
		k := key{m.Group, m.Source}
		o, ok := old[k]
		if ok && o.AddedAt.Equal(m.AddedAt) {
			delete(old, k)
			continue
		}
		added = append(added, m)
	}
	for _, m := range cur {
		if _, ok := old[key{m.Group, m.Source}]; ok {
			removed = append(removed, m)
		}
	}
	return removed, added
}
