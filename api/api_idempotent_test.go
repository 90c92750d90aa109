package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
)

// TestAPIMappingRetriesSucceedWithoutAWrite: the BSR marks
// Add/RemoveOrganizationGroup and Add/RemoveRepositoryGroup IDEMPOTENT, so
// a client that retries after a lost response gets success when the change
// already took effect the same way, and the retry writes nothing (the
// state read through the API and the audit log stay the same).
func TestAPIMappingRetriesSucceedWithoutAWrite(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root")
	alice := e.user("alice")
	e.user("bob", "eng")
	acme := e.org("acme", alice)
	api := e.repo(acme, "api")
	exp := e.clock.Now().Add(time.Hour)
	rootTok, aliceTok := e.token(root, exp), e.token(alice, exp)

	org := func(group, role string) string {
		f := map[string]any{"organization_id": acme.ID, "group_name": group}
		if role != "" {
			f["role_override"] = role
		}
		return apiJSONBody(t, f)
	}
	repo := func(group, role string) string {
		f := map[string]any{"repository_id": api.ID, "group_name": group}
		if role != "" {
			f["role_override"] = role
		}
		return apiJSONBody(t, f)
	}
	tests := []struct {
		name, procedure, body string
	}{
		{"adding an organization group twice with the same override", "OrganizationService/AddOrganizationGroup", org("eng", "ORGANIZATION_ROLE_ADMIN")},
		{"adding an organization group twice without an override", "OrganizationService/AddOrganizationGroup", org("ops", "")},
		{"adding a repository group twice with the same override", "RepositoryService/AddRepositoryGroup", repo("eng", "REPOSITORY_ROLE_WRITE")},
		{"removing a repository group twice", "RepositoryService/RemoveRepositoryGroup", repo("eng", "")},
		{"removing an organization group twice", "OrganizationService/RemoveOrganizationGroup", org("eng", "")},
		{"removing an organization group that was never mapped", "OrganizationService/RemoveOrganizationGroup", org("never-mapped", "")},
		{"removing a group the filter excludes that is not mapped", "OrganizationService/RemoveOrganizationGroup", org("external-x", "")},
	}
	orgIDs, repoIDs := []string{acme.ID}, []string{api.ID}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The first call takes effect (or, for a mapping never made,
			// already has); the second is the retry.
			if r := e.post(tt.procedure, tt.body, "Authorization: Bearer "+aliceTok); r.Status != 200 {
				t.Fatalf("first call: %d %s", r.Status, r.Raw)
			}
			before := e.apiState(rootTok, orgIDs, repoIDs)
			if r := e.post(tt.procedure, tt.body, "Authorization: Bearer "+aliceTok); r.Status != 200 || r.Code() != "" {
				t.Fatalf("retry: %d %s, want success", r.Status, r.Raw)
			}
			if after := e.apiState(rootTok, orgIDs, repoIDs); after != before {
				t.Errorf("the retry changed the state:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestAPIAddingAGroupWithAnotherOverrideIsAlreadyExists: a different
// override is a different change, not a retry. The answer names the
// override in place; UpdateOrganizationGroup is how to change it.
func TestAPIAddingAGroupWithAnotherOverrideIsAlreadyExists(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	acme := e.org("acme", alice)
	tok := e.token(alice, time.Time{})
	if _, err := e.syncer.AddOrgMapping(e.ctx, "test", acme.ID, "eng", groupgate.OrgRoleMachine); err != nil {
		t.Fatal(err)
	}
	r := e.post("OrganizationService/AddOrganizationGroup", apiJSONBody(t, map[string]any{"organization_id": acme.ID, "group_name": "eng", "role_override": "ORGANIZATION_ROLE_ADMIN"}), "Authorization: Bearer "+tok)
	if r.Code() != "already_exists" || r.Status != 409 {
		t.Fatalf("got %d %s, want 409 already_exists", r.Status, r.Raw)
	}
	if !strings.Contains(r.Message(), "MACHINE") {
		t.Errorf("message %q does not name the existing override MACHINE", r.Message())
	}
	if m, err := e.st.GetOrgMapping(e.ctx, acme.ID, "eng"); err != nil || m.RoleOverride != groupgate.OrgRoleMachine {
		t.Errorf("mapping after the refused add: %+v, %v; want MACHINE kept", m, err)
	}
}
