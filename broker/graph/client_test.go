package graph_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker/graph"
	"github.com/groupgate/groupgate/internal/fakegraph"
)

const userID = "6f1b7d4e-0000-4000-8000-000000000001"

var fiveGroups = []string{"g-1", "g-2", "g-3", "g-4", "g-5"}

// fixture is a fake Graph that knows one user, whose token is "user-token".
type fixture struct {
	fake   *fakegraph.Graph
	srv    *httptest.Server
	mu     sync.Mutex
	waited []time.Duration
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{fake: fakegraph.New(map[string][]string{userID: fiveGroups})}
	f.fake.Authenticate = func(_ *http.Request, token string) (string, bool) { return userID, token == "user-token" }
	f.fake.ClientID, f.fake.ClientSecret = "app", "app-secret"
	f.srv = httptest.NewServer(f.fake)
	t.Cleanup(f.srv.Close)
	f.fake.Base = f.srv.URL
	return f
}

func (f *fixture) client(t *testing.T, cfg graph.Config) *graph.Client {
	t.Helper()
	if cfg.BaseURL == "" {
		cfg.BaseURL = f.srv.URL
	}
	c, err := graph.New(cfg, graph.WithHTTPClient(f.srv.Client()), graph.WithWait(func(_ context.Context, d time.Duration) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.waited = append(f.waited, d)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMemberGroupsReadsEveryPage(t *testing.T) {
	tests := []struct {
		name      string
		target    func(f *fixture) graph.Target
		wantCalls []string
	}{
		{"the token's own user is listed page by page", func(*fixture) graph.Target { return graph.Me() }, []string{
			"GET /v1.0/me/transitiveMemberOf/microsoft.graph.group",
			"GET /v1.0/me/transitiveMemberOf/microsoft.graph.group",
			"GET /v1.0/me/transitiveMemberOf/microsoft.graph.group",
		}},
		{"a retired graph.windows.net link is reduced to its user on the configured Graph", func(*fixture) graph.Target {
			return graph.Link("https://graph.windows.net/tenant-1/users/"+userID+"/getMemberObjects", true)
		}, []string{
			"GET /v1.0/users/" + userID + "/transitiveMemberOf/microsoft.graph.group",
			"GET /v1.0/users/" + userID + "/transitiveMemberOf/microsoft.graph.group",
			"GET /v1.0/users/" + userID + "/transitiveMemberOf/microsoft.graph.group",
		}},
		{"a link on the configured Graph is called as getMemberObjects", func(f *fixture) graph.Target {
			return graph.Link(f.srv.URL+"/v1.0/users/"+userID+"/getMemberObjects", true)
		}, []string{"POST /v1.0/users/" + userID + "/getMemberObjects"}},
		{"a link that names no user falls back to the token's user", func(*fixture) graph.Target {
			return graph.Link("https://example.com/elsewhere", true)
		}, []string{
			"GET /v1.0/me/transitiveMemberOf/microsoft.graph.group",
			"GET /v1.0/me/transitiveMemberOf/microsoft.graph.group",
			"GET /v1.0/me/transitiveMemberOf/microsoft.graph.group",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			got, err := f.client(t, graph.Config{}).MemberGroups(context.Background(), "user-token", tt.target(f))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, fiveGroups) {
				t.Errorf("groups = %v, want %v", got, fiveGroups)
			}
			if calls := f.fake.Calls(); !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("calls = %q, want %q", calls, tt.wantCalls)
			}
		})
	}
}

func TestMemberGroupsRefusesRatherThanReturnAPartialList(t *testing.T) {
	tests := []struct {
		name  string
		cfg   graph.Config
		fail  []fakegraph.Failure
		token string
		down  bool
		// laterPages makes every call after the first answer 503.
		laterPages bool
		wantCode   groupgate.ErrorCode
	}{
		{name: "a token Graph does not accept", token: "stolen", wantCode: groupgate.Forbidden},
		{name: "a token without the permission", fail: []fakegraph.Failure{{Status: 403, Code: "Authorization_RequestDenied"}}, wantCode: groupgate.Forbidden},
		{name: "Graph keeps throttling", fail: []fakegraph.Failure{{Status: 429, RetryAfter: "1"}, {Status: 429, RetryAfter: "1"}, {Status: 429, RetryAfter: "1"}}, wantCode: groupgate.Unavailable},
		{name: "Graph asks to wait longer than allowed", fail: []fakegraph.Failure{{Status: 429, RetryAfter: "120"}}, wantCode: groupgate.Unavailable},
		{name: "Graph fails on a later page", laterPages: true, wantCode: groupgate.Unavailable},
		{name: "Graph keeps failing", fail: []fakegraph.Failure{{Status: 503}, {Status: 502}, {Status: 500}}, wantCode: groupgate.Unavailable},
		{name: "Graph cannot be reached", down: true, wantCode: groupgate.Unavailable},
		{name: "more groups than allowed", cfg: graph.Config{MaxGroups: 4}, wantCode: groupgate.Forbidden},
		{name: "more pages than allowed", cfg: graph.Config{MaxPages: 2}, wantCode: groupgate.Forbidden},
		{name: "a page larger than allowed", cfg: graph.Config{MaxBodyBytes: 64}, wantCode: groupgate.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			c := f.client(t, tt.cfg)
			if tt.laterPages {
				wrapped := f.srv.Config.Handler
				n := 0
				var mu sync.Mutex
				f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					n++
					later := n > 1
					mu.Unlock()
					if later {
						http.Error(w, `{"error":{"code":"serviceNotAvailable"}}`, http.StatusServiceUnavailable)
						return
					}
					wrapped.ServeHTTP(w, r)
				})
			}
			f.fake.FailNext(tt.fail...)
			if tt.down {
				f.srv.Close()
			}
			token := tt.token
			if token == "" {
				token = "user-token"
			}
			got, err := c.MemberGroups(context.Background(), token, graph.Me())
			if err == nil {
				t.Fatalf("groups %v, want a refusal", got)
			}
			if code := groupgate.ErrorCodeOf(err); code != tt.wantCode {
				t.Errorf("code %s, want %s (%v)", code, tt.wantCode, err)
			}
			if got != nil {
				t.Errorf("a partial list %v came with the error", got)
			}
		})
	}
}

