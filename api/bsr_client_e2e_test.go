package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"

	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1/registryv1alpha1connect"
)

// TestBSRClientRunsTheGroupMappingFlow is issue 11's acceptance test: a Go
// client generated from the BSR's protos, over each protocol and codec a
// BSR client may use, runs the group-mapping flow of the BSR documentation
// end to end against the API, reads the mappings back with
// GetOrganizationSettings, lists contributors, creates, gets and deletes a
// token and a SCIM token, and sees unimplemented for a service groupgate
// does not serve.
//
// The client is built from gen/, which api/wire_test.go proves
// wire-identical (names, field numbers, types, optionals, enum values,
// idempotency levels) to the published protos of github.com/bufbuild/buf at
// the pinned version: a client generated from those protos sends and reads
// the same bytes, so this one stands for it.
func TestBSRClientRunsTheGroupMappingFlow(t *testing.T) {
	e := newAPIEnv(t)
	// httptest.NewServer speaks HTTP/1.1 only; gRPC needs HTTP/2, so the
	// same handler is served again with cleartext HTTP/2 (prior knowledge)
	// as well, as groupgate's own listener does.
	srv := httptest.NewUnstartedServer(e.srv.Config.Handler)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	h2cClient := &http.Client{Transport: &http.Transport{Protocols: &h2c}}

	root := e.user("root") // an instance admin (newAPIEnv's admins)
	alice := e.user("alice")
	bob := e.user("bob", "eng", "platform-admins")
	exp := e.clock.Now().Add(time.Hour)
	rootTok, aliceTok := e.token(root, exp), e.token(alice, exp)

	setups := []struct {
		name   string
		client *http.Client
		opts   []connect.ClientOption
	}{
		{"connect-binary", http.DefaultClient, nil},
		{"connect-json", http.DefaultClient, []connect.ClientOption{connect.WithProtoJSON()}},
		{"grpc-h2c", h2cClient, []connect.ClientOption{connect.WithGRPC()}},
		{"grpc-web", http.DefaultClient, []connect.ClientOption{connect.WithGRPCWeb()}},
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			ctx := context.Background()
			// A separate organization per protocol, so that the runs
			// cannot see each other's mappings.
			o := e.org("flow-"+s.name, alice)
			r := e.repo(o, "api")
			with := func(tok string) []connect.ClientOption {
				bearer := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
					return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
						req.Header().Set("Authorization", "Bearer "+tok)
						return next(ctx, req)
					}
				})
				return append([]connect.ClientOption{connect.WithInterceptors(bearer)}, s.opts...)
			}
			orgs := registryv1alpha1connect.NewOrganizationServiceClient(s.client, srv.URL, with(aliceTok)...)
			repos := registryv1alpha1connect.NewRepositoryServiceClient(s.client, srv.URL, with(aliceTok)...)
			tokens := registryv1alpha1connect.NewTokenServiceClient(s.client, srv.URL, with(aliceTok)...)
			scimTokens := registryv1alpha1connect.NewSCIMTokenServiceClient(s.client, srv.URL, with(rootTok)...)
			must := func(step string, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}

			// The BSR documentation's flow: find the organization, map an
			// IdP group with a role override, read it back.
			got, err := orgs.GetOrganizationByName(ctx, connect.NewRequest(&v1.GetOrganizationByNameRequest{Name: o.Name}))
			must("GetOrganizationByName", err)
			orgID := got.Msg.GetOrganization().GetId()
			if orgID != o.ID {
				t.Fatalf("organization id %q, want %q", orgID, o.ID)
			}
			add := &v1.AddOrganizationGroupRequest{OrganizationId: orgID, GroupName: "platform-admins", RoleOverride: v1.OrganizationRole_ORGANIZATION_ROLE_ADMIN}
			_, err = orgs.AddOrganizationGroup(ctx, connect.NewRequest(add))
			must("AddOrganizationGroup", err)
			// A retry after a lost response succeeds (IDEMPOTENT).
			_, err = orgs.AddOrganizationGroup(ctx, connect.NewRequest(add))
			must("AddOrganizationGroup retried", err)

			wantGroup := func(step string, want v1.OrganizationRole, present bool) {
				t.Helper()
				settings, err := orgs.GetOrganizationSettings(ctx, connect.NewRequest(&v1.GetOrganizationSettingsRequest{OrganizationId: orgID}))
				must(step+": GetOrganizationSettings", err)
				found := false
				for _, g := range settings.Msg.GetIdpGroups() {
					if g.GetName() == "platform-admins" {
						found = true
						if g.GetRoleOverride() != want {
							t.Errorf("%s: idp group role_override %v, want %v", step, g.GetRoleOverride(), want)
						}
					}
				}
				if found != present {
					t.Errorf("%s: platform-admins in idp_groups = %v, want %v (%v)", step, found, present, settings.Msg.GetIdpGroups())
				}
			}
			wantGroup("after add", v1.OrganizationRole_ORGANIZATION_ROLE_ADMIN, true)

			// role_override is optional in UpdateOrganizationGroupRequest:
			// unset leaves the override as it is.
			_, err = orgs.UpdateOrganizationGroup(ctx, connect.NewRequest(&v1.UpdateOrganizationGroupRequest{OrganizationId: orgID, GroupName: "platform-admins"}))
			must("UpdateOrganizationGroup without role_override", err)
			wantGroup("after update without override", v1.OrganizationRole_ORGANIZATION_ROLE_ADMIN, true)

			// A repository mapping, and its members among the contributors.
			_, err = repos.AddRepositoryGroup(ctx, connect.NewRequest(&v1.AddRepositoryGroupRequest{RepositoryId: r.ID, GroupName: "eng", RoleOverride: v1.RepositoryRole_REPOSITORY_ROLE_WRITE}))
			must("AddRepositoryGroup", err)
			contributors, err := repos.ListRepositoryContributors(ctx, connect.NewRequest(&v1.ListRepositoryContributorsRequest{RepositoryId: r.ID}))
			must("ListRepositoryContributors", err)
			var bobSeen bool
			for _, c := range contributors.Msg.GetUsers() {
				if c.GetUser().GetId() == bob.ID {
					bobSeen = true
					if c.GetRepositoryId() != r.ID {
						t.Errorf("contributor repository_id %q, want %q", c.GetRepositoryId(), r.ID)
					}
					if c.GetExplicitRole() == v1.RepositoryRole_REPOSITORY_ROLE_UNSPECIFIED && c.GetImplicitRole() == v1.RepositoryRole_REPOSITORY_ROLE_UNSPECIFIED {
						t.Errorf("bob listed without a role: %v", c)
					}
				}
			}
			if !bobSeen {
				t.Errorf("bob (in eng, mapped WRITE) missing from the contributors: %v", contributors.Msg.GetUsers())
			}

			_, err = repos.RemoveRepositoryGroup(ctx, connect.NewRequest(&v1.RemoveRepositoryGroupRequest{RepositoryId: r.ID, GroupName: "eng"}))
			must("RemoveRepositoryGroup", err)
			remove := &v1.RemoveOrganizationGroupRequest{OrganizationId: orgID, GroupName: "platform-admins"}
			_, err = orgs.RemoveOrganizationGroup(ctx, connect.NewRequest(remove))
			must("RemoveOrganizationGroup", err)
			_, err = orgs.RemoveOrganizationGroup(ctx, connect.NewRequest(remove))
			must("RemoveOrganizationGroup retried", err)
			wantGroup("after remove", 0, false)

			// Tokens: create, find by listing (CreateTokenResponse carries
			// only the secret), get, delete.
			note := "e2e " + s.name
			_, err = tokens.CreateToken(ctx, connect.NewRequest(&v1.CreateTokenRequest{Note: note}))
			must("CreateToken", err)
			list, err := tokens.ListTokens(ctx, connect.NewRequest(&v1.ListTokensRequest{}))
			must("ListTokens", err)
			var tokenID string
			for _, tk := range list.Msg.GetTokens() {
				if tk.GetNote() == note {
					tokenID = tk.GetId()
				}
			}
			if tokenID == "" {
				t.Fatalf("the new token is not listed: %v", list.Msg.GetTokens())
			}
			gotTok, err := tokens.GetToken(ctx, connect.NewRequest(&v1.GetTokenRequest{TokenId: tokenID}))
			must("GetToken", err)
			if gotTok.Msg.GetToken().GetNote() != note {
				t.Errorf("GetToken note %q, want %q", gotTok.Msg.GetToken().GetNote(), note)
			}
			_, err = tokens.DeleteToken(ctx, connect.NewRequest(&v1.DeleteTokenRequest{TokenId: tokenID}))
			must("DeleteToken", err)
			if _, err := tokens.GetToken(ctx, connect.NewRequest(&v1.GetTokenRequest{TokenId: tokenID})); connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("GetToken after DeleteToken: %v, want not_found", err)
			}

			// SCIM tokens, as an instance admin makes the one the IdP
			// pushes with.
			before, err := scimTokens.ListSCIMTokens(ctx, connect.NewRequest(&v1.ListSCIMTokensRequest{}))
			must("ListSCIMTokens", err)
			known := map[string]bool{}
			for _, tk := range before.Msg.GetTokens() {
				known[tk.GetId()] = true
			}
			created, err := scimTokens.CreateSCIMToken(ctx, connect.NewRequest(&v1.CreateSCIMTokenRequest{}))
			must("CreateSCIMToken", err)
			if created.Msg.GetToken() == "" {
				t.Error("CreateSCIMToken returned no token")
			}
			after, err := scimTokens.ListSCIMTokens(ctx, connect.NewRequest(&v1.ListSCIMTokensRequest{}))
			must("ListSCIMTokens", err)
			var scimID string
			for _, tk := range after.Msg.GetTokens() {
				if !known[tk.GetId()] {
					scimID = tk.GetId()
				}
			}
			if scimID == "" {
				t.Fatalf("the new SCIM token is not listed: %v", after.Msg.GetTokens())
			}
			_, err = scimTokens.DeleteSCIMToken(ctx, connect.NewRequest(&v1.DeleteSCIMTokenRequest{TokenId: scimID}))
			must("DeleteSCIMToken", err)
			final, err := scimTokens.ListSCIMTokens(ctx, connect.NewRequest(&v1.ListSCIMTokensRequest{}))
			must("ListSCIMTokens", err)
			for _, tk := range final.Msg.GetTokens() {
				if tk.GetId() == scimID {
					t.Errorf("SCIM token %s still listed after DeleteSCIMToken", scimID)
				}
			}

			// A service of the package that groupgate does not serve
			// answers unimplemented in the client's protocol. The message
			// types do not matter: the call is refused by name.
			users := connect.NewClient[emptypb.Empty, emptypb.Empty](s.client, srv.URL+"/buf.alpha.registry.v1alpha1.UserService/ListUsers", with(aliceTok)...)
			if _, err := users.CallUnary(ctx, connect.NewRequest(&emptypb.Empty{})); connect.CodeOf(err) != connect.CodeUnimplemented {
				t.Errorf("UserService/ListUsers: %v, want unimplemented", err)
			}
		})
	}
}
