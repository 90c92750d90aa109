package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/graph"
	"github.com/groupgate/groupgate/broker/oidc"
	"github.com/groupgate/groupgate/devidp"
	"github.com/groupgate/groupgate/internal/fakegraph"
)

// daveGroups are more than the overage IdPs put in a token (3): dave's
// ID token carries a reference to Graph instead.
var daveGroups = []string{"eng", "g-2", "g-3", "g-4", "g-5"}

// overageFixture adds to the harness two Entra-like providers whose ID
// tokens overflow for dave: "entra" sends a _claim_sources link to the
// retired graph.windows.net, "entra-hg" only "hasgroups". Both read
// groups from one fake Graph (its own origin), which checks user access
// tokens at the IdP's UserInfo endpoint and pages two objects at a time.
type overageFixture struct {
	h     *harness
	graph *fakegraph.Graph
	gsrv  *httptest.Server
}

func newOverageFixture(t *testing.T) *overageFixture {
	t.Helper()
	f := &overageFixture{graph: fakegraph.New(map[string][]string{"u-dave": daveGroups})}
	f.gsrv = httptest.NewServer(f.graph)
	t.Cleanup(f.gsrv.Close)
	f.graph.Base = f.gsrv.URL
	users := append(devidp.Users(), devidp.User{Subject: "u-dave", Username: "dave", Password: "dave-password", Email: "dave@example.com", Name: "Dave Example", Groups: daveGroups})
	f.h = newHarness(t, harnessConfig{backend: backends[0], extra: func(h *harness, mux *http.ServeMux, client *http.Client) []broker.Connector {
		base := h.srv.URL
		discard := slog.New(slog.DiscardHandler)
		gc, err := graph.New(graph.Config{BaseURL: f.gsrv.URL, Timeout: 5 * time.Second}, graph.WithHTTPClient(f.gsrv.Client()),
			graph.WithWait(func(context.Context, time.Duration) error { return nil }))
		if err != nil {
			t.Fatal(err)
		}
		var out []broker.Connector
		for _, p := range []struct {
			name    string
			overage devidp.Overage
		}{
			{"entra", devidp.Overage{Threshold: 3}},
			{"entra-hg", devidp.Overage{Threshold: 3, HasGroups: true}},
		} {
			idp, err := devidp.NewOIDC(base+"/"+p.name, devidp.OIDCConfig{Logger: discard, Users: users, Overage: &p.overage, Clients: []devidp.OIDCClient{
				{ID: clientID, Secret: clientSecret, RedirectURIs: []string{base + "/callback/" + p.name}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			mux.Handle("/"+p.name+"/", idp)
			c, err := oidc.Config{
				Issuer: base + "/" + p.name, ClientID: clientID, ClientSecret: clientSecret,
				Scopes:      []string{"openid", "email", "profile", "groups"},
				RedirectURL: base + "/callback/" + p.name,
			}.Open(context.Background(), p.name, discard, oidc.WithHTTPClient(client), oidc.WithGraph(gc))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		return out
	}})
	// Graph accepts the access tokens of both IdPs, each checked at the
	// UserInfo endpoint of the IdP that issued it.
	entra := fakegraph.UserInfo(f.h.srv.Client(), f.h.srv.URL+"/entra/userinfo")
	hg := fakegraph.UserInfo(f.h.srv.Client(), f.h.srv.URL+"/entra-hg/userinfo")
	f.graph.Authenticate = func(r *http.Request, token string) (string, bool) {
		if sub, ok := entra(r, token); ok {
			return sub, true
		}
		return hg(r, token)
	}
	return f
}

func (f *overageFixture) signIn(c *http.Client, provider string) *http.Response {
	return f.h.signIn(c, f.h.srv.URL+"/login?"+url.Values{"provider": {provider}, "rd": {"/"}}.Encode(), "dave", nil, nil)
}

func TestOIDCGroupOverageReadsTheGroupsFromGraph(t *testing.T) {
	f := newOverageFixture(t)
	for _, tt := range []struct {
		provider, wantPath string
	}{
		{"entra", "/v1.0/users/u-dave/transitiveMemberOf/microsoft.graph.group"},
		{"entra-hg", "/v1.0/me/transitiveMemberOf/microsoft.graph.group"},
	} {
		t.Run("a login at "+tt.provider+" gets the groups Graph lists over several pages", func(t *testing.T) {
			before := len(f.graph.Calls())
			c := f.h.browser()
			resp := f.signIn(c, tt.provider)
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("callback: %s\n%s", resp.Status, body)
			}
			auth := f.h.auth(c)
			if auth.StatusCode != http.StatusOK {
				t.Fatalf("/auth: %s", auth.Status)
			}
			if got, want := auth.Header.Get("X-Auth-Request-Groups"), strings.Join(daveGroups, ","); got != want {
				t.Errorf("groups %q, want %q", got, want)
			}
			if got := auth.Header.Get("X-Auth-Request-Org-Roles"); got != "acme=MEMBER" {
				t.Errorf("org roles %q, want acme=MEMBER (eng came from Graph)", got)
			}
			calls := f.graph.Calls()[before:]
			if len(calls) != 3 {
				t.Errorf("Graph calls %q, want 3 pages", calls)
			}
			for _, call := range calls {
				if call != "GET "+tt.wantPath {
					t.Errorf("Graph call %q, want GET %s", call, tt.wantPath)
				}
			}
		})
	}
}

func TestOIDCGroupOverageRefusesWhenGraphCannotTell(t *testing.T) {
	f := newOverageFixture(t)
	tests := []struct {
		name       string
		breakGraph func()
		wantStatus int
		wantText   string
	}{
		{"Graph answers 401", func() {
			f.graph.Authenticate = func(*http.Request, string) (string, bool) { return "", false }
		}, http.StatusForbidden, "Microsoft Graph refused to list your groups"},
		{"Graph keeps answering 503", func() {
			f.graph.FailNext(fakegraph.Failure{Status: 503}, fakegraph.Failure{Status: 503}, fakegraph.Failure{Status: 503})
		}, http.StatusServiceUnavailable, "Microsoft Graph is busy or failing"},
		{"Graph throttles with a long Retry-After", func() {
			f.graph.FailNext(fakegraph.Failure{Status: 429, RetryAfter: "3600"})
		}, http.StatusServiceUnavailable, "Microsoft Graph is busy or failing"},
		{"Graph is down", f.gsrv.Close, http.StatusServiceUnavailable, "Microsoft Graph cannot be reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name+": a refusal page and no session", func(t *testing.T) {
			tt.breakGraph()
			c := f.h.browser()
			resp := f.signIn(c, "entra")
			body := readBody(t, resp)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("callback: %s, want %d\n%s", resp.Status, tt.wantStatus, body)
			}
			if !strings.Contains(body, tt.wantText) {
				t.Errorf("page does not say %q:\n%s", tt.wantText, body)
			}
			if auth := f.h.auth(c); auth.StatusCode != http.StatusUnauthorized {
				t.Errorf("/auth after the refused login: %s, want 401", auth.Status)
			}
		})
	}
}