func TestMemberGroupsWaitsAsRetryAfterAsks(t *testing.T) {
	f := newFixture(t)
	f.fake.FailNext(fakegraph.Failure{Status: 429, RetryAfter: "2"}, fakegraph.Failure{Status: 503})
	got, err := f.client(t, graph.Config{}).MemberGroups(context.Background(), "user-token", graph.Me())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, fiveGroups) {
		t.Errorf("groups = %v", got)
	}
	if len(f.waited) != 2 || f.waited[0] != 2*time.Second || f.waited[1] <= 0 || f.waited[1] > time.Second {
		t.Errorf("waited %v, want 2s then a short backoff", f.waited)
	}
}

func TestMemberGroupsNeverSendsTheTokenToAnotherOrigin(t *testing.T) {
	var leaked []string
	var mu sync.Mutex
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("Authorization"))
		mu.Unlock()
		fmt.Fprint(w, `{"value":["evil"]}`)
	}))
	defer other.Close()
	f := newFixture(t)
	// A nextLink elsewhere: Graph's answer is followed only on its origin.
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"value":[{"id":"g-1"}],"@odata.nextLink":%q}`, other.URL+"/v1.0/me/transitiveMemberOf?$skiptoken=x")
	})
	c := f.client(t, graph.Config{})
	if _, err := c.MemberGroups(context.Background(), "user-token", graph.Me()); !groupgate.IsCode(err, groupgate.Unavailable) {
		t.Errorf("err = %v, want Unavailable", err)
	}
	// A link elsewhere that names a user is listed on the configured Graph.
	f.srv.Config.Handler = f.fake
	if _, err := c.MemberGroups(context.Background(), "user-token", graph.Link(other.URL+"/v1.0/users/"+userID+"/getMemberObjects", false)); err != nil {
		t.Fatal(err)
	}
	if len(leaked) != 0 {
		t.Errorf("the token reached another origin: %q", leaked)
	}
}

func TestAppMemberGroupsUsesClientCredentials(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, graph.Config{})
	ts := c.TokenSource(graph.ClientCredentials{ClientID: "app", ClientSecret: "app-secret", TokenURL: f.srv.URL + "/tenant-1/oauth2/v2.0/token"})
	link := "https://graph.windows.net/tenant-1/users/" + userID + "/getMemberObjects"
	for range 2 {
		got, err := c.AppMemberGroups(context.Background(), ts, graph.Link(link, false))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, fiveGroups) {
			t.Errorf("groups = %v", got)
		}
	}
	if n := f.fake.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1 (the token is cached)", n)
	}

	bad := c.TokenSource(graph.ClientCredentials{ClientID: "app", ClientSecret: "wrong-secret", TokenURL: f.srv.URL + "/tenant-1/oauth2/v2.0/token"})
	_, err := c.AppMemberGroups(context.Background(), bad, graph.Link(link, false))
	if !groupgate.IsCode(err, groupgate.Unavailable) {
		t.Fatalf("err = %v, want Unavailable", err)
	}
	if strings.Contains(fmt.Sprintf("%+v", err), "wrong-secret") {
		t.Error("the client secret appears in the error")
	}
	if _, err := c.AppMemberGroups(context.Background(), ts, graph.Link("https://example.com/none", false)); !groupgate.IsCode(err, groupgate.Forbidden) {
		t.Errorf("a link naming no user: err = %v, want Forbidden", err)
	}
}
