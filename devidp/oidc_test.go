package devidp_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/groupgate/groupgate/devidp"
)

func newProvider(t *testing.T, cfg devidp.OIDCConfig) (*httptest.Server, string) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	issuer := srv.URL + "/dev/oidc"
	cfg.Clients = []devidp.OIDCClient{{ID: "rp", Secret: "secret", RedirectURIs: []string{srv.URL + "/cb"}}}
	cfg.Logger = slog.New(slog.DiscardHandler)
	p, err := devidp.NewOIDC(issuer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/dev/oidc/", p)
	return srv, issuer
}

var hiddenID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// authRequestID starts an authorization request and returns the ID its
// login form carries.
func authRequestID(t *testing.T, srv *httptest.Server, issuer string) string {
	t.Helper()
	q := url.Values{
		"response_type": {"code"}, "client_id": {"rp"}, "redirect_uri": {srv.URL + "/cb"},
		"scope": {"openid email"}, "state": {"s"}, "nonce": {"n"},
	}
	resp, err := srv.Client().Get(issuer + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := hiddenID.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("authorize: %s, no login form:\n%s", resp.Status, body)
	}
	return string(m[1])
}

func TestLoginForm(t *testing.T) {
	srv, issuer := newProvider(t, devidp.OIDCConfig{})
	noRedirect := new(http.Client)
	*noRedirect = *srv.Client() // a copy: srv.Client() is shared
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	tests := []struct {
		name       string
		id         func() string
		password   string
		wantStatus int
		wantIn     string
	}{
		{name: "the right password returns to the authorize callback", id: func() string { return authRequestID(t, srv, issuer) },
			password: "alice-password", wantStatus: http.StatusFound, wantIn: issuer + "/authorize/callback?id="},
		{name: "a wrong password shows the form again", id: func() string { return authRequestID(t, srv, issuer) },
			password: "bob-password", wantStatus: http.StatusUnauthorized, wantIn: "Wrong username or password"},
		{name: "an unknown authorization request is refused", id: func() string { return "nope" },
			password: "alice-password", wantStatus: http.StatusBadRequest, wantIn: "unknown or expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := noRedirect.PostForm(issuer+"/login", url.Values{"id": {tc.id()}, "username": {"alice"}, "password": {tc.password}})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(resp.Header.Get("Location")+string(body), tc.wantIn) {
				t.Fatalf("POST /login: %s Location=%q\n%s", resp.Status, resp.Header.Get("Location"), body)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	tests := []struct {
		name string
		cfg  devidp.OIDCConfig
		want []oidc.AuthMethod
	}{
		{name: "op's token auth methods are kept by default", cfg: devidp.OIDCConfig{},
			want: []oidc.AuthMethod{oidc.AuthMethodNone, oidc.AuthMethodBasic, oidc.AuthMethodPost}},
		{name: "configured token auth methods replace them", cfg: devidp.OIDCConfig{TokenAuthMethods: []oidc.AuthMethod{oidc.AuthMethodPost}},
			want: []oidc.AuthMethod{oidc.AuthMethodPost}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, issuer := newProvider(t, tc.cfg)
			resp, err := srv.Client().Get(issuer + "/.well-known/openid-configuration")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var doc oidc.DiscoveryConfiguration
			if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
				t.Fatal(err)
			}
			if doc.Issuer != issuer || doc.EndSessionEndpoint != issuer+"/end_session" || !slices.Contains(doc.ScopesSupported, "groups") {
				t.Errorf("discovery = %+v", doc)
			}
			if !slices.Equal(doc.TokenEndpointAuthMethodsSupported, tc.want) {
				t.Errorf("token auth methods = %v, want %v", doc.TokenEndpointAuthMethodsSupported, tc.want)
			}
		})
	}
}

func TestNewOIDCRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name   string
		issuer string
		cfg    devidp.OIDCConfig
	}{
		{name: "an issuer with a trailing slash is refused", issuer: "http://127.0.0.1:1/idp/"},
		{name: "a relative issuer is refused", issuer: "/idp"},
		{name: "an unsupported client auth method is refused", issuer: "http://127.0.0.1:1",
			cfg: devidp.OIDCConfig{Clients: []devidp.OIDCClient{{ID: "x", AuthMethod: oidc.AuthMethodPrivateKeyJWT}}}},
		{name: "a client registered twice is refused", issuer: "http://127.0.0.1:1",
			cfg: devidp.OIDCConfig{Clients: []devidp.OIDCClient{{ID: "x"}, {ID: "x"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := devidp.NewOIDC(tc.issuer, tc.cfg); err == nil {
				t.Fatal("NewOIDC succeeded")
			}
		})
	}
}

func TestUsersIsACopy(t *testing.T) {
	u := devidp.Users()
	u[0].Groups[0] = "changed"
	if devidp.Users()[0].Groups[0] == "changed" {
		t.Fatal("Users shares its table with callers")
	}
}

func TestAuthRequestsExpireOnTheInjectedClock(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	srv, issuer := newProvider(t, devidp.OIDCConfig{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	id := authRequestID(t, srv, issuer)
	mu.Lock()
	now = now.Add(11 * time.Minute)
	mu.Unlock()
	resp, err := srv.Client().PostForm(issuer+"/login", url.Values{"id": {id}, "username": {"alice"}, "password": {"alice-password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("login for an expired auth request: %s, want 400", resp.Status)
	}
}
