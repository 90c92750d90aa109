package sync_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// TestAChangeReachingManyUsersPushesWhatResolveComputes checks the batch
// path (a few statements per chunk of users) against the per-user one
// (Resolve), over more users than one chunk holds, with group roles,
// manual roles, a hidden group and users without any of them.
func TestAChangeReachingManyUsersPushesWhatResolveComputes(t *testing.T) {
	const users = 1100
	e := newEnv(t, sync.WithGroupFilter(func(g string) bool { return g != "hidden" }))
	var ids []string
	e.must(e.st.InTx(e.ctx, func(tx store.Store) error {
		var orgs []groupgate.Organization
		var repos []groupgate.Repository
		for i := range 4 {
			o, err := tx.CreateOrganization(e.ctx, groupgate.Organization{Name: fmt.Sprintf("org-%d", i)})
			if err != nil {
				return err
			}
			r, err := tx.CreateRepository(e.ctx, groupgate.Repository{OrganizationID: o.ID, Name: "repo"})
			if err != nil {
				return err
			}
			orgs, repos = append(orgs, o), append(repos, r)
		}
		orgRoles := []groupgate.OrgRole{"", groupgate.OrgRoleWriter, groupgate.OrgRoleAdmin, groupgate.OrgRoleMachine}
		repoRoles := []groupgate.RepoRole{"", groupgate.RepoRoleWrite, groupgate.RepoRoleLimitedWrite, groupgate.RepoRoleAdmin}
		for i, g := range []string{"g-0", "g-1", "g-2", "hidden", "everyone"} {
			if _, err := tx.AddOrgMapping(e.ctx, groupgate.OrgMapping{OrganizationID: orgs[i%4].ID, Group: g, RoleOverride: orgRoles[i%4]}); err != nil {
				return err
			}
			if _, err := tx.AddRepoMapping(e.ctx, groupgate.RepoMapping{RepositoryID: repos[(i+1)%4].ID, Group: g, RoleOverride: repoRoles[(i+2)%4]}); err != nil {
				return err
			}
		}
		for i := range users {
			u, err := tx.CreateUser(e.ctx, groupgate.User{UserName: fmt.Sprintf("user-%04d", i), Active: true})
			if err != nil {
				return err
			}
			ids = append(ids, u.ID)
			var set groupgate.GroupSet
			switch i % 4 {
			case 0: // no groups at all
			case 1:
				set = groupgate.GroupSet{{Group: "everyone", Source: groupgate.SourceSCIM}, {Group: fmt.Sprintf("g-%d", i%3), Source: groupgate.SourceLogin}}
			case 2:
				set = groupgate.GroupSet{{Group: "hidden", Source: groupgate.SourceSCIM}, {Group: "unmapped", Source: groupgate.SourceSCIM}}
			case 3:
				set = groupgate.GroupSet{{Group: "g-2", Source: groupgate.SourceSCIM}, {Group: "g-2", Source: groupgate.SourceLogin}, {Group: "everyone", Source: groupgate.SourceLogin}}
			}
			if _, err := tx.UpdateGroupSet(e.ctx, u.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) { return set, nil }); err != nil {
				return err
			}
			if i%7 == 0 {
				if _, err := tx.SetOrgMember(e.ctx, groupgate.OrgMember{OrganizationID: orgs[i%4].ID, UserID: u.ID, Role: orgRoles[1+i%3]}); err != nil {
					return err
				}
			}
			if i%11 == 0 {
				if _, err := tx.SetRepoContributor(e.ctx, groupgate.RepoContributor{RepositoryID: repos[(i+3)%4].ID, UserID: u.ID, Role: repoRoles[1+i%3]}); err != nil {
					return err
				}
			}
		}
		return nil
	}))

	unknown := store.NewID()
	e.s.Refresh(e.ctx, append([]string{unknown}, ids...)...)
	pushed, _ := e.rec.take()
	if len(pushed) != users {
		t.Fatalf("pushed %d snapshots, want %d", len(pushed), users)
	}
	if _, ok := pushed[unknown]; ok {
		t.Error("pushed a snapshot for an unknown user")
	}
	for _, id := range ids {
		if want := e.resolve(id).Memberships(); !reflect.DeepEqual(pushed[id], want) {
			t.Fatalf("user %s: pushed %+v, Resolve says %+v", id, pushed[id], want)
		}
	}
}
