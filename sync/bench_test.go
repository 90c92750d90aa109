package sync_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/postgres"
	"github.com/groupgate/groupgate/sync"
)

// countingWriter does nothing but count, so that benchmarks measure the
// Syncer and the store.
type countingWriter struct{ sets, deletes atomic.Int64 }

func (c *countingWriter) NextGenerations(_ context.Context, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	for _, id := range ids {
		out[id] = 1
	}
	return out, nil
}

// Generation is 1, the only generation NextGenerations hands out.
func (c *countingWriter) Generation(context.Context, string) (int64, error) { return 1, nil }

func (c *countingWriter) SetMembershipsIf(context.Context, string, int64, groupgate.Memberships) (bool, int, error) {
	c.sets.Add(1)
	return true, 1, nil
}

func (c *countingWriter) DeleteUserSessions(context.Context, string) (int, error) {
	c.deletes.Add(1)
	return 1, nil
}

// benchBackends are the stores the benchmarks run on: the same syncer code
// pays one round trip per read on PostgreSQL and none on SQLite.
var benchBackends = []struct {
	name string
	open func(testing.TB) store.Store
}{
	{"sqlite", newStore},
	{"postgres", func(t testing.TB) store.Store {
		ctx := context.Background()
		st, err := postgres.Open(ctx, testenv.Postgres(t))
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		return st
	}},
}

// seedMappings creates orgs organizations with one repository each, and
// groups groups each mapped to perGroup/2 organizations and perGroup/2
// repositories at random: groups*perGroup mappings. It returns the group
// names.
func seedMappings(b *testing.B, st store.Store, orgs, groups, perGroup int) []string {
	b.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	names := make([]string, groups)
	err := st.InTx(ctx, func(tx store.Store) error {
		orgIDs := make([]string, orgs)
		repoIDs := make([]string, orgs)
		for i := range orgs {
			o, err := tx.CreateOrganization(ctx, groupgate.Organization{Name: fmt.Sprintf("org-%05d", i)})
			if err != nil {
				return err
			}
			r, err := tx.CreateRepository(ctx, groupgate.Repository{OrganizationID: o.ID, Name: "repo"})
			if err != nil {
				return err
			}
			orgIDs[i], repoIDs[i] = o.ID, r.ID
		}
		orgRoles := []groupgate.OrgRole{"", groupgate.OrgRoleWriter, groupgate.OrgRoleAdmin, groupgate.OrgRoleMachine}
		repoRoles := []groupgate.RepoRole{"", groupgate.RepoRoleWrite, groupgate.RepoRoleLimitedWrite, groupgate.RepoRoleAdmin}
		for g := range groups {
			names[g] = fmt.Sprintf("group-%05d", g)
			for _, i := range rng.Perm(orgs)[:perGroup/2] {
				if _, err := tx.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: orgIDs[i], Group: names[g], RoleOverride: orgRoles[rng.IntN(len(orgRoles))]}); err != nil {
					return err
				}
			}
			for _, i := range rng.Perm(orgs)[:perGroup/2] {
				if _, err := tx.AddRepoMapping(ctx, groupgate.RepoMapping{RepositoryID: repoIDs[i], Group: names[g], RoleOverride: repoRoles[rng.IntN(len(repoRoles))]}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seed: %v", err)
	}
	return names
}

// BenchmarkResolve resolves a user in 1,000 groups against 100,000
// mappings (10,000 groups × 10) over 5,000 organizations and 5,000
// repositories: about 10,000 mappings apply to the user.
func BenchmarkResolve(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend.name, func(b *testing.B) { benchResolve(b, backend.open(b)) })
	}
}

func benchResolve(b *testing.B, st store.Store) {
	ctx := context.Background()
	groups := seedMappings(b, st, 5000, 10000, 10)
	u, err := st.CreateUser(ctx, groupgate.User{UserName: "bench", Active: true})
	if err != nil {
		b.Fatal(err)
	}
	_, err = st.UpdateGroupSet(ctx, u.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) {
		var set groupgate.GroupSet
		for i := 0; i < len(groups); i += 10 {
			set = append(set, groupgate.Membership{Group: groups[i], Source: groupgate.SourceSCIM})
		}
		return set, nil
	})
	if err != nil {
		b.Fatal(err)
	}

	check := func(a sync.Access) {
		if len(a.Groups) != 1000 || len(a.Orgs) == 0 || len(a.Repos) == 0 {
			b.Fatalf("resolved %d groups, %d orgs, %d repos", len(a.Groups), len(a.Orgs), len(a.Repos))
		}
	}
	b.Run("warm name cache", func(b *testing.B) {
		s := sync.New(st, &countingWriter{})
		a, err := s.Resolve(ctx, u.ID)
		if err != nil {
			b.Fatal(err)
		}
		check(a)
		for b.Loop() {
			if _, err := s.Resolve(ctx, u.ID); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(a.Orgs)+len(a.Repos)), "resources")
	})
	b.Run("cold name cache", func(b *testing.B) {
		for b.Loop() {
			a, err := sync.New(st, &countingWriter{}).Resolve(ctx, u.ID)
			if err != nil {
				b.Fatal(err)
			}
			check(a)
		}
	})
}

// BenchmarkRemoveOrgMapping10000Members removes the mapping of a group of
// 10,000 members, including recomputing and pushing every member's
// snapshot to a writer that only counts. The mapping is put back through
// the store, outside the timer.
func BenchmarkRemoveOrgMapping10000Members(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend.name, func(b *testing.B) { benchRemoveOrgMapping(b, backend.open(b)) })
	}
}

func benchRemoveOrgMapping(b *testing.B, st store.Store) {
	const members = 10000
	ctx := context.Background()
	seedMappings(b, st, 100, 200, 10)
	var org groupgate.Organization
	err := st.InTx(ctx, func(tx store.Store) error {
		var err error
		if org, err = tx.CreateOrganization(ctx, groupgate.Organization{Name: "acme"}); err != nil {
			return err
		}
		for i := range members {
			u, err := tx.CreateUser(ctx, groupgate.User{UserName: fmt.Sprintf("user-%05d", i), Active: true})
			if err != nil {
				return err
			}
			// Everyone is in the big group and in two of the seeded ones,
			// so that resolution has real work besides the big group.
			_, err = tx.UpdateGroupSet(ctx, u.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) {
				return groupgate.GroupSet{
					{Group: "everyone", Source: groupgate.SourceSCIM},
					{Group: fmt.Sprintf("group-%05d", i%200), Source: groupgate.SourceSCIM},
					{Group: fmt.Sprintf("group-%05d", (i*7)%200), Source: groupgate.SourceLogin},
				}, nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seed members: %v", err)
	}
	w := &countingWriter{}
	s := sync.New(st, w)
	for b.Loop() {
		b.StopTimer()
		if _, err := st.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: org.ID, Group: "everyone", RoleOverride: groupgate.OrgRoleWriter}); err != nil {
			b.Fatal(err)
		}
		w.sets.Store(0)
		b.StartTimer()
		if _, err := s.RemoveOrgMapping(ctx, "bench", org.ID, "everyone"); err != nil {
			b.Fatal(err)
		}
		if n := w.sets.Load(); n != members {
			b.Fatalf("pushed %d snapshots, want %d", n, members)
		}
	}
}
