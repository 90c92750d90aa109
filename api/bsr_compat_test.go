package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/groupgate/groupgate"
	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1/registryv1alpha1connect"
	"github.com/groupgate/groupgate/scim"
)

// The BSR's role_override of Update…GroupRequest is proto3 optional:
// "unset will not update this property". Absent (or JSON null) leaves the
// override; UNSPECIFIED, present, clears it (the README's example).
func TestUpdateGroupWithoutRoleOverrideKeepsTheOverride(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root")
	rootTok := e.token(root, time.Time{})
	o := e.org("acme", groupgate.User{})
	r := e.repo(o, "api")
	e.as(rootTok, "OrganizationService/AddOrganizationGroup", `{"organization_id":"`+o.ID+`","group_name":"bots","role_override":"ORGANIZATION_ROLE_MACHINE"}`)
	e.as(rootTok, "RepositoryService/AddRepositoryGroup", `{"repository_id":"`+r.ID+`","group_name":"eng","role_override":"REPOSITORY_ROLE_WRITE"}`)
	orgOverride := func() groupgate.OrgRole {
		m, err := e.st.GetOrgMapping(e.ctx, o.ID, "bots")
		if err != nil {
			t.Fatal(err)
		}
		return m.RoleOverride
	}
	repoOverride := func() groupgate.RepoRole {
		m, err := e.st.GetRepoMapping(e.ctx, r.ID, "eng")
		if err != nil {
			t.Fatal(err)
		}
		return m.RoleOverride
	}
	for _, tail := range []string{``, `,"role_override":null`} {
		e.as(rootTok, "OrganizationService/UpdateOrganizationGroup", `{"organization_id":"`+o.ID+`","group_name":"bots"`+tail+`}`)
		e.as(rootTok, "RepositoryService/UpdateRepositoryGroup", `{"repository_id":"`+r.ID+`","group_name":"eng"`+tail+`}`)
		if got := orgOverride(); got != groupgate.OrgRoleMachine {
			t.Errorf("update with %q: organization override %q, want MACHINE kept", tail, got)
		}
		if got := repoOverride(); got != groupgate.RepoRoleWrite {
			t.Errorf("update with %q: repository override %q, want WRITE kept", tail, got)
		}
	}
	// Absent still needs the mapping and the authority a change needs.
	if got := e.post("OrganizationService/UpdateOrganizationGroup", `{"organization_id":"`+o.ID+`","group_name":"nobody"}`, "Authorization: Bearer "+rootTok).Code(); got != "not_found" {
		t.Errorf("no-change update of an unmapped group: %q, want not_found", got)
	}
	outsider := e.token(e.user("outsider"), time.Time{})
	if got := e.post("RepositoryService/UpdateRepositoryGroup", `{"repository_id":"`+r.ID+`","group_name":"eng"}`, "Authorization: Bearer "+outsider).Code(); got != "permission_denied" {
		t.Errorf("no-change update by an outsider: %q, want permission_denied", got)
	}
	// Present and UNSPECIFIED clears.
	e.as(rootTok, "OrganizationService/UpdateOrganizationGroup", `{"organization_id":"`+o.ID+`","group_name":"bots","role_override":"ORGANIZATION_ROLE_UNSPECIFIED"}`)
	e.as(rootTok, "RepositoryService/UpdateRepositoryGroup", `{"repository_id":"`+r.ID+`","group_name":"eng","role_override":"REPOSITORY_ROLE_UNSPECIFIED"}`)
	if got := orgOverride(); got != groupgate.OrgRoleUnspecified {
		t.Errorf("UNSPECIFIED left organization override %q", got)
	}
	if got := repoOverride(); got != groupgate.RepoRoleUnspecified {
		t.Errorf("UNSPECIFIED left repository override %q", got)
	}
}

