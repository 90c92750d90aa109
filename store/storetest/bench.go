package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Bench measures the reads on the login and forward-auth paths against
// stores made by newStore (each benchmark gets its own). Seeding happens
// once per benchmark, outside the timer, in bulk transactions.
func Bench(b *testing.B, newStore func(b testing.TB) store.Store) {
	b.Run("GroupSet/read", func(b *testing.B) { benchGroupSetRead(b, newStore(b)) })
	b.Run("OrgMappings/list-10000", func(b *testing.B) { benchOrgMappingsList(b, newStore(b)) })
	b.Run("MappingsForGroups/1000-groups-of-100000", func(b *testing.B) { benchMappingsForGroups(b, newStore(b)) })
	b.Run("SCIM/create-10000-users", func(b *testing.B) { benchSCIMCreateUsers(b, newStore(b)) })
	b.Run("SCIM/add-10000-members", func(b *testing.B) { benchSCIMAddMembers(b, newStore(b)) })
	b.Run("SCIM/filter-100000-users", func(b *testing.B) { benchSCIMFilter(b, newStore(b)) })
}

// seedChunks runs fill(i) for i in [0, n) in transactions of chunk calls.
func seedChunks(b *testing.B, ctx context.Context, st store.Store, n, chunk int, fill func(tx store.Store, i int) error) {
	b.Helper()
	for lo := 0; lo < n; lo += chunk {
		err := st.InTx(ctx, func(tx store.Store) error {
			for i := lo; i < min(lo+chunk, n); i++ {
				if err := fill(tx, i); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("seed rows %d..%d: %v", lo, min(lo+chunk, n), err)
		}
	}
}

func benchGroupSetRead(b *testing.B, st store.Store) {
	ctx := b.Context()
	const users, groupsEach = 1000, 50
	start := time.Now()
	ids := make([]string, users)
	seedChunks(b, ctx, st, users, 100, func(tx store.Store, i int) error {
		u, err := tx.CreateUser(ctx, groupgate.User{UserName: fmt.Sprintf("user-%04d", i)})
		if err != nil {
			return err
		}
		ids[i] = u.ID
		set := make(groupgate.GroupSet, groupsEach)
		for j := range set {
			set[j] = groupgate.Membership{Group: fmt.Sprintf("group-%04d", (i+j*7)%500), Source: groupgate.SourceLogin}
		}
		_, err = tx.UpdateGroupSet(ctx, u.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) { return set, nil })
		return err
	})
	b.Logf("seeded %d users with %d groups each in %v", users, groupsEach, time.Since(start).Round(time.Millisecond))
	target := ids[users/2]
	if set, err := st.GetGroupSet(ctx, target); err != nil || len(set) != groupsEach {
		b.Fatalf("GetGroupSet = %d entries, %v; want %d", len(set), err, groupsEach)
	}
	for b.Loop() {
		if _, err := st.GetGroupSet(ctx, target); err != nil {
			b.Fatal(err)
		}
	}
}

func benchOrgMappingsList(b *testing.B, st store.Store) {
	ctx := b.Context()
	const n = 10000
	start := time.Now()
	org, err := st.CreateOrganization(ctx, groupgate.Organization{Name: "acme"})
	if err != nil {
		b.Fatal(err)
	}
	// A second organization with as many mappings makes the index matter.
	other, err := st.CreateOrganization(ctx, groupgate.Organization{Name: "other"})
	if err != nil {
		b.Fatal(err)
	}
	seedChunks(b, ctx, st, 2*n, 2000, func(tx store.Store, i int) error {
		orgID := org.ID
		if i%2 == 1 {
			orgID = other.ID
		}
		_, err := tx.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: orgID, Group: fmt.Sprintf("group-%05d", i/2)})
		return err
	})
	b.Logf("seeded %d mappings over 2 organizations in %v", 2*n, time.Since(start).Round(time.Millisecond))
	if got, err := st.ListOrgMappings(ctx, org.ID, store.ListOptions{}); err != nil || len(got) != n {
		b.Fatalf("ListOrgMappings = %d mappings, %v; want %d", len(got), err, n)
	}
	for b.Loop() {
		if _, err := st.ListOrgMappings(ctx, org.ID, store.ListOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchMappingsForGroups(b *testing.B, st store.Store) {
	ctx := b.Context()
	// 5,000 organizations with one repository each: 10,000 resources, each
	// mapping 10 of 10,000 groups, so 100,000 mappings and every group
	// mapped 10 times.
	const orgs, perResource, groupCount, userGroups = 5000, 10, 10000, 1000
	groupName := func(i int) string { return fmt.Sprintf("group-%05d", i%groupCount) }
	start := time.Now()
	seedChunks(b, ctx, st, orgs, 250, func(tx store.Store, i int) error {
		org, err := tx.CreateOrganization(ctx, groupgate.Organization{Name: fmt.Sprintf("org-%05d", i)})
		if err != nil {
			return err
		}
		repo, err := tx.CreateRepository(ctx, groupgate.Repository{OrganizationID: org.ID, Name: "repo"})
		if err != nil {
			return err
		}
		for k := range perResource {
			// Spread each resource's groups across the whole range.
			if _, err := tx.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: org.ID, Group: groupName(i + k*1000)}); err != nil {
				return err
			}
			if _, err := tx.AddRepoMapping(ctx, groupgate.RepoMapping{RepositoryID: repo.ID, Group: groupName(orgs + i + k*1000)}); err != nil {
				return err
			}
		}
		return nil
	})
	b.Logf("seeded %d organizations, %d repositories and %d mappings in %v", orgs, orgs, 2*orgs*perResource, time.Since(start).Round(time.Millisecond))
	groups := make([]string, userGroups)
	for i := range groups {
		groups[i] = groupName(i * (groupCount / userGroups))
	}
	om, rm, err := st.MappingsForGroups(ctx, groups)
	if err != nil || len(om)+len(rm) != userGroups*perResource {
		b.Fatalf("MappingsForGroups = %d+%d mappings, %v; want %d", len(om), len(rm), err, userGroups*perResource)
	}
	for b.Loop() {
		if _, _, err := st.MappingsForGroups(ctx, groups); err != nil {
			b.Fatal(err)
		}
	}
}
