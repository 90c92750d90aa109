package api_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
)

// apiState is everything a refused call must leave alone, read through
// the API (as root) and the audit log.
func (e *apiEnv) apiState(rootTok string, orgIDs, repoIDs []string) string {
	e.t.Helper()
	var b strings.Builder
	for _, id := range orgIDs {
		b.WriteString(e.as(rootTok, "groupgate.v1.OrganizationService/ListOrganizationGroups", `{"organization_id":"`+id+`"}`).Raw)
		b.WriteString(e.as(rootTok, "groupgate.v1.OrganizationService/ListOrganizationMembers", `{"organization_id":"`+id+`"}`).Raw)
	}
	for _, id := range repoIDs {
		b.WriteString(e.as(rootTok, "groupgate.v1.RepositoryService/ListRepositoryGroups", `{"repository_id":"`+id+`"}`).Raw)
		b.WriteString(e.as(rootTok, "RepositoryService/ListRepositoryContributors", `{"repository_id":"`+id+`"}`).Raw)
		b.WriteString(e.as(rootTok, "groupgate.v1.RepositoryService/ListRepositoryContributors", `{"repository_id":"`+id+`"}`).Raw)
	}
	b.WriteString(e.as(rootTok, "OrganizationService/ListOrganizations", `{}`).Raw)
	evs, err := e.st.ListAudit(e.ctx, 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	fmt.Fprintf(&b, "audit:%d", len(evs))
	return b.String()
}

func TestAPIRefusedCallsChangeNothing(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root")
	alice := e.user("alice")
	mallory := e.user("mallory", "eng")
	carol := e.user("carol")
	acme := e.org("acme", alice)
	api := e.repo(acme, "api")
	e.user("bob", "eng", "platform")
	if _, err := e.syncer.AddOrgMapping(e.ctx, "test", acme.ID, "platform", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.syncer.AddRepoMapping(e.ctx, "test", api.ID, "platform", groupgate.RepoRoleWrite); err != nil {
		t.Fatal(err)
	}
	if _, err := e.syncer.SetRepoContributor(e.ctx, "test", api.ID, carol.ID, groupgate.RepoRoleWrite); err != nil {
		t.Fatal(err)
	}
	exp := e.clock.Now().Add(time.Hour)
	rootTok, aliceTok, malloryTok, carolTok := e.token(root, exp), e.token(alice, exp), e.token(mallory, exp), e.token(carol, exp)

	orgBody := func(group, role string) string {
		f := map[string]any{"organization_id": acme.ID, "group_name": group}
		if role != "" {
			f["role_override"] = role
		}
		return apiJSONBody(t, f)
	}
	repoBody := func(group string, role any) string {
		f := map[string]any{"repository_id": api.ID, "group_name": group}
		if role != nil {
			f["role_override"] = role
		}
		return apiJSONBody(t, f)
	}
	tests := []struct {
		name, token, procedure, body string
		wantCode                     string
		wantStatus                   int
		wantMessage                  string
	}{
		{"a user without a role on the organization cannot map a group to it", malloryTok,
			"OrganizationService/AddOrganizationGroup", orgBody("eng", ""), "permission_denied", 403, "ADMIN or OWNER"},
		{"a user without a role cannot change an organization mapping", malloryTok,
			"OrganizationService/UpdateOrganizationGroup", orgBody("platform", "ORGANIZATION_ROLE_ADMIN"), "permission_denied", 403, ""},
		{"a user without a role cannot remove an organization mapping", malloryTok,
			"OrganizationService/RemoveOrganizationGroup", orgBody("platform", ""), "permission_denied", 403, ""},
		{"a repository WRITE contributor cannot map a group to it", carolTok,
			"RepositoryService/AddRepositoryGroup", repoBody("eng", nil), "permission_denied", 403, "ADMIN role on repository"},
		{"a user without a role cannot remove a repository mapping", malloryTok,
			"RepositoryService/RemoveRepositoryGroup", repoBody("platform", nil), "permission_denied", 403, ""},
		{"a user without a role cannot give themselves a manual role", malloryTok,
			"OrganizationService/AddOrganizationMember", apiJSONBody(t, map[string]any{"organization_id": acme.ID, "user_id": mallory.ID, "organization_role": "ORGANIZATION_ROLE_OWNER"}), "permission_denied", 403, ""},
		{"an organization ADMIN cannot make an OWNER", aliceTok,
			"OrganizationService/AddOrganizationMember", apiJSONBody(t, map[string]any{"organization_id": acme.ID, "user_id": mallory.ID, "organization_role": "ORGANIZATION_ROLE_OWNER"}), "permission_denied", 403, "above your own"},
		{"only instance admins create organizations", aliceTok,
			"OrganizationService/CreateOrganization", `{"name":"beta"}`, "permission_denied", 403, "instance admins"},
		{"only instance admins read the audit log", aliceTok,
			"groupgate.v1.AdminService/ListAuditEvents", `{}`, "permission_denied", 403, ""},
		{"a user cannot list another user's sessions", aliceTok,
			"groupgate.v1.AdminService/ListSessions", `{"user_id":"` + mallory.ID + `"}`, "permission_denied", 403, ""},
		{"explaining another user's access needs authority over the resource", malloryTok,
			"groupgate.v1.AccessService/ExplainAccess", `{"user_id":"` + alice.ID + `","organization_id":"` + acme.ID + `"}`, "permission_denied", 403, ""},
		{"an unknown organization is not found", rootTok,
			"OrganizationService/AddOrganizationGroup", `{"organization_id":"nope","group_name":"eng"}`, "not_found", 404, ""},
		{"an unknown repository is not found", rootTok,
			"RepositoryService/AddRepositoryGroup", `{"repository_id":"nope","group_name":"eng"}`, "not_found", 404, ""},
		{"updating an unmapped group is not found", aliceTok,
			"OrganizationService/UpdateOrganizationGroup", orgBody("eng", "ORGANIZATION_ROLE_ADMIN"), "not_found", 404, ""},
		// Removing an unmapped group is no longer refused: Remove…Group is
		// IDEMPOTENT in the BSR, so it succeeds as a no-op (see
		// TestAPIMappingRetriesSucceedWithoutAWrite). An unknown resource
		// and a malformed name still are.
		{"removing a mapping from an unknown repository is not found", rootTok,
			"RepositoryService/RemoveRepositoryGroup", `{"repository_id":"nope","group_name":"eng"}`, "not_found", 404, ""},
		{"removing a malformed group name is refused", aliceTok,
			"OrganizationService/RemoveOrganizationGroup", orgBody("", ""), "invalid_argument", 400, "group name required"},
		{"an unknown organization name is not found", aliceTok,
			"OrganizationService/GetOrganizationByName", `{"name":"nope"}`, "not_found", 404, ""},
		{"an unknown repository full name is not found", aliceTok,
			"RepositoryService/GetRepositoryByFullName", `{"full_name":"acme/nope"}`, "not_found", 404, ""},
		{"mapping an already mapped group to an organization with another override is a conflict", aliceTok,
			"OrganizationService/AddOrganizationGroup", orgBody("platform", "ORGANIZATION_ROLE_ADMIN"), "already_exists", 409, "platform"},
		{"mapping an already mapped group to a repository with another override is a conflict", aliceTok,
			"RepositoryService/AddRepositoryGroup", repoBody("platform", nil), "already_exists", 409, "WRITE"},
		{"REPOSITORY_ROLE_OWNER is refused on add", aliceTok,
			"RepositoryService/AddRepositoryGroup", repoBody("eng", "REPOSITORY_ROLE_OWNER"), "invalid_argument", 400, "parent organization"},
		{"REPOSITORY_ROLE_OWNER is refused on update", aliceTok,
			"RepositoryService/UpdateRepositoryGroup", repoBody("platform", "REPOSITORY_ROLE_OWNER"), "invalid_argument", 400, ""},
		{"an unknown repository role name is refused", aliceTok,
			"RepositoryService/AddRepositoryGroup", repoBody("eng", "REPOSITORY_ROLE_BOSS"), "invalid_argument", 400, ""},
		{"a misspelled field is refused rather than ignored", aliceTok,
			"OrganizationService/AddOrganizationGroup", `{"organization_id":"` + acme.ID + `","group_name":"eng","role_overide":"ORGANIZATION_ROLE_ADMIN"}`, "invalid_argument", 400, "role_overide"},
		{"an unknown repository role number is refused", aliceTok,
			"RepositoryService/AddRepositoryGroup", repoBody("eng", 42), "invalid_argument", 400, "unknown repository role"},
		{"an unknown organization role number is refused", aliceTok,
			"OrganizationService/AddOrganizationGroup", apiJSONBody(t, map[string]any{"organization_id": acme.ID, "group_name": "eng", "role_override": 99}), "invalid_argument", 400, "unknown organization role"},
		{"OWNER cannot be granted through a group", aliceTok,
			"OrganizationService/AddOrganizationGroup", orgBody("eng", "ORGANIZATION_ROLE_OWNER"), "invalid_argument", 400, "OWNER"},
		{"an empty group name is refused", aliceTok,
			"OrganizationService/AddOrganizationGroup", orgBody("", ""), "invalid_argument", 400, "group name required"},
		{"a group the filter excludes cannot be mapped to an organization", aliceTok,
			"OrganizationService/AddOrganizationGroup", orgBody("external-contractors", ""), "failed_precondition", 400, "excluded by the configured group filter"},
		{"a group the filter excludes cannot be mapped to a repository", aliceTok,
			"RepositoryService/AddRepositoryGroup", repoBody("external-contractors", "REPOSITORY_ROLE_WRITE"), "failed_precondition", 400, "excluded by the configured group filter"},
		{"a bad page token is refused", aliceTok,
			"OrganizationService/ListOrganizations", `{"page_token":"!!"}`, "invalid_argument", 400, "page_token"},
	}
	orgIDs, repoIDs := []string{acme.ID}, []string{api.ID}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.apiState(rootTok, orgIDs, repoIDs)
			r := e.post(tt.procedure, tt.body, "Authorization: Bearer "+tt.token)
			if r.Code() != tt.wantCode || r.Status != tt.wantStatus {
				t.Fatalf("got status %d code %q (%s), want %d %q", r.Status, r.Code(), r.Raw, tt.wantStatus, tt.wantCode)
			}
			if !strings.Contains(r.Message(), tt.wantMessage) {
				t.Errorf("message %q does not say %q", r.Message(), tt.wantMessage)
			}
			if after := e.apiState(rootTok, orgIDs, repoIDs); after != before {
				t.Errorf("state changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestAPIInternalErrorsHideTheCause(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	tok := e.token(alice, time.Time{})
	// Closing the store makes every later query fail with a cause that
	// must reach the log, never the caller.
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.post("OrganizationService/ListOrganizations", `{}`, "Authorization: Bearer "+tok)
	if r.Status == http.StatusOK {
		t.Fatalf("call on a closed store succeeded: %s", r.Raw)
	}
	if strings.Contains(strings.ToLower(r.Raw), "sql") {
		t.Errorf("error leaks the cause: %s", r.Raw)
	}
}

func TestAPIStateFingerprintSeesChanges(t *testing.T) {
	// The refusal test is only meaningful if apiState notices a change.
	e := newAPIEnv(t)
	root := e.user("root")
	acme := e.org("acme", groupgate.User{})
	tok := e.token(root, time.Time{})
	before := e.apiState(tok, []string{acme.ID}, nil)
	e.as(tok, "OrganizationService/AddOrganizationGroup", `{"organization_id":"`+acme.ID+`","group_name":"eng"}`)
	if after := e.apiState(tok, []string{acme.ID}, nil); reflect.DeepEqual(before, after) {
		t.Fatal("apiState did not change after a mapping was added")
	}
}
