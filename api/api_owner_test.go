package api_test

import (
	"testing"
	"time"

	"github.com/groupgate/groupgate"
)

// TestAPIDeletingTakesRolesFromLiveSessionsAtOnce: deleting an
// organization or a repository through the API takes the roles it granted
// (by hand, through a mapped group, on its repositories) out of every
// holder's live session at once, with no new login.
func TestAPIDeletingTakesRolesFromLiveSessionsAtOnce(t *testing.T) {
	e := newAPIEnv(t)
	root, rootSID := e.login("root")
	alice, aliceSID := e.login("alice", "eng")
	bob, bobSID := e.login("bob")
	carol, carolSID := e.login("carol")
	tok := e.token(root, time.Time{})

	orgID := e.as(tok, "OrganizationService/CreateOrganization", `{"name":"acme"}`).str("organization", "id")
	e.as(tok, "OrganizationService/AddOrganizationGroup", `{"organization_id":"`+orgID+`","group_name":"eng"}`)
	e.as(tok, "OrganizationService/AddOrganizationMember", `{"organization_id":"`+orgID+`","user_id":"`+bob.ID+`","organization_role":"ORGANIZATION_ROLE_ADMIN"}`)
	apiID := e.as(tok, "RepositoryService/CreateRepositoryByFullName", `{"full_name":"acme/api"}`).str("repository", "id")
	webID := e.as(tok, "RepositoryService/CreateRepositoryByFullName", `{"full_name":"acme/web"}`).str("repository", "id")
	for _, repoID := range []string{apiID, webID} {
		e.as(tok, "RepositoryService/SetRepositoryContributor", `{"repository_id":"`+repoID+`","user_id":"`+carol.ID+`","repository_role":"REPOSITORY_ROLE_WRITE"}`)
	}

	sessions := map[string]string{root.UserName: rootSID, alice.UserName: aliceSID, bob.UserName: bobSID, carol.UserName: carolSID}
	check := func(t *testing.T, name string, org groupgate.OrgRole, repos map[string]groupgate.RepoRole) {
		t.Helper()
		m := e.snapshot(sessions[name])
		if got := m.OrgRoles["acme"]; got != org {
			t.Errorf("%s's live session has %q on acme, want %q", name, got, org)
		}
		for _, full := range []string{"acme/api", "acme/web"} {
			if got := m.RepoRoles[full]; got != repos[full] {
				t.Errorf("%s's live session has %q on %s, want %q", name, got, full, repos[full])
			}
		}
	}
	t.Run("the roles are in the sessions", func(t *testing.T) {
		check(t, "root", groupgate.OrgRoleOwner, nil)
		check(t, "alice", groupgate.OrgRoleMember, nil)
		check(t, "bob", groupgate.OrgRoleAdmin, nil)
		check(t, "carol", "", map[string]groupgate.RepoRole{"acme/api": groupgate.RepoRoleWrite, "acme/web": groupgate.RepoRoleWrite})
	})
	t.Run("deleting a repository takes its roles away at once", func(t *testing.T) {
		e.as(tok, "RepositoryService/DeleteRepositoryByFullName", `{"full_name":"acme/web"}`)
		check(t, "carol", "", map[string]groupgate.RepoRole{"acme/api": groupgate.RepoRoleWrite})
	})
	t.Run("deleting the organization takes every role it granted away at once", func(t *testing.T) {
		e.as(tok, "OrganizationService/DeleteOrganizationByName", `{"name":"acme"}`)
		for _, name := range []string{"root", "alice", "bob", "carol"} {
			check(t, name, "", nil)
		}
	})
}
