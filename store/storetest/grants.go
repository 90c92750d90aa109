package storetest

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// wantUserGrants fails t unless GetUserGrants of userID equals what the
// calls it stands for return, and returns it.
func wantUserGrants(t testing.TB, ctx context.Context, st store.Store, userID string) store.UserGrants {
	t.Helper()
	got := must[store.UserGrants](t, "GetUserGrants")(st.GetUserGrants(ctx, userID))
	set := must[groupgate.GroupSet](t, "GetGroupSet")(st.GetGroupSet(ctx, userID))
	om, rm := must2(t, "MappingsForGroups")(st.MappingsForGroups(ctx, set.Names()))
	want := store.UserGrants{
		Groups:           set,
		OrgMappings:      om,
		RepoMappings:     rm,
		OrgMembers:       must[[]groupgate.OrgMember](t, "ListUserOrgMembers")(st.ListUserOrgMembers(ctx, userID)),
		RepoContributors: must[[]groupgate.RepoContributor](t, "ListUserRepoContributors")(st.ListUserRepoContributors(ctx, userID)),
	}
	orgs := map[string]bool{}
	for _, m := range om {
		orgs[m.OrganizationID] = true
	}
	for _, m := range want.OrgMembers {
		orgs[m.OrganizationID] = true
	}
	repos := []string{}
	for _, m := range rm {
		repos = append(repos, m.RepositoryID)
	}
	for _, c := range want.RepoContributors {
		repos = append(repos, c.RepositoryID)
	}
	for _, id := range repos {
		orgs[must[groupgate.Repository](t, "GetRepository")(st.GetRepository(ctx, id)).OrganizationID] = true
	}
	ids := slices.Sorted(maps.Keys(orgs))
	want.BaseRoleRepositories = must[[]store.BaseRoleRepository](t, "ListBaseRoleRepositories")(st.ListBaseRoleRepositories(ctx, ids))
	// Empty and nil slices are one answer: nothing.
	norm := func(g *store.UserGrants) {
		if len(g.Groups) == 0 {
			g.Groups = nil
		}
		if len(g.OrgMappings) == 0 {
			g.OrgMappings = nil
		}
		if len(g.RepoMappings) == 0 {
			g.RepoMappings = nil
		}
		if len(g.OrgMembers) == 0 {
			g.OrgMembers = nil
		}
		if len(g.RepoContributors) == 0 {
			g.RepoContributors = nil
		}
		if len(g.BaseRoleRepositories) == 0 {
			g.BaseRoleRepositories = nil
		}
	}
	cmp := got
	norm(&cmp)
	norm(&want)
	wantEqual(t, "grants of "+userID, cmp, want)
	return got
}

