package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/store"
)

// Point 12: organization and repository names end up in identity headers
// (acme=ADMIN, acme/api=WRITE); a name holding ',', '=', '/', a newline or
// uppercase would forge or garble entries. The API refuses them.
func TestAPIRefusesOrganizationNamesThatBreakHeaders(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root")
	tok := e.token(root, time.Time{})
	for _, name := range []string{
		"x,acme=ADMIN", "x,acme=admin", "new\nline", "Bad Name!", strings.Repeat("a", 300),
		"Acme", "ab", "acme/api", "nul\x00", "a=b", "",
	} {
		t.Run(strings.ToValidUTF8(name[:min(len(name), 30)], "?"), func(t *testing.T) {
			r := e.post("OrganizationService/CreateOrganization", apiJSONBody(t, map[string]any{"name": name}), "Authorization: Bearer "+tok)
			if r.Code() != "invalid_argument" {
				t.Fatalf("CreateOrganization(%q) = %s, want invalid_argument", name, r.Raw)
			}
		})
	}
	orgs, err := e.st.ListOrganizations(e.ctx, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(orgs) != 0 {
		t.Errorf("organizations were created: %+v", orgs)
	}
	t.Run("a name following the BSR rules is accepted", func(t *testing.T) {
		e.as(tok, "OrganizationService/CreateOrganization", `{"name":"acme-corp-2"}`)
	})
}

func TestAPIRefusesRepositoryNamesThatBreakHeaders(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	e.org("acme", alice)
	tok := e.token(alice, time.Time{})
	for _, name := range []string{
		"x,acme=WRITE", "a=b", "x,y", "new\nline", "Bad Name!", strings.Repeat("r", 101),
		"API", "a", "9lives", "api-", "nul\x00",
	} {
		t.Run(strings.ToValidUTF8(name[:min(len(name), 30)], "?"), func(t *testing.T) {
			r := e.post("RepositoryService/CreateRepositoryByFullName", apiJSONBody(t, map[string]any{"full_name": "acme/" + name}), "Authorization: Bearer "+tok)
			if r.Code() != "invalid_argument" {
				t.Fatalf("CreateRepositoryByFullName(acme/%q) = %s, want invalid_argument", name, r.Raw)
			}
		})
	}
	t.Run("a name following the BSR rules is accepted", func(t *testing.T) {
		e.as(tok, "RepositoryService/CreateRepositoryByFullName", `{"full_name":"acme/api-v2"}`)
	})
}

// Point 13 (API side): group names in mappings keep what IdPs allow, but
// not control characters or unbounded lengths; names looked up are
// bounded too, and NUL is invalid_argument everywhere, never a 500.
func TestAPIRefusesMappingGroupNamesWithControlsOrOverLong(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	acme := e.org("acme", alice)
	repo := e.repo(acme, "api")
	tok := e.token(alice, time.Time{})
	bad := []string{"new\nline", "nul\x00", "tab\tbed", strings.Repeat("g", 257), strings.Repeat("g", 900_000)}
	for _, g := range bad {
		t.Run("org "+strings.ToValidUTF8(g[:min(len(g), 20)], "?"), func(t *testing.T) {
			for _, proc := range []string{"AddOrganizationGroup", "UpdateOrganizationGroup"} {
				r := e.post("OrganizationService/"+proc, apiJSONBody(t, map[string]any{"organization_id": acme.ID, "group_name": g}), "Authorization: Bearer "+tok)
				if r.Code() != "invalid_argument" {
					t.Errorf("%s(%d bytes) = %.200s, want invalid_argument", proc, len(g), r.Raw)
				}
			}
			for _, proc := range []string{"AddRepositoryGroup", "UpdateRepositoryGroup"} {
				r := e.post("RepositoryService/"+proc, apiJSONBody(t, map[string]any{"repository_id": repo.ID, "group_name": g}), "Authorization: Bearer "+tok)
				if r.Code() != "invalid_argument" {
					t.Errorf("%s(%d bytes) = %.200s, want invalid_argument", proc, len(g), r.Raw)
				}
			}
		})
	}
	ms, err := e.st.ListOrgMappings(e.ctx, acme.ID, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 0 {
		t.Errorf("mappings were stored: %d", len(ms))
	}
	t.Run("names real directories hold are accepted", func(t *testing.T) {
		for _, g := range []string{"Sales, EMEA", "role=admin", "Ingeniería Zürich", strings.Repeat("é", 256)} {
			e.as(tok, "OrganizationService/AddOrganizationGroup", apiJSONBody(t, map[string]any{"organization_id": acme.ID, "group_name": g}))
		}
	})
}

func TestAPILookupsByNameRefuseControlsAndOverLongNames(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	e.org("acme", alice)
	tok := e.token(alice, time.Time{})
	for _, tc := range []struct{ proc, field, value string }{
		{"OrganizationService/GetOrganizationByName", "name", "ac\x00me"},
		{"OrganizationService/GetOrganizationByName", "name", strings.Repeat("a", 10_000)},
		{"RepositoryService/GetRepositoryByFullName", "full_name", "acme/a\x00pi"},
		{"RepositoryService/GetRepositoryByFullName", "full_name", "acme/" + strings.Repeat("a", 10_000)},
		{"groupgate.v1.RepositoryService/ListRepositoriesByOwner", "owner", "ac\x00me"},
	} {
		t.Run(tc.proc, func(t *testing.T) {
			r := e.post(tc.proc, apiJSONBody(t, map[string]any{tc.field: tc.value}), "Authorization: Bearer "+tok)
			if r.Code() != "invalid_argument" {
				t.Fatalf("%s(%d bytes) = %.200s, want invalid_argument", tc.proc, len(tc.value), r.Raw)
			}
		})
	}
}

// Point 13: NUL is refused in every string field of every request, as
// invalid_argument, before any handler or store sees it.
func TestAPIRefusesNULInAnyField(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root")
	acme := e.org("acme", root)
	tok := e.token(root, time.Time{})
	for _, tc := range []struct{ proc, body string }{
		{"OrganizationService/GetOrganization", `{"id":"` + acme.ID + `\u0000"}`},
		{"OrganizationService/AddOrganizationMember", `{"organization_id":"` + acme.ID + `","user_id":"x\u0000","organization_role":"ORGANIZATION_ROLE_MEMBER"}`},
		{"OrganizationService/RemoveOrganizationGroup", `{"organization_id":"` + acme.ID + `","group_name":"eng\u0000"}`},
		{"RepositoryService/GetRepository", `{"id":"\u0000"}`},
		{"TokenService/DeleteToken", `{"token_id":"t\u0000"}`},
		{"groupgate.v1.AdminService/RevokeSessions", `{"user_id":"u\u0000"}`},
		{"groupgate.v1.AccessService/ExplainAccess", `{"organization_id":"` + acme.ID + `","user_id":"u\u0000"}`},
		{"OrganizationService/ListOrganizations", `{"page_token":"\u0000"}`},
	} {
		t.Run(tc.proc, func(t *testing.T) {
			r := e.post(tc.proc, tc.body, "Authorization: Bearer "+tok)
			if r.Code() != "invalid_argument" || !strings.Contains(r.Message(), "NUL") {
				t.Fatalf("%s %s = %s, want invalid_argument naming NUL", tc.proc, tc.body, r.Raw)
			}
		})
	}
}
