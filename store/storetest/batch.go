package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// perUser is what the per-user methods say about users, in the order the
// batch methods promise: the reference the batch reads are checked against.
type perUser struct {
	sets     map[string]groupgate.GroupSet
	members  []groupgate.OrgMember
	contribs []groupgate.RepoContributor
}

func readPerUser(t testing.TB, ctx context.Context, st store.Store, userIDs []string) perUser {
	t.Helper()
	ids := slices.Clone(userIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	want := perUser{sets: map[string]groupgate.GroupSet{}, members: []groupgate.OrgMember{}, contribs: []groupgate.RepoContributor{}}
	for _, id := range ids {
		set, err := st.GetGroupSet(ctx, id)
		if groupgate.IsCode(err, groupgate.NotFound) {
			continue
		}
		noErr(t, err, "get group set of "+id)
		want.sets[id] = set
		want.members = append(want.members, must[[]groupgate.OrgMember](t, "list org roles of "+id)(st.ListUserOrgMembers(ctx, id))...)
		want.contribs = append(want.contribs, must[[]groupgate.RepoContributor](t, "list repo roles of "+id)(st.ListUserRepoContributors(ctx, id))...)
	}
	return want
}

// checkBatch fails t unless the batch reads of userIDs equal the per-user
// reads.
func checkBatch(t testing.TB, ctx context.Context, st store.Store, userIDs []string) perUser {
	t.Helper()
	want := readPerUser(t, ctx, st, userIDs)
	got := perUser{
		sets:     must[map[string]groupgate.GroupSet](t, "GetGroupSets")(st.GetGroupSets(ctx, userIDs)),
		members:  must[[]groupgate.OrgMember](t, "ListOrgMembersOfUsers")(st.ListOrgMembersOfUsers(ctx, userIDs)),
		contribs: must[[]groupgate.RepoContributor](t, "ListRepoContributorsOfUsers")(st.ListRepoContributorsOfUsers(ctx, userIDs)),
	}
	wantEqual(t, "group sets", got.sets, want.sets)
	wantEqual(t, "manual organization roles", got.members, want.members)
	wantEqual(t, "manual repository roles", got.contribs, want.contribs)
	return got
}

func (s suite) batchReads(t *testing.T) {
	t.Run("batch reads equal the per-user reads and leave unknown IDs out", func(t *testing.T) {
		ctx, st := s.fresh(t)
		acme, beta := mkOrg(t, ctx, st, "acme"), mkOrg(t, ctx, st, "beta")
		api, web := mkRepo(t, ctx, st, acme, "api"), mkRepo(t, ctx, st, beta, "web")
		alice, bob, carol, dave := mkUser(t, ctx, st, "alice"), mkUser(t, ctx, st, "bob"), mkUser(t, ctx, st, "carol"), mkUser(t, ctx, st, "dave")
		setGroups(t, ctx, st, alice.ID, groupgate.GroupSet{
			{Group: "eng", Source: groupgate.SourceSCIM, AddedAt: fixedTime(1)},
			{Group: "eng", Source: groupgate.SourceLogin, AddedAt: fixedTime(2)},
			{Group: "admins", Source: groupgate.SourceLogin, AddedAt: fixedTime(3)},
		})
		setGroups(t, ctx, st, carol.ID, groupgate.GroupSet{{Group: "ops", Source: groupgate.SourceSCIM, AddedAt: fixedTime(4)}})
		setGroups(t, ctx, st, dave.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceSCIM, AddedAt: fixedTime(5)}})
		for _, m := range []groupgate.OrgMember{
			{OrganizationID: beta.ID, UserID: alice.ID, Role: groupgate.OrgRoleAdmin},
			{OrganizationID: acme.ID, UserID: alice.ID, Role: groupgate.OrgRoleWriter},
			{OrganizationID: acme.ID, UserID: bob.ID, Role: groupgate.OrgRoleAdmin},
			{OrganizationID: acme.ID, UserID: dave.ID, Role: groupgate.OrgRoleAdmin},
		} {
			must[groupgate.OrgMember](t, "set org role")(st.SetOrgMember(ctx, m))
		}
		for _, c := range []groupgate.RepoContributor{
			{RepositoryID: web.ID, UserID: alice.ID, Role: groupgate.RepoRoleWrite},
			{RepositoryID: api.ID, UserID: alice.ID, Role: groupgate.RepoRoleAdmin},
			{RepositoryID: api.ID, UserID: carol.ID, Role: groupgate.RepoRoleWrite},
			{RepositoryID: web.ID, UserID: dave.ID, Role: groupgate.RepoRoleWrite},
		} {
			must[groupgate.RepoContributor](t, "set repo role")(st.SetRepoContributor(ctx, c))
		}

		// dave is not asked for; an unknown ID and a repeated one are.
		ids := []string{carol.ID, store.NewID(), alice.ID, bob.ID, alice.ID}
		got := checkBatch(t, ctx, st, ids)
		if len(got.sets) != 3 || len(got.members) != 3 || len(got.contribs) != 3 {
			t.Fatalf("read %d sets, %d org roles, %d repo roles; want 3 of each (alice, bob, carol only)", len(got.sets), len(got.members), len(got.contribs))
		}
		if set, ok := got.sets[bob.ID]; !ok || len(set) != 0 {
			t.Errorf("bob's set = %+v (present %v), want present and empty", set, ok)
		}
	})

	t.Run("repositories under a base role are listed for the organizations that have one", func(t *testing.T) {
		ctx, st := s.fresh(t)
		acme := must[groupgate.Organization](t, "create acme")(st.CreateOrganization(ctx, groupgate.Organization{ID: "org-a", Name: "acme", RepositoryBaseRole: groupgate.RepoRoleWrite}))
		beta := must[groupgate.Organization](t, "create beta")(st.CreateOrganization(ctx, groupgate.Organization{ID: "org-b", Name: "beta"}))
		empty := must[groupgate.Organization](t, "create empty")(st.CreateOrganization(ctx, groupgate.Organization{ID: "org-c", Name: "empty", RepositoryBaseRole: groupgate.RepoRoleRead}))
		web, api := mkRepo(t, ctx, st, acme, "web"), mkRepo(t, ctx, st, acme, "api")
		mkRepo(t, ctx, st, beta, "site")
		want := []store.BaseRoleRepository{{Repository: api, BaseRole: groupgate.RepoRoleWrite}, {Repository: web, BaseRole: groupgate.RepoRoleWrite}}
		got := must[[]store.BaseRoleRepository](t, "list")(st.ListBaseRoleRepositories(ctx, []string{acme.ID, beta.ID, empty.ID, "unknown"}))
		wantEqual(t, "repositories under a base role", got, want)
		if got := must[[]store.BaseRoleRepository](t, "list none")(st.ListBaseRoleRepositories(ctx, nil)); len(got) != 0 {
			t.Errorf("no IDs listed %+v", got)
		}
		noErr(t, st.SetOrganizationRepositoryBaseRole(ctx, beta.ID, groupgate.RepoRoleAdmin), "set beta's base role")
		noErr(t, st.SetOrganizationRepositoryBaseRole(ctx, acme.ID, groupgate.RepoRoleUnspecified), "clear acme's base role")
		got = must[[]store.BaseRoleRepository](t, "list after changes")(st.ListBaseRoleRepositories(ctx, []string{acme.ID, beta.ID}))
		if len(got) != 1 || got[0].Repository.Name != "site" || got[0].BaseRole != groupgate.RepoRoleAdmin {
			t.Errorf("after changes listed %+v, want beta/site under ADMIN", got)
		}
	})

	t.Run("batch reads of no IDs or only unknown IDs return nothing", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		setGroups(t, ctx, st, u.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceSCIM}})
		for _, ids := range [][]string{nil, {}, {store.NewID(), store.NewID()}} {
			t.Run(fmt.Sprintf("%d IDs", len(ids)), func(t *testing.T) {
				got := checkBatch(t, ctx, st, ids)
				if len(got.sets) != 0 || len(got.members) != 0 || len(got.contribs) != 0 {
					t.Fatalf("read %+v, want nothing", got)
				}
			})
		}
	})

	t.Run("batch reads take 1,500 IDs in one call", func(t *testing.T) {
		ctx, st := s.fresh(t)
		const n = 1500
		ids := make([]string, 0, n)
		noErr(t, st.InTx(ctx, func(tx store.Store) error {
			org := mkOrg(t, ctx, tx, "acme")
			repo := mkRepo(t, ctx, tx, org, "api")
			for i := range n {
				u := mkUser(t, ctx, tx, fmt.Sprintf("user-%04d", i))
				ids = append(ids, u.ID)
				if i%3 != 0 {
					setGroups(t, ctx, tx, u.ID, groupgate.GroupSet{
						{Group: fmt.Sprintf("g-%d", i%7), Source: groupgate.SourceSCIM, AddedAt: fixedTime(i % 11)},
						{Group: "everyone", Source: groupgate.SourceLogin, AddedAt: fixedTime(1)},
					})
				}
				if i%5 == 0 {
					must[groupgate.OrgMember](t, "set org role")(tx.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: org.ID, UserID: u.ID, Role: groupgate.OrgRoleWriter}))
				}
				if i%4 == 0 {
					must[groupgate.RepoContributor](t, "set repo role")(tx.SetRepoContributor(ctx, groupgate.RepoContributor{RepositoryID: repo.ID, UserID: u.ID, Role: groupgate.RepoRoleWrite}))
				}
			}
			return nil
		}), "seed users")
		got := checkBatch(t, ctx, st, ids)
		if len(got.sets) != n || len(got.members) != n/5 || len(got.contribs) != n/4 {
			t.Fatalf("read %d sets, %d org roles, %d repo roles; want %d, %d, %d", len(got.sets), len(got.members), len(got.contribs), n, n/5, n/4)
		}
	})

	t.Run("batch reads inside a transaction see its uncommitted writes", func(t *testing.T) {
		ctx, st := s.fresh(t)
		org := mkOrg(t, ctx, st, "acme")
		noErr(t, st.InTx(ctx, func(tx store.Store) error {
			u := mkUser(t, ctx, tx, "alice")
			setGroups(t, ctx, tx, u.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceSCIM}})
			must[groupgate.OrgMember](t, "set org role")(tx.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: org.ID, UserID: u.ID, Role: groupgate.OrgRoleAdmin}))
			got := checkBatch(t, ctx, tx, []string{u.ID})
			if len(got.sets[u.ID]) != 1 || len(got.members) != 1 {
				t.Fatalf("read %+v inside the transaction, want alice's group and role", got)
			}
			return nil
		}), "transaction")
	})
}
