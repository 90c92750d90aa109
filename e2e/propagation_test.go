package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/postgres"
)

// roleIn returns name's role in a forward-auth role header
// ("acme=ADMIN,beta=MEMBER"), "" when absent.
func roleIn(header, name string) string {
	for _, kv := range strings.Split(header, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// sharedPostgres opens one fresh database per test; every replica opens
// its own pool on it, as separate processes would.
func sharedPostgres(t *testing.T) func(t *testing.T) store.Store {
	dsn := testenv.Postgres(t)
	migrated := false
	return func(t *testing.T) store.Store {
		t.Helper()
		ctx := context.Background()
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if !migrated {
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			migrated = true
		}
		return st
	}
}

// TestChangesOnOneReplicaReachAnotherWithinASecond is the acceptance test
// of immediate propagation: two replicas share PostgreSQL and Redis, both
// with the local cache on; alice signs in through A, and every change made
// through B shows in her next /auth on A within one second, with the roles
// she keeps from other sources.
func TestChangesOnOneReplicaReachAnotherWithinASecond(t *testing.T) {
	client, prefix := testenv.Redis(t)
	changesReachAnotherReplica(t, client, prefix)
}

// changesReachAnotherReplica is the body of
// TestChangesOnOneReplicaReachAnotherWithinASecond on the Redis deployment
// behind client (see also topology_test.go).
func changesReachAnotherReplica(t *testing.T, client redis.UniversalClient, prefix string) {
	rs := startReplicas(t, 2, replicaConfig{openStore: sharedPostgres(t), client: client, prefix: prefix, cache: true})
	a, b := rs[0], rs[1]
	ctx := context.Background()
	st := a.st

	root, err := st.CreateUser(ctx, groupgate.User{UserName: "root", Email: "root@example.com", VerifiedEmail: "root@example.com", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	tok := apiToken(t, st, root.ID)
	acme, _ := st.CreateOrganization(ctx, groupgate.Organization{Name: "acme"})
	beta, _ := st.CreateOrganization(ctx, groupgate.Organization{Name: "beta"})
	api, err := st.CreateRepository(ctx, groupgate.Repository{OrganizationID: beta.ID, Name: "api"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []groupgate.OrgMapping{
		{OrganizationID: acme.ID, Group: "eng", RoleOverride: groupgate.OrgRoleAdmin},
		{OrganizationID: acme.ID, Group: "platform-admins"},
	} {
		if _, err := st.AddOrgMapping(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []groupgate.RepoMapping{
		{RepositoryID: api.ID, Group: "eng", RoleOverride: groupgate.RepoRoleAdmin},
		{RepositoryID: api.ID, Group: "platform-admins"},
	} {
		if _, err := st.AddRepoMapping(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	alice := newBrowser(t)
	signIn(t, alice, a, "alice")
	aliceUser, err := store.UserByEmail(ctx, st, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, alice, a, time.Second, "alice's roles after sign-in", func(x auth) bool {
		return roleIn(x.orgRoles, "acme") == "ADMIN" && roleIn(x.repo, "beta/api") == "ADMIN"
	})
	// Warm A's cache, so that the test proves invalidation, not a miss.
	for range 3 {
		_, _ = getAuth(alice, a)
	}
	if hits, _ := a.cache.Stats(); hits == 0 {
		t.Fatal("replica A never answered /auth from its local cache")
	}

	steps := []struct {
		name      string
		procedure string
		body      string
		want      func(auth) bool
	}{
		{"removing an organization mapping on B drops the role on A and keeps the other group's",
			"OrganizationService/RemoveOrganizationGroup", `{"organization_id":"` + acme.ID + `","group_name":"eng"}`,
			func(x auth) bool { return roleIn(x.orgRoles, "acme") == "MEMBER" }},
		{"updating an organization mapping on B changes the role on A",
			"OrganizationService/UpdateOrganizationGroup", `{"organization_id":"` + acme.ID + `","group_name":"platform-admins","role_override":5}`,
			func(x auth) bool { return roleIn(x.orgRoles, "acme") == "WRITER" }},
		{"removing a repository mapping on B drops the role on A and keeps the other group's",
			"RepositoryService/RemoveRepositoryGroup", `{"repository_id":"` + api.ID + `","group_name":"eng"}`,
			func(x auth) bool {
				return roleIn(x.repo, "beta/api") == "READ" && roleIn(x.orgRoles, "acme") == "WRITER"
			}},
		{"a manual role given on B shows on A",
			"OrganizationService/AddOrganizationMember", `{"organization_id":"` + acme.ID + `","user_id":"` + aliceUser.ID + `","organization_role":"ORGANIZATION_ROLE_ADMIN"}`,
			func(x auth) bool { return roleIn(x.orgRoles, "acme") == "ADMIN" }},
		{"removing the manual role on B leaves the group's role on A",
			"OrganizationService/RemoveOrganizationMember", `{"organization_id":"` + acme.ID + `","user_id":"` + aliceUser.ID + `"}`,
			func(x auth) bool {
				return roleIn(x.orgRoles, "acme") == "WRITER" && roleIn(x.repo, "beta/api") == "READ"
			}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			call(t, b, tok, s.procedure, s.body)
			took := eventually(t, alice, a, time.Second, s.name, s.want)
			t.Logf("visible on A after %v", took)
		})
	}

	t.Run("a SCIM deactivation on B ends alice's session on A at once", func(t *testing.T) {
		scimTok := createToken(t, st, groupgate.TokenSCIM, "")
		body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`
		req, _ := http.NewRequest(http.MethodPatch, b.url+"/scim/v2/Users/"+aliceUser.ID, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/scim+json")
		req.Header.Set("Authorization", "Bearer "+scimTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if out := readAll(t, resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("SCIM PATCH: %s %s", resp.Status, out)
		}
		took := eventually(t, alice, a, time.Second, "alice signed out on A", func(x auth) bool { return x.status == http.StatusUnauthorized })
		t.Logf("session ended on A after %v", took)
	})
}
