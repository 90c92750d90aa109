package main

import (
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/devidp"
)

const (
	testClientID     = "groupgate"
	testClientSecret = "groupgate-test-secret"
	testProvider     = "okta"
)

// freePort returns a loopback port that was free a moment ago. serve's
// public_url must name its port before it listens (the IdP registers the
// callback URL), so port 0 cannot be used.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startIdP serves the demo OIDC provider on an httptest server, with
// groupgate at public registered as client testClientID, and returns its
// issuer.
func startIdP(t *testing.T, public string) string {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	issuer := srv.URL + "/idp"
	idp, err := devidp.NewOIDC(issuer, devidp.OIDCConfig{
		Logger: slog.New(slog.DiscardHandler),
		Clients: []devidp.OIDCClient{{
			ID: testClientID, Secret: testClientSecret,
			RedirectURIs:           []string{public + "/callback/" + testProvider},
			PostLogoutRedirectURIs: []string{public + "/logged-out"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/idp/", idp)
	return issuer
}

// serveConfig is a configuration for serve on a free port with SQLite in
// dir and one OIDC provider, the demo IdP, which it starts. extra is
// appended (it may add top-level keys).
func serveConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	public := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	issuer := startIdP(t, public)
	return fmt.Sprintf(`listen: %s
public_url: %s
session:
  secret: 0123456789abcdef0123456789abcdef
  secure_cookie: false
admins: [alice@example.com]
providers:
  - name: %s
    type: oidc
    issuer: %s
    client_id: %s
    client_secret: %s
    scopes: [openid, email, profile, groups]
store:
  driver: sqlite
  dsn: file:%s
`, strings.TrimPrefix(public, "http://"), public, testProvider, issuer, testClientID, testClientSecret,
		filepath.Join(dir, "gg.db")) + extra
}

// newBrowser is an HTTP client with its own cookie jar that follows
// redirects, as a browser does.
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 15 * time.Second}
}

var (
	formActionRE = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenRE     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// signIn opens start in browser c, fills the demo IdP's form as user and
// returns the page the redirects end on, with its body.
func signIn(t *testing.T, c *http.Client, start, user string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(start)
	if err != nil {
		t.Fatalf("GET %s: %v", start, err)
	}
	body := readAll(t, resp)
	m := formActionRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET %s ended at %s with %s, not the IdP's form:\n%s", start, resp.Request.URL, resp.Status, body)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"username": {user}, "password": {user + "-password"}}
	for _, h := range hiddenRE.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	resp, err = c.PostForm(action.String(), form)
	if err != nil {
		t.Fatalf("POST the IdP's form: %v", err)
	}
	return resp, readAll(t, resp)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