// A BSR client naming another user in CreateTokenRequest.user_id or
// ListTokensRequest.user_id is refused; it used to get the caller's token
// (binary) and the caller's listing.
func TestTokenRequestsForAnotherUserAreRefused(t *testing.T) {
	e := newAPIEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	tok := e.token(alice, time.Time{})
	client := func(opts ...connect.ClientOption) registryv1alpha1connect.TokenServiceClient {
		return registryv1alpha1connect.NewTokenServiceClient(e.srv.Client(), e.srv.URL, opts...)
	}
	auth := func(r interface{ Header() http.Header }) { r.Header().Set("Authorization", "Bearer "+tok) }
	for name, c := range map[string]registryv1alpha1connect.TokenServiceClient{
		"binary": client(), "json": client(connect.WithProtoJSON()),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			creq := connect.NewRequest(&v1.CreateTokenRequest{Note: "for bob", UserId: bob.ID})
			auth(creq)
			if _, err := c.CreateToken(ctx, creq); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("CreateToken for another user: %v, want permission_denied", err)
			}
			lreq := connect.NewRequest(&v1.ListTokensRequest{UserId: bob.ID})
			auth(lreq)
			if _, err := c.ListTokens(ctx, lreq); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("ListTokens of another user: %v, want permission_denied", err)
			}
			own := connect.NewRequest(&v1.CreateTokenRequest{Note: "mine", UserId: alice.ID})
			auth(own)
			if resp, err := c.CreateToken(ctx, own); err != nil || resp.Msg.GetToken() == "" {
				t.Errorf("CreateToken naming the caller: %v", err)
			}
		})
	}
	ts, err := e.st.ListTokens(e.ctx, groupgate.TokenAPI, bob.ID)
	if err != nil || len(ts) != 0 {
		t.Errorf("bob's tokens %v, %v; want none", ts, err)
	}
}

// A client built from the BSR's protos, with connect's default binary
// codec, reads the repository's owner and visibility and the contributors'
// users and roles at the BSR's field numbers.
func TestBSRBinaryClientReadsRepositoriesAndContributors(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root")
	rootTok := e.token(root, time.Time{})
	alice := e.user("alice", "eng")
	o := e.org("acme", groupgate.User{})
	r := e.repo(o, "api")
	e.as(rootTok, "RepositoryService/AddRepositoryGroup", `{"repository_id":"`+r.ID+`","group_name":"eng","role_override":"REPOSITORY_ROLE_WRITE"}`)
	e.as(rootTok, "RepositoryService/SetRepositoryContributor", `{"repository_id":"`+r.ID+`","user_id":"`+alice.ID+`","repository_role":"REPOSITORY_ROLE_READ"}`)

	c := registryv1alpha1connect.NewRepositoryServiceClient(e.srv.Client(), e.srv.URL)
	ctx := context.Background()
	greq := connect.NewRequest(&v1.GetRepositoryByFullNameRequest{FullName: "acme/api"})
	greq.Header().Set("Authorization", "Bearer "+rootTok)
	got, err := c.GetRepositoryByFullName(ctx, greq)
	if err != nil {
		t.Fatal(err)
	}
	repo := got.Msg.GetRepository()
	if repo.GetOrganizationId() != o.ID || repo.GetUserId() != "" || repo.GetOwnerName() != "acme" || repo.GetVisibility() != v1.Visibility_VISIBILITY_PRIVATE {
		t.Errorf("repository %v: want owned by organization %s, private", repo, o.ID)
	}
	lreq := connect.NewRequest(&v1.ListRepositoryContributorsRequest{RepositoryId: r.ID})
	lreq.Header().Set("Authorization", "Bearer "+rootTok)
	list, err := c.ListRepositoryContributors(ctx, lreq)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, u := range list.Msg.GetUsers() {
		if u.GetUser().GetId() != alice.ID {
			continue
		}
		found = true
		if u.GetUser().GetUsername() != "alice" || u.GetRepositoryId() != r.ID ||
			u.GetExplicitRole() != v1.RepositoryRole_REPOSITORY_ROLE_READ || u.GetImplicitRole() != v1.RepositoryRole_REPOSITORY_ROLE_WRITE {
			t.Errorf("contributor %v: want alice, explicit READ, implicit WRITE", u)
		}
	}
	if !found {
		t.Errorf("alice not among contributors %v", list.Msg.GetUsers())
	}
}

