package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store"
)

// TestRepositoryBaseRoleReachesAuthAndWhoamiOnEveryReplica: an organization
// admin sets acme's repository base role through replica B; alice, a
// plain member signed in on A, holds it on acme/api in A's /auth within a
// second, and A's /whoami shows the same role with its org_base source.
func TestRepositoryBaseRoleReachesAuthAndWhoamiOnEveryReplica(t *testing.T) {
	client, prefix := testenv.Redis(t)
	rs := startReplicas(t, 2, replicaConfig{openStore: sharedPostgres(t), client: client, prefix: prefix, cache: true})
	a, b := rs[0], rs[1]
	ctx := context.Background()
	st := a.st

	admin, err := st.CreateUser(ctx, groupgate.User{UserName: "orgadmin", Email: "orgadmin@example.com", VerifiedEmail: "orgadmin@example.com", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	tok := apiToken(t, st, admin.ID)
	acme, err := st.CreateOrganization(ctx, groupgate.Organization{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateRepository(ctx, groupgate.Repository{OrganizationID: acme.ID, Name: "api"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.syncer.SetOrgMember(ctx, "test", acme.ID, admin.ID, groupgate.OrgRoleAdmin); err != nil {
		t.Fatal(err)
	}

	alice := newBrowser(t)
	signIn(t, alice, a, "alice")
	aliceUser, err := store.UserByEmail(ctx, st, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.syncer.SetOrgMember(ctx, "test", acme.ID, aliceUser.ID, groupgate.OrgRoleMember); err != nil {
		t.Fatal(err)
	}
	eventually(t, alice, a, time.Second, "alice a member of acme without repository role", func(x auth) bool {
		return roleIn(x.orgRoles, "acme") == "MEMBER" && roleIn(x.repo, "acme/api") == ""
	})

	call(t, b, tok, "OrganizationService/UpdateOrganizationSettings", `{"organization_id":"`+acme.ID+`","repository_base_role":"REPOSITORY_ROLE_WRITE"}`)
	eventually(t, alice, a, time.Second, "alice inherits acme's base role WRITE on acme/api", func(x auth) bool {
		return x.status == 200 && roleIn(x.repo, "acme/api") == "WRITE"
	})

	resp, err := alice.Get(a.url + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	var who struct {
		Repos []struct {
			OrganizationName string `json:"organization_name"`
			Name             string `json:"name"`
			Role             string `json:"role"`
			Sources          []struct {
				Kind string `json:"kind"`
				Role string `json:"role"`
			} `json:"sources"`
		} `json:"repos"`
	}
	body := readAll(t, resp)
	if err := json.Unmarshal([]byte(body), &who); err != nil {
		t.Fatalf("/whoami: %v: %s", err, body)
	}
	if len(who.Repos) != 1 || who.Repos[0].Name != "api" || who.Repos[0].Role != "WRITE" ||
		len(who.Repos[0].Sources) != 1 || who.Repos[0].Sources[0].Kind != "org_base" {
		t.Errorf("/whoami repos = %+v, want acme/api WRITE from org_base", who.Repos)
	}
}
