package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// TestAPIDocumentedFlow runs the reference's documented mapping flow as
// plain HTTP JSON, the way its docs use curl, and checks after every call
// the member's effective role (ExplainAccess) and the snapshot pushed to
// their live session.
func TestAPIDocumentedFlow(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	acme := e.org("acme", alice) // alice is ADMIN of acme
	api := e.repo(acme, "api")
	bob, bobSession := e.login("bob", "eng")
	tok := e.token(alice, e.clock.Now().Add(24*time.Hour))

	// GET the IDs by name, as the docs do.
	orgID := e.as(tok, "OrganizationService/GetOrganizationByName", `{"name":"acme"}`).str("organization", "id")
	if orgID != acme.ID {
		t.Fatalf("GetOrganizationByName id = %q, want %q", orgID, acme.ID)
	}
	for _, body := range []string{`{"fullName":"acme/api"}`, `{"full_name":"acme/api"}`} {
		if got := e.as(tok, "RepositoryService/GetRepositoryByFullName", body).str("repository", "id"); got != api.ID {
			t.Fatalf("GetRepositoryByFullName %s id = %q, want %q", body, got, api.ID)
		}
	}

	orgRole := func() string {
		t.Helper()
		return e.as(tok, "groupgate.v1.AccessService/ExplainAccess", `{"user_id":"`+bob.ID+`","organization_id":"`+orgID+`"}`).str("organizationRole")
	}
	repoRole := func() string {
		t.Helper()
		return e.as(tok, "groupgate.v1.AccessService/ExplainAccess", `{"user_id":"`+bob.ID+`","repository_id":"`+api.ID+`"}`).str("repositoryRole")
	}
	orgSteps := []struct {
		name, procedure, body string
		wantRole              string            // ExplainAccess enum, "" for none
		wantSnapshot          groupgate.OrgRole // in bob's live session
	}{
		{"adding the group grants MEMBER by default", "AddOrganizationGroup",
			`{"organization_id":"` + orgID + `","group_name":"eng"}`, "ORGANIZATION_ROLE_MEMBER", groupgate.OrgRoleMember},
		{"updating to ADMIN raises the role at once", "UpdateOrganizationGroup",
			`{"organization_id":"` + orgID + `","group_name":"eng","role_override":"ORGANIZATION_ROLE_ADMIN"}`, "ORGANIZATION_ROLE_ADMIN", groupgate.OrgRoleAdmin},
		{"MACHINE stays MACHINE", "UpdateOrganizationGroup",
			`{"organization_id":"` + orgID + `","group_name":"eng","role_override":"ORGANIZATION_ROLE_MACHINE"}`, "ORGANIZATION_ROLE_MACHINE", groupgate.OrgRoleMachine},
		{"UNSPECIFIED clears the override back to MEMBER", "UpdateOrganizationGroup",
			`{"organization_id":"` + orgID + `","group_name":"eng","role_override":"ORGANIZATION_ROLE_UNSPECIFIED"}`, "ORGANIZATION_ROLE_MEMBER", groupgate.OrgRoleMember},
		{"removing the group removes the role at once", "RemoveOrganizationGroup",
			`{"organization_id":"` + orgID + `","group_name":"eng"}`, "", ""},
		{"adding with an ADMIN override grants ADMIN", "AddOrganizationGroup",
			`{"organization_id":"` + orgID + `","group_name":"eng","role_override":"ORGANIZATION_ROLE_ADMIN"}`, "ORGANIZATION_ROLE_ADMIN", groupgate.OrgRoleAdmin},
		{"removing it again leaves nothing", "RemoveOrganizationGroup",
			`{"organization_id":"` + orgID + `","group_name":"eng"}`, "", ""},
	}
	for _, s := range orgSteps {
		t.Run("organization: "+s.name, func(t *testing.T) {
			r := e.as(tok, "OrganizationService/"+s.procedure, s.body)
			if r.Raw != "{}" {
				t.Errorf("response = %s, want {}", r.Raw)
			}
			if got := orgRole(); got != s.wantRole {
				t.Errorf("ExplainAccess role = %q, want %q", got, s.wantRole)
			}
			if got := e.snapshot(bobSession).OrgRoles["acme"]; got != s.wantSnapshot {
				t.Errorf("session snapshot role = %q, want %q", got, s.wantSnapshot)
			}
		})
	}

	repoSteps := []struct {
		name, procedure, body string
		wantRole              string
		wantSnapshot          groupgate.RepoRole
	}{
		{"adding the group with WRITE grants WRITE", "AddRepositoryGroup",
			`{"repository_id":"` + api.ID + `","group_name":"eng","role_override":"REPOSITORY_ROLE_WRITE"}`, "REPOSITORY_ROLE_WRITE", groupgate.RepoRoleWrite},
		{"updating to ADMIN raises the role", "UpdateRepositoryGroup",
			`{"repository_id":"` + api.ID + `","group_name":"eng","role_override":"REPOSITORY_ROLE_ADMIN"}`, "REPOSITORY_ROLE_ADMIN", groupgate.RepoRoleAdmin},
		{"UNSPECIFIED clears the override back to READ", "UpdateRepositoryGroup",
			`{"repository_id":"` + api.ID + `","group_name":"eng","role_override":"REPOSITORY_ROLE_UNSPECIFIED"}`, "REPOSITORY_ROLE_READ", groupgate.RepoRoleRead},
		{"removing the group removes the role", "RemoveRepositoryGroup",
			`{"repository_id":"` + api.ID + `","group_name":"eng"}`, "", ""},
	}
	for _, s := range repoSteps {
		t.Run("repository: "+s.name, func(t *testing.T) {
			r := e.as(tok, "RepositoryService/"+s.procedure, s.body)
			if r.Raw != "{}" {
				t.Errorf("response = %s, want {}", r.Raw)
			}
			if got := repoRole(); got != s.wantRole {
				t.Errorf("ExplainAccess role = %q, want %q", got, s.wantRole)
			}
			if got := e.snapshot(bobSession).RepoRoles["acme/api"]; got != s.wantSnapshot {
				t.Errorf("session snapshot role = %q, want %q", got, s.wantSnapshot)
			}
		})
	}

	t.Run("every change is in the audit log with the caller as actor", func(t *testing.T) {
		evs, err := e.st.ListAudit(e.ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range evs {
			if ev.Actor == "user:"+alice.ID {
				n++
			}
		}
		if want := len(orgSteps) + len(repoSteps); n != want {
			t.Errorf("%d audit events by alice, want %d", n, want)
		}
	})
}

func TestAPIPreviewMappingChange(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	acme := e.org("acme", alice)
	api := e.repo(acme, "api")
	bob := e.user("bob", "eng")
	e.user("carol", "eng")
	tok := e.token(alice, time.Time{})

	tests := []struct {
		name, body         string
		wantGained, wantOf string
	}{
		{"adding an ADMIN mapping to an organization gains every member ADMIN",
			`{"change":"MAPPING_CHANGE_ADD","organization_id":"` + acme.ID + `","group_name":"eng","organization_role_override":"ORGANIZATION_ROLE_ADMIN"}`, "ADMIN", bob.ID},
		{"adding a default repository mapping gains READ",
			`{"change":"MAPPING_CHANGE_ADD","repository_id":"` + api.ID + `","group_name":"eng"}`, "READ", bob.ID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.as(tok, "groupgate.v1.AccessService/PreviewMappingChange", tt.body)
			gained, _ := r.Body["gained"].([]any)
			if len(gained) != 2 {
				t.Fatalf("gained %s, want both members", r.Raw)
			}
			first := gained[0].(map[string]any)
			if first["after"] != tt.wantGained || (first["userId"] != tt.wantOf && gained[1].(map[string]any)["userId"] != tt.wantOf) {
				t.Errorf("preview %s", r.Raw)
			}
			if ms, _ := e.st.ListOrgMappings(e.ctx, acme.ID, store.ListOptions{}); len(ms) != 0 {
				t.Errorf("preview wrote a mapping: %v", ms)
			}
		})
	}
	t.Run("an organization ADMIN holds ADMIN on its repositories, and the reason is listed", func(t *testing.T) {
		r := e.as(tok, "groupgate.v1.AccessService/ExplainAccess", `{"repository_id":"`+api.ID+`"}`)
		if r.str("repositoryRole") != "REPOSITORY_ROLE_ADMIN" || !strings.Contains(r.Raw, "ORGANIZATION_ROLE_ADMIN") {
			t.Errorf("explain %s", r.Raw)
		}
	})
	t.Run("previewing needs authority over the resource", func(t *testing.T) {
		bobTok := e.token(bob, time.Time{})
		r := e.post("groupgate.v1.AccessService/PreviewMappingChange", `{"change":"MAPPING_CHANGE_REMOVE","organization_id":"`+acme.ID+`","group_name":"eng"}`, "Authorization: Bearer "+bobTok)
		if r.Code() != "permission_denied" {
			t.Errorf("got %s", r.Raw)
		}
	})
}