// RPCs real BSR tooling calls: by-name deletes, batch and per-organization
// repository reads, and reading one token (issue 11 point 8, part).
func TestBSRByNameAndBatchRPCs(t *testing.T) {
	e := newAPIEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	aliceTok, bobTok := e.token(alice, time.Time{}), e.token(bob, time.Time{})
	acme := e.org("acme", groupgate.User{})
	if _, err := e.syncer.SetOrgMember(e.ctx, "test", acme.ID, alice.ID, groupgate.OrgRoleOwner); err != nil {
		t.Fatal(err)
	}
	apiRepo, web := e.repo(acme, "api"), e.repo(acme, "web")
	ctx := context.Background()
	as := func(tok string, r interface{ Header() http.Header }) { r.Header().Set("Authorization", "Bearer "+tok) }
	repos := registryv1alpha1connect.NewRepositoryServiceClient(e.srv.Client(), e.srv.URL)
	orgs := registryv1alpha1connect.NewOrganizationServiceClient(e.srv.Client(), e.srv.URL)
	tokens := registryv1alpha1connect.NewTokenServiceClient(e.srv.Client(), e.srv.URL)

	t.Run("GetRepositoriesByFullName is all or nothing", func(t *testing.T) {
		req := connect.NewRequest(&v1.GetRepositoriesByFullNameRequest{FullNames: []string{"acme/api", "acme/web"}})
		as(bobTok, req)
		resp, err := repos.GetRepositoriesByFullName(ctx, req)
		if err != nil || len(resp.Msg.GetRepositories()) != 2 {
			t.Fatalf("got %v, %v; want two repositories", resp, err)
		}
		req = connect.NewRequest(&v1.GetRepositoriesByFullNameRequest{FullNames: []string{"acme/api", "acme/nope"}})
		as(bobTok, req)
		if _, err := repos.GetRepositoriesByFullName(ctx, req); connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("one unknown name: %v, want not_found", err)
		}
	})
	t.Run("ListOrganizationRepositories", func(t *testing.T) {
		req := connect.NewRequest(&v1.ListOrganizationRepositoriesRequest{OrganizationId: acme.ID})
		as(bobTok, req)
		resp, err := repos.ListOrganizationRepositories(ctx, req)
		if err != nil || len(resp.Msg.GetRepositories()) != 2 {
			t.Fatalf("got %v, %v; want two repositories", resp, err)
		}
	})
	t.Run("GetToken answers only the caller's token", func(t *testing.T) {
		ts, err := e.st.ListTokens(e.ctx, groupgate.TokenAPI, alice.ID)
		if err != nil || len(ts) != 1 {
			t.Fatalf("alice's tokens %v, %v", ts, err)
		}
		req := connect.NewRequest(&v1.GetTokenRequest{TokenId: ts[0].ID})
		as(aliceTok, req)
		if resp, err := tokens.GetToken(ctx, req); err != nil || resp.Msg.GetToken().GetId() != ts[0].ID {
			t.Errorf("own token: %v, %v", resp, err)
		}
		req = connect.NewRequest(&v1.GetTokenRequest{TokenId: ts[0].ID})
		as(bobTok, req)
		if _, err := tokens.GetToken(ctx, req); connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("another user's token: %v, want not_found", err)
		}
	})
	t.Run("DeleteRepositoryByFullName needs repository ADMIN", func(t *testing.T) {
		req := connect.NewRequest(&v1.DeleteRepositoryByFullNameRequest{FullName: "acme/web"})
		as(bobTok, req)
		if _, err := repos.DeleteRepositoryByFullName(ctx, req); connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("bob: %v, want permission_denied", err)
		}
		req = connect.NewRequest(&v1.DeleteRepositoryByFullNameRequest{FullName: "acme/web"})
		as(aliceTok, req)
		if _, err := repos.DeleteRepositoryByFullName(ctx, req); err != nil {
			t.Fatalf("alice: %v", err)
		}
		if _, err := e.st.GetRepository(e.ctx, web.ID); !groupgate.IsCode(err, groupgate.NotFound) {
			t.Errorf("repository still there: %v", err)
		}
	})
	t.Run("DeleteOrganizationByName needs OWNER", func(t *testing.T) {
		req := connect.NewRequest(&v1.DeleteOrganizationByNameRequest{Name: "acme"})
		as(bobTok, req)
		if _, err := orgs.DeleteOrganizationByName(ctx, req); connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("bob: %v, want permission_denied", err)
		}
		req = connect.NewRequest(&v1.DeleteOrganizationByNameRequest{Name: "acme"})
		as(aliceTok, req)
		if _, err := orgs.DeleteOrganizationByName(ctx, req); err != nil {
			t.Fatalf("alice: %v", err)
		}
		if _, err := e.st.GetRepository(e.ctx, apiRepo.ID); !groupgate.IsCode(err, groupgate.NotFound) {
			t.Errorf("repository of the deleted organization still there: %v", err)
		}
	})
}

