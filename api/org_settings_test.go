package api_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
)

// An organization admin sets the repository base role; a member's live
// session holds it on the organization's repositories at once, and
// GetOrganizationSettings and ExplainAccess say the same.
func TestUpdateOrganizationSettingsBaseRoleReachesAMembersLiveSessionAtOnce(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.user("admin")
	adminTok := e.token(admin, time.Time{})
	acme := e.org("acme", admin)
	api := e.repo(acme, "api")
	bob, sessionID := e.login("bob")
	if _, err := e.syncer.SetOrgMember(e.ctx, "test", acme.ID, bob.ID, groupgate.OrgRoleMember); err != nil {
		t.Fatal(err)
	}
	if got, ok := e.snapshot(sessionID).RepoRoles["acme/api"]; ok {
		t.Fatalf("before a base role bob's session holds %q on acme/api", got)
	}

	for _, step := range []struct{ enum, want string }{
		{"REPOSITORY_ROLE_WRITE", "WRITE"},
		{"REPOSITORY_ROLE_UNSPECIFIED", "WRITE"}, // unset leaves it unchanged
		{"REPOSITORY_ROLE_READ", "READ"},
	} {
		e.as(adminTok, "OrganizationService/UpdateOrganizationSettings", `{"organization_id":"`+acme.ID+`","repository_base_role":"`+step.enum+`"}`)
		if got := e.snapshot(sessionID).RepoRoles["acme/api"]; string(got) != step.want {
			t.Errorf("after %s bob's live session holds %q on acme/api, want %s", step.enum, got, step.want)
		}
		settings := e.as(adminTok, "OrganizationService/GetOrganizationSettings", `{"organization_id":"`+acme.ID+`"}`)
		if got, _ := settings.Body["repositoryBaseRole"].(string); got != "REPOSITORY_ROLE_"+step.want {
			t.Errorf("after %s GetOrganizationSettings answers %q", step.enum, settings.Raw)
		}
		ex := e.as(adminTok, "groupgate.v1.AccessService/ExplainAccess", `{"user_id":"`+bob.ID+`","repository_id":"`+api.ID+`"}`)
		if got, _ := ex.Body["repositoryRole"].(string); got != "REPOSITORY_ROLE_"+step.want || !strings.Contains(ex.Raw, "KIND_ORG_BASE") {
			t.Errorf("after %s ExplainAccess answers %s, want %s from KIND_ORG_BASE", step.enum, ex.Raw, step.want)
		}
	}
}

func TestUpdateOrganizationSettingsRefusesWhatItCannotDo(t *testing.T) {
	e := newAPIEnv(t)
	admin, member := e.user("admin"), e.user("member")
	adminTok, memberTok := e.token(admin, time.Time{}), e.token(member, time.Time{})
	acme := e.org("acme", admin)
	if _, err := e.syncer.SetOrgMember(e.ctx, "test", acme.ID, member.ID, groupgate.OrgRoleMember); err != nil {
		t.Fatal(err)
	}
	e.as(adminTok, "OrganizationService/UpdateOrganizationSettings", `{"organization_id":"`+acme.ID+`","repository_base_role":"REPOSITORY_ROLE_READ"}`)
	cases := []struct {
		name, token, body, code string
	}{
		{"a member is no admin", memberTok, `"repository_base_role":"REPOSITORY_ROLE_ADMIN"`, "permission_denied"},
		{"OWNER is the organization's own", adminTok, `"repository_base_role":"REPOSITORY_ROLE_OWNER"`, "invalid_argument"},
		{"an unknown role", adminTok, `"repository_base_role":42`, "invalid_argument"},
		{"a description is not kept", adminTok, `"repository_base_role":"REPOSITORY_ROLE_ADMIN","description":"x"`, "invalid_argument"},
		{"a url is not kept", adminTok, `"url":""`, "invalid_argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post("OrganizationService/UpdateOrganizationSettings", fmt.Sprintf(`{"organization_id":%q,%s}`, acme.ID, tc.body), "Authorization: Bearer "+tc.token)
			if r.Code() != tc.code {
				t.Errorf("%s: %d %s, want %s", tc.name, r.Status, r.Raw, tc.code)
			}
			o, err := e.st.GetOrganization(e.ctx, acme.ID)
			if err != nil {
				t.Fatal(err)
			}
			if o.RepositoryBaseRole != groupgate.RepoRoleRead {
				t.Errorf("%s: base role became %q", tc.name, o.RepositoryBaseRole)
			}
		})
	}
	r := e.post("OrganizationService/UpdateOrganizationSettings", `{"organization_id":"no-such-org","repository_base_role":"REPOSITORY_ROLE_READ"}`, "Authorization: Bearer "+adminTok)
	if r.Code() != "not_found" && r.Code() != "permission_denied" {
		t.Errorf("unknown organization: %d %s", r.Status, r.Raw)
	}
}

func TestARepositoryCreatedUnderABaseRoleReachesAMembersLiveSessionAtOnce(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.user("admin")
	adminTok := e.token(admin, time.Time{})
	acme := e.org("acme", admin)
	bob, sessionID := e.login("bob")
	if _, err := e.syncer.SetOrgMember(e.ctx, "test", acme.ID, bob.ID, groupgate.OrgRoleMember); err != nil {
		t.Fatal(err)
	}
	e.as(adminTok, "OrganizationService/UpdateOrganizationSettings", `{"organization_id":"`+acme.ID+`","repository_base_role":"REPOSITORY_ROLE_LIMITED_WRITE"}`)
	e.as(adminTok, "RepositoryService/CreateRepositoryByFullName", `{"full_name":"acme/fresh"}`)
	if got := e.snapshot(sessionID).RepoRoles["acme/fresh"]; got != groupgate.RepoRoleLimitedWrite {
		t.Errorf("bob's live session holds %q on the new acme/fresh, want LIMITED_WRITE", got)
	}
}

func TestListRepositoryGroupsShowsTheBaseRoleAsAnOverridelessMappingsEffectiveRole(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.user("admin")
	adminTok := e.token(admin, time.Time{})
	acme := e.org("acme", admin)
	api := e.repo(acme, "api")
	e.as(adminTok, "RepositoryService/AddRepositoryGroup", `{"repository_id":"`+api.ID+`","group_name":"eng"}`)
	list := func() string {
		r := e.as(adminTok, "groupgate.v1.RepositoryService/ListRepositoryGroups", `{"repository_id":"`+api.ID+`"}`)
		gs, _ := r.Body["groups"].([]any)
		if len(gs) != 1 {
			t.Fatalf("groups = %s", r.Raw)
		}
		role, _ := gs[0].(map[string]any)["effectiveRole"].(string)
		return role
	}
	if got := list(); got != "REPOSITORY_ROLE_READ" {
		t.Errorf("without a base role effective role = %q, want READ", got)
	}
	e.as(adminTok, "OrganizationService/UpdateOrganizationSettings", `{"organization_id":"`+acme.ID+`","repository_base_role":"REPOSITORY_ROLE_WRITE"}`)
	if got := list(); got != "REPOSITORY_ROLE_WRITE" {
		t.Errorf("under base WRITE effective role = %q, want WRITE", got)
	}
}