func (s suite) userGrants(t *testing.T) {
	t.Run("a user's grants are their group set, its groups' mappings and their manual roles", func(t *testing.T) {
		ctx, st := s.fresh(t)
		acme, beta := mkOrg(t, ctx, st, "acme"), mkOrg(t, ctx, st, "beta")
		api, web := mkRepo(t, ctx, st, acme, "api"), mkRepo(t, ctx, st, beta, "web")
		alice, bob := mkUser(t, ctx, st, "alice"), mkUser(t, ctx, st, "bob")
		setGroups(t, ctx, st, alice.ID, groupgate.GroupSet{
			{Group: "eng", Source: groupgate.SourceSCIM, AddedAt: fixedTime(1)},
			{Group: "eng", Source: groupgate.SourceLogin, AddedAt: fixedTime(2)},
			{Group: "admins", Source: groupgate.SourceLogin, AddedAt: fixedTime(3)},
			{Group: "unmapped", Source: groupgate.SourceLogin, AddedAt: fixedTime(4)},
		})
		setGroups(t, ctx, st, bob.ID, groupgate.GroupSet{{Group: "ops", Source: groupgate.SourceSCIM, AddedAt: fixedTime(5)}})
		mkOrgMapping(t, ctx, st, beta.ID, "eng", groupgate.OrgRoleAdmin)
		mkOrgMapping(t, ctx, st, acme.ID, "eng", "")
		mkOrgMapping(t, ctx, st, acme.ID, "admins", groupgate.OrgRoleWriter)
		mkOrgMapping(t, ctx, st, acme.ID, "ops", "")
		mkRepoMapping(t, ctx, st, web.ID, "admins", groupgate.RepoRoleAdmin)
		mkRepoMapping(t, ctx, st, api.ID, "eng", "")
		mkRepoMapping(t, ctx, st, api.ID, "ops", groupgate.RepoRoleWrite)
		must[groupgate.OrgMember](t, "set org role")(st.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: beta.ID, UserID: alice.ID, Role: groupgate.OrgRoleWriter}))
		must[groupgate.OrgMember](t, "set org role")(st.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: acme.ID, UserID: bob.ID, Role: groupgate.OrgRoleAdmin}))
		must[groupgate.RepoContributor](t, "set repo role")(st.SetRepoContributor(ctx, groupgate.RepoContributor{RepositoryID: web.ID, UserID: alice.ID, Role: groupgate.RepoRoleWrite}))

		// Base roles: of acme (mapped), of gamma (through a repository
		// contributor role), not of delta (nothing of alice's names it).
		gamma, delta := mkOrg(t, ctx, st, "gamma"), mkOrg(t, ctx, st, "delta")
		site := mkRepo(t, ctx, st, gamma, "site")
		mkRepo(t, ctx, st, delta, "other")
		for _, o := range []groupgate.Organization{acme, gamma, delta} {
			noErr(t, st.SetOrganizationRepositoryBaseRole(ctx, o.ID, groupgate.RepoRoleWrite), "set base role of "+o.Name)
		}
		must[groupgate.RepoContributor](t, "set repo role")(st.SetRepoContributor(ctx, groupgate.RepoContributor{RepositoryID: site.ID, UserID: alice.ID, Role: groupgate.RepoRoleRead}))

		got := wantUserGrants(t, ctx, st, alice.ID)
		if len(got.BaseRoleRepositories) != 2 || got.BaseRoleRepositories[0].Repository.OrganizationID == delta.ID || got.BaseRoleRepositories[1].Repository.OrganizationID == delta.ID {
			t.Fatalf("repositories under a base role %+v, want acme/api and gamma/site", got.BaseRoleRepositories)
		}
		wantUserGrants(t, ctx, st, bob.ID)
		if len(got.Groups) != 4 || len(got.OrgMappings) != 3 || len(got.RepoMappings) != 2 || len(got.OrgMembers) != 1 || len(got.RepoContributors) != 2 {
			t.Fatalf("alice's grants: %d memberships, %d org mappings, %d repo mappings, %d org roles, %d repo roles; want 4, 3, 2, 1, 2 (not bob's)",
				len(got.Groups), len(got.OrgMappings), len(got.RepoMappings), len(got.OrgMembers), len(got.RepoContributors))
		}
	})

	t.Run("a user without groups or roles has empty grants", func(t *testing.T) {
		ctx, st := s.fresh(t)
		org := mkOrg(t, ctx, st, "acme")
		mkOrgMapping(t, ctx, st, org.ID, "eng", "")
		u := mkUser(t, ctx, st, "alice")
		got := wantUserGrants(t, ctx, st, u.ID)
		if len(got.Groups)+len(got.OrgMappings)+len(got.RepoMappings)+len(got.OrgMembers)+len(got.RepoContributors) != 0 {
			t.Fatalf("grants %+v, want none", got)
		}
	})

	t.Run("the grants of an unknown user are NotFound", func(t *testing.T) {
		ctx, st := s.fresh(t)
		_, err := st.GetUserGrants(ctx, store.NewID())
		wantCode(t, err, groupgate.NotFound, "GetUserGrants of an unknown user")
	})

	t.Run("grants read inside a transaction see its uncommitted writes", func(t *testing.T) {
		ctx, st := s.fresh(t)
		org := mkOrg(t, ctx, st, "acme")
		noErr(t, st.InTx(ctx, func(tx store.Store) error {
			u := mkUser(t, ctx, tx, "alice")
			setGroups(t, ctx, tx, u.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceSCIM}})
			mkOrgMapping(t, ctx, tx, org.ID, "eng", groupgate.OrgRoleAdmin)
			got := wantUserGrants(t, ctx, tx, u.ID)
			if len(got.Groups) != 1 || len(got.OrgMappings) != 1 {
				t.Fatalf("read %+v inside the transaction, want alice's group and its mapping", got)
			}
			return nil
		}), "transaction")
	})
}