// GetOrganizationSettings is the BSR's only way to read an organization's
// group mappings (idp_groups); anyone with a role on it may.
func TestGetOrganizationSettingsAnswersTheGroupMappings(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root")
	rootTok := e.token(root, time.Time{})
	e.user("carol", "eng")
	member := e.user("dave", "eng")
	outsiderTok := e.token(e.user("outsider"), time.Time{})
	o := e.org("acme", groupgate.User{})
	e.as(rootTok, "OrganizationService/AddOrganizationGroup", `{"organization_id":"`+o.ID+`","group_name":"eng"}`)
	e.as(rootTok, "OrganizationService/AddOrganizationGroup", `{"organization_id":"`+o.ID+`","group_name":"platform-admins","role_override":"ORGANIZATION_ROLE_ADMIN"}`)

	c := registryv1alpha1connect.NewOrganizationServiceClient(e.srv.Client(), e.srv.URL)
	req := connect.NewRequest(&v1.GetOrganizationSettingsRequest{OrganizationId: o.ID})
	req.Header().Set("Authorization", "Bearer "+e.token(member, time.Time{}))
	resp, err := c.GetOrganizationSettings(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]v1.OrganizationRole{}
	for _, g := range resp.Msg.GetIdpGroups() {
		got[g.GetName()] = g.GetRoleOverride()
	}
	want := map[string]v1.OrganizationRole{
		"eng":             v1.OrganizationRole_ORGANIZATION_ROLE_UNSPECIFIED,
		"platform-admins": v1.OrganizationRole_ORGANIZATION_ROLE_ADMIN,
	}
	if len(got) != len(want) || got["eng"] != want["eng"] || got["platform-admins"] != want["platform-admins"] {
		t.Errorf("idp_groups %v, want %v", got, want)
	}
	if n := resp.Msg.GetMembersCount(); n != 2 {
		t.Errorf("members_count %d, want 2 (carol, dave)", n)
	}
	req = connect.NewRequest(&v1.GetOrganizationSettingsRequest{OrganizationId: o.ID})
	req.Header().Set("Authorization", "Bearer "+outsiderTok)
	if _, err := c.GetOrganizationSettings(context.Background(), req); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("outsider: %v, want permission_denied", err)
	}
}

// SCIMTokenService is how a BSR admin makes the token an IdP pushes with:
// instance admins only; the token works at /scim/v2 until deleted.
func TestSCIMTokenServiceMakesWorkingSCIMTokens(t *testing.T) {
	e := newAPIEnv(t)
	rootTok := e.token(e.user("root"), time.Time{})
	aliceTok := e.token(e.user("alice"), time.Time{})
	sc := httptest.NewServer(scim.NewServer(e.st.(scim.Store), e.syncer))
	t.Cleanup(sc.Close)
	scimStatus := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, sc.URL+"/Users", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := sc.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	c := registryv1alpha1connect.NewSCIMTokenServiceClient(e.srv.Client(), e.srv.URL)
	ctx := context.Background()
	as := func(tok string, r interface{ Header() http.Header }) { r.Header().Set("Authorization", "Bearer "+tok) }

	creq := connect.NewRequest(&v1.CreateSCIMTokenRequest{})
	as(aliceTok, creq)
	if _, err := c.CreateSCIMToken(ctx, creq); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("non-admin create: %v, want permission_denied", err)
	}
	lreq := connect.NewRequest(&v1.ListSCIMTokensRequest{})
	as(aliceTok, lreq)
	if _, err := c.ListSCIMTokens(ctx, lreq); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("non-admin list: %v, want permission_denied", err)
	}

	creq = connect.NewRequest(&v1.CreateSCIMTokenRequest{})
	as(rootTok, creq)
	created, err := c.CreateSCIMToken(ctx, creq)
	if err != nil {
		t.Fatal(err)
	}
	secret := created.Msg.GetToken()
	if !strings.HasPrefix(secret, "ggscim_") || scimStatus(secret) != http.StatusOK {
		t.Fatalf("new SCIM token %q does not work at /scim/v2", secret)
	}
	if r := e.post("AuthnService/GetCurrentUser", `{}`, "Authorization: Bearer "+secret); r.Code() != "unauthenticated" {
		t.Errorf("a SCIM token on the API: %s, want unauthenticated", r.Raw)
	}
	lreq = connect.NewRequest(&v1.ListSCIMTokensRequest{})
	as(rootTok, lreq)
	list, err := c.ListSCIMTokens(ctx, lreq)
	if err != nil || len(list.Msg.GetTokens()) != 1 {
		t.Fatalf("list: %v, %v; want one token", list, err)
	}
	dreq := connect.NewRequest(&v1.DeleteSCIMTokenRequest{TokenId: list.Msg.GetTokens()[0].GetId()})
	as(aliceTok, dreq)
	if _, err := c.DeleteSCIMToken(ctx, dreq); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("non-admin delete: %v, want permission_denied", err)
	}
	dreq = connect.NewRequest(&v1.DeleteSCIMTokenRequest{TokenId: list.Msg.GetTokens()[0].GetId()})
	as(rootTok, dreq)
	if _, err := c.DeleteSCIMToken(ctx, dreq); err != nil {
		t.Fatal(err)
	}
	if got := scimStatus(secret); got != http.StatusUnauthorized {
		t.Errorf("deleted SCIM token: %d, want 401", got)
	}
}

