package api_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
)

// The attack: an org ADMIN who held the role only through an IdP group
// granted himself a manual ADMIN role and kept it after the IdP removed him
// from the group.
func TestAGroupAdminCannotGiveHimselfAManualRole(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root")
	rootTok := e.token(root, time.Time{})
	orgID := e.as(rootTok, "OrganizationService/CreateOrganization", `{"name":"acme"}`).str("organization", "id")
	repoID := e.as(rootTok, "RepositoryService/CreateRepositoryByFullName", `{"full_name":"acme/api"}`).str("repository", "id")
	e.as(rootTok, "OrganizationService/AddOrganizationGroup", `{"organization_id":"`+orgID+`","group_name":"eng-admins","role_override":"ORGANIZATION_ROLE_ADMIN"}`)
	e.as(rootTok, "RepositoryService/AddRepositoryGroup", `{"repository_id":"`+repoID+`","group_name":"eng-admins","role_override":"REPOSITORY_ROLE_ADMIN"}`)
	dave := e.user("dave", "eng-admins")
	daveTok := e.token(dave, time.Time{})

	attempts := []struct{ name, procedure, body string }{
		{"an organization role", "OrganizationService/AddOrganizationMember",
			`{"organization_id":"` + orgID + `","user_id":"` + dave.ID + `","organization_role":"ORGANIZATION_ROLE_ADMIN"}`},
		{"a repository role", "RepositoryService/SetRepositoryContributor",
			`{"repository_id":"` + repoID + `","user_id":"` + dave.ID + `","repository_role":"REPOSITORY_ROLE_ADMIN"}`},
	}
	for _, a := range attempts {
		if r := e.post(a.procedure, a.body, "Authorization: Bearer "+daveTok); r.Code() != "permission_denied" {
			t.Errorf("dave giving himself %s: %d %s, want permission_denied", a.name, r.Status, r.Raw)
		}
	}
	// The IdP removes dave from the group: nothing is left.
	if _, err := e.syncer.SetUserGroups(e.ctx, "scim", dave.ID, groupgate.SourceSCIM, nil); err != nil {
		t.Fatal(err)
	}
	org := e.as(rootTok, "groupgate.v1.AccessService/ExplainAccess", `{"user_id":"`+dave.ID+`","organization_id":"`+orgID+`"}`)
	repo := e.as(rootTok, "groupgate.v1.AccessService/ExplainAccess", `{"user_id":"`+dave.ID+`","repository_id":"`+repoID+`"}`)
	if len(org.Body) != 0 || len(repo.Body) != 0 {
		t.Errorf("after leaving the group dave still has access: %s %s", org.Raw, repo.Raw)
	}
}

// sourcesOf decodes the "sources" of an ExplainAccess answer or of one
// member of a listing.
type apiSource struct {
	Kind          string `json:"kind"`
	GroupName     string `json:"groupName"`
	Role          string `json:"role"`
	NoMappedGroup bool   `json:"noMappedGroup"`
}

func TestManualGrantsWithoutAMappedGroupAreFlaggedForReview(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root")
	rootTok := e.token(root, time.Time{})
	orgID := e.as(rootTok, "OrganizationService/CreateOrganization", `{"name":"acme"}`).str("organization", "id")
	repoID := e.as(rootTok, "RepositoryService/CreateRepositoryByFullName", `{"full_name":"acme/api"}`).str("repository", "id")
	e.as(rootTok, "OrganizationService/AddOrganizationGroup", `{"organization_id":"`+orgID+`","group_name":"eng"}`)
	e.as(rootTok, "RepositoryService/AddRepositoryGroup", `{"repository_id":"`+repoID+`","group_name":"eng"}`)
	alice := e.user("alice", "eng") // manual grant backed by a mapped group
	bob := e.user("bob", "sales")   // manual grant, in no mapped group
	for _, u := range []groupgate.User{alice, bob} {
		e.as(rootTok, "OrganizationService/AddOrganizationMember", `{"organization_id":"`+orgID+`","user_id":"`+u.ID+`","organization_role":5}`)
		e.as(rootTok, "RepositoryService/SetRepositoryContributor", `{"repository_id":"`+repoID+`","user_id":"`+u.ID+`","repository_role":"REPOSITORY_ROLE_WRITE"}`)
	}
	flagged := func(sources []apiSource) bool {
		for _, s := range sources {
			if s.NoMappedGroup {
				if s.Kind != "KIND_MANUAL" {
					t.Errorf("a %s source is flagged", s.Kind)
				}
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		user groupgate.User
		want bool
	}{{alice, false}, {bob, true}} {
		for _, res := range []string{`"organization_id":"` + orgID + `"`, `"repository_id":"` + repoID + `"`} {
			var ex struct{ Sources []apiSource }
			r := e.as(rootTok, "groupgate.v1.AccessService/ExplainAccess", `{"user_id":"`+tc.user.ID+`",`+res+`}`)
			if err := json.Unmarshal([]byte(r.Raw), &ex); err != nil {
				t.Fatal(err)
			}
			if got := flagged(ex.Sources); got != tc.want {
				t.Errorf("ExplainAccess %s for %s: flagged %v, want %v (%s)", res, tc.user.UserName, got, tc.want, r.Raw)
			}
		}
	}
	var members struct {
		Members []struct {
			UserID  string `json:"userId"`
			Sources []apiSource
		}
	}
	r := e.as(rootTok, "groupgate.v1.OrganizationService/ListOrganizationMembers", `{"organization_id":"`+orgID+`"}`)
	if err := json.Unmarshal([]byte(r.Raw), &members); err != nil {
		t.Fatal(err)
	}
	var contribs struct {
		Users []struct {
			UserID  string `json:"userId"`
			Sources []apiSource
		}
	}
	rc := e.as(rootTok, "groupgate.v1.RepositoryService/ListRepositoryContributors", `{"repository_id":"`+repoID+`"}`)
	if err := json.Unmarshal([]byte(rc.Raw), &contribs); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range members.Members {
		got["org:"+m.UserID] = flagged(m.Sources)
	}
	for _, u := range contribs.Users {
		got["repo:"+u.UserID] = flagged(u.Sources)
	}
	for _, k := range []string{"org:", "repo:"} {
		if got[k+alice.ID] || !got[k+bob.ID] {
			t.Errorf("%s listing flags alice %v, bob %v; want only bob (%s %s)", k, got[k+alice.ID], got[k+bob.ID], r.Raw, rc.Raw)
		}
	}
}
