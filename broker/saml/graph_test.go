package saml_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker/graph"
	"github.com/groupgate/groupgate/broker/saml"
	"github.com/groupgate/groupgate/claims"
	"github.com/groupgate/groupgate/internal/fakegraph"
)

const entraOID = "0d5c4d1e-7b7e-4c55-9d53-000000000042"

func TestGroupOverageWithAGraphCredentialReadsTheGroupsFromGraph(t *testing.T) {
	ctx := context.Background()
	groups := []string{"g-1", "g-2", "g-3", "g-4", "g-5"}
	fake := fakegraph.New(map[string][]string{entraOID: groups})
	fake.ClientID, fake.ClientSecret = "groupgate-app", "app-secret"
	srv := httptest.NewServer(fake)
	defer srv.Close()
	fake.Base = srv.URL

	open := func(t *testing.T, secret string) (*env, *saml.Connector) {
		e := newEnv(t, nil)
		gc, err := graph.New(graph.Config{BaseURL: srv.URL}, graph.WithHTTPClient(srv.Client()),
			graph.WithWait(func(context.Context, time.Duration) error { return nil }))
		if err != nil {
			t.Fatal(err)
		}
		ts := gc.TokenSource(graph.ClientCredentials{TenantID: "tenant-1", ClientID: "groupgate-app", ClientSecret: secret, TokenURL: srv.URL + "/tenant-1/oauth2/v2.0/token"})
		cfg := saml.Config{IDPMetadataXML: e.idp.metadata(false), EntityID: spEntity, ACSURL: acsURL, KeyPair: e.spKey,
			EmailAttribute: "email", GroupsAttribute: "groups"}
		conn, err := cfg.Open(ctx, "corp", e.backend, e.backend, saml.WithNow(e.clk.Now), saml.WithGraph(gc, ts),
			saml.WithSCIMGroups(func(context.Context, groupgate.Identity) (bool, error) {
				t.Error("SCIM was asked although Graph is configured")
				return true, nil
			}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return e, conn
	}
	respond := func(t *testing.T, e *env, conn *saml.Connector, attrs map[string][]string) (saml.Result, error) {
		req, err := conn.Begin(ctx, "/", false)
		if err != nil {
			t.Fatal(err)
		}
		s := newSpec(e.clk.Now(), req.RequestID)
		delete(s.Attrs, "groups")
		for k, v := range attrs {
			s.Attrs[k] = v
		}
		return conn.HandleResponse(ctx, saml.Response{SAMLResponse: encode(t, e.idp.build(t, e.clk.Now(), s))})
	}

	tests := []struct {
		name  string
		attrs map[string][]string
		call  string
	}{
		{"the user the groups.link names", map[string][]string{
			claims.EntraGroupsLinkAttribute: {"https://graph.windows.net/tenant-1/users/" + entraOID + "/getMemberObjects"},
		}, "GET /v1.0/users/" + entraOID + "/transitiveMemberOf/microsoft.graph.group"},
		{"the objectidentifier when the link names no user", map[string][]string{
			claims.EntraGroupsLinkAttribute: {"https://graph.windows.net/tenant-1/"},
			saml.EntraObjectIDAttribute:     {entraOID},
		}, "GET /v1.0/users/" + entraOID + "/transitiveMemberOf/microsoft.graph.group"},
		{"a link on the configured Graph, called as it is", map[string][]string{
			claims.EntraGroupsLinkAttribute: {srv.URL + "/v1.0/users/" + entraOID + "/getMemberObjects"},
		}, "POST /v1.0/users/" + entraOID + "/getMemberObjects"},
	}
	for _, tt := range tests {
		t.Run("an overage login gets the groups of "+tt.name, func(t *testing.T) {
			e, conn := open(t, "app-secret")
			before := len(fake.Calls())
			res, err := respond(t, e, conn, tt.attrs)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Identity.Groups, groups) || !res.Identity.GroupsPresent {
				t.Errorf("identity %+v, want groups %v", res.Identity, groups)
			}
			for _, c := range fake.Calls()[before:] {
				if c != tt.call {
					t.Errorf("Graph call %q, want %q", c, tt.call)
				}
			}
		})
	}

	t.Run("a wrong client secret refuses the login, Unavailable", func(t *testing.T) {
		e, conn := open(t, "wrong")
		_, err := respond(t, e, conn, tests[0].attrs)
		if !groupgate.IsCode(err, groupgate.Unavailable) {
			t.Fatalf("err = %v, want Unavailable", err)
		}
	})
	t.Run("Graph refusing the app refuses the login, Forbidden", func(t *testing.T) {
		e, conn := open(t, "app-secret")
		fake.FailNext(fakegraph.Failure{Status: 403, Code: "Authorization_RequestDenied"})
		_, err := respond(t, e, conn, tests[0].attrs)
		if !groupgate.IsCode(err, groupgate.Forbidden) {
			t.Fatalf("err = %v, want Forbidden", err)
		}
	})
	t.Run("Graph down refuses the login, Unavailable", func(t *testing.T) {
		e, conn := open(t, "app-secret")
		fake.FailNext(fakegraph.Failure{Status: 503}, fakegraph.Failure{Status: 503}, fakegraph.Failure{Status: 503})
		_, err := respond(t, e, conn, tests[0].attrs)
		if !groupgate.IsCode(err, groupgate.Unavailable) {
			t.Fatalf("err = %v, want Unavailable", err)
		}
	})
}