// ListUserOrganizations: the organizations a user holds a role on, from any
// source, for the user or an instance admin.
func TestListUserOrganizationsListsEveryRoleSource(t *testing.T) {
	e := newAPIEnv(t)
	rootTok := e.token(e.user("root"), time.Time{})
	alice := e.user("alice", "eng")
	aliceTok, bobTok := e.token(alice, time.Time{}), e.token(e.user("bob"), time.Time{})
	acme, beta := e.org("acme", groupgate.User{}), e.org("beta", groupgate.User{})
	e.org("gamma", groupgate.User{})
	if _, err := e.syncer.SetOrgMember(e.ctx, "test", acme.ID, alice.ID, groupgate.OrgRoleOwner); err != nil {
		t.Fatal(err)
	}
	e.as(rootTok, "OrganizationService/AddOrganizationGroup", `{"organization_id":"`+beta.ID+`","group_name":"eng"}`)

	c := registryv1alpha1connect.NewOrganizationServiceClient(e.srv.Client(), e.srv.URL)
	list := func(tok, userID string) (map[string]v1.OrganizationRole, error) {
		req := connect.NewRequest(&v1.ListUserOrganizationsRequest{UserId: userID})
		req.Header().Set("Authorization", "Bearer "+tok)
		resp, err := c.ListUserOrganizations(context.Background(), req)
		if err != nil {
			return nil, err
		}
		out := map[string]v1.OrganizationRole{}
		for _, m := range resp.Msg.GetOrganizations() {
			out[m.GetOrganization().GetName()] = m.GetOrganizationRole()
		}
		return out, nil
	}
	for who, tok := range map[string]string{"alice herself": aliceTok, "an instance admin": rootTok} {
		got, err := list(tok, alice.ID)
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		if len(got) != 2 || got["acme"] != v1.OrganizationRole_ORGANIZATION_ROLE_OWNER || got["beta"] != v1.OrganizationRole_ORGANIZATION_ROLE_MEMBER {
			t.Errorf("%s: %v, want acme OWNER, beta MEMBER", who, got)
		}
	}
	if _, err := list(bobTok, alice.ID); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("bob listing alice's: %v, want permission_denied", err)
	}
}

// GetCurrentUserSubject: the subject of the caller's first IdP login;
// none for a user no login has reached.
func TestGetCurrentUserSubjectAnswersTheLoginSubject(t *testing.T) {
	e := newAPIEnv(t)
	u, _, err := e.syncer.Login(e.ctx, groupgate.Identity{Provider: "test", Subject: "sub-123", Username: "alice", Email: "alice@example.com", EmailVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	c := registryv1alpha1connect.NewAuthnServiceClient(e.srv.Client(), e.srv.URL)
	req := connect.NewRequest(&v1.GetCurrentUserSubjectRequest{})
	req.Header().Set("Authorization", "Bearer "+e.token(u, time.Time{}))
	resp, err := c.GetCurrentUserSubject(context.Background(), req)
	if err != nil || resp.Msg.GetSubject() != "sub-123" {
		t.Errorf("subject %v, %v; want sub-123", resp, err)
	}
	req = connect.NewRequest(&v1.GetCurrentUserSubjectRequest{})
	req.Header().Set("Authorization", "Bearer "+e.token(e.user("scim-only"), time.Time{}))
	if _, err := c.GetCurrentUserSubject(context.Background(), req); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Errorf("user without a login: %v, want failed_precondition", err)
	}
}
