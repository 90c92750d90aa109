package storetest

import (
	"fmt"
	"slices"
	"strconv"
	stdsync "sync"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// parallel runs n calls of fn at once (released together) and returns
// their errors by index.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg stdsync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func failOnErrors(t *testing.T, what string, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s %d: %v", what, i, err)
		}
	}
}

func (s suite) concurrency(t *testing.T) {
	t.Run("50 parallel group-set updates of one user all land", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		const n = 50
		errs := parallel(n, func(i int) error {
			_, err := st.UpdateGroupSet(ctx, u.ID, func(cur groupgate.GroupSet) (groupgate.GroupSet, error) {
				return append(cur, groupgate.Membership{Group: fmt.Sprintf("group-%02d", i), Source: groupgate.SourceLogin}), nil
			})
			return err
		})
		failOnErrors(t, "update group set", errs)
		want := make([]string, n)
		for i := range want {
			want[i] = fmt.Sprintf("group-%02d", i)
		}
		got := must[groupgate.GroupSet](t, "get group set")(st.GetGroupSet(ctx, u.ID)).Names()
		wantEqual(t, "groups after parallel updates", got, want)
	})

	t.Run("parallel mapping adds and override updates on one organization lose nothing", func(t *testing.T) {
		ctx, st := s.fresh(t)
		org := mkOrg(t, ctx, st, "acme")
		mkOrgMapping(t, ctx, st, org.ID, "counter", "0")
		const n = 50
		// Even workers add their own mapping; odd ones increment the
		// counter kept in the shared mapping's override, so a lost update
		// shows as a count below n.
		errs := parallel(2*n, func(i int) error {
			if i%2 == 0 {
				_, err := st.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: org.ID, Group: fmt.Sprintf("group-%02d", i/2)})
				return err
			}
			_, err := st.UpdateOrgMapping(ctx, org.ID, "counter", func(m *groupgate.OrgMapping) error {
				c, err := strconv.Atoi(string(m.RoleOverride))
				if err != nil {
					return fmt.Errorf("counter override %q: %w", m.RoleOverride, err)
				}
				m.RoleOverride = groupgate.OrgRole(strconv.Itoa(c + 1))
				return nil
			})
			return err
		})
		failOnErrors(t, "worker", errs)
		counter := must[groupgate.OrgMapping](t, "get counter")(st.GetOrgMapping(ctx, org.ID, "counter"))
		if counter.RoleOverride != groupgate.OrgRole(strconv.Itoa(n)) {
			t.Errorf("counter = %q after %d increments: updates were lost", counter.RoleOverride, n)
		}
		all := must[[]groupgate.OrgMapping](t, "list")(st.ListOrgMappings(ctx, org.ID, store.ListOptions{}))
		var groups []string
		for _, m := range all {
			groups = append(groups, m.Group)
		}
		want := []string{"counter"}
		for i := range n {
			want = append(want, fmt.Sprintf("group-%02d", i))
		}
		slices.Sort(want)
		wantEqual(t, "mapped groups", groups, want)
	})

	t.Run("parallel user updates each bump the version once", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		const n = 20
		errs := parallel(n, func(int) error {
			_, err := st.UpdateUser(ctx, u.ID, func(u *groupgate.User) error {
				c, _ := strconv.Atoi(u.DisplayName)
				u.DisplayName = strconv.Itoa(c + 1)
				return nil
			})
			return err
		})
		failOnErrors(t, "update user", errs)
		got := must[groupgate.User](t, "get user")(st.GetUser(ctx, u.ID))
		if got.Version != n+1 || got.DisplayName != strconv.Itoa(n) {
			t.Errorf("after %d parallel updates: version %d, counter %q; want %d and %d", n, got.Version, got.DisplayName, n+1, n)
		}
	})
}
