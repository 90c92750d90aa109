package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cgi"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/saml"
	"github.com/groupgate/groupgate/web"
)

// spoofedHeaders are identity and address headers a client may send in
// spellings that escape a canonical-name check: CGI (RFC 3875 §4.1.18),
// WSGI (PEP 3333) and Rack turn every "-" into "_" and upper-case the name,
// so X_Auth_Request_User and X-Auth-Request-User land in the same variable,
// merged or one overwriting the other.
var spoofedHeaders = map[string]string{
	"X_Auth_Request_User":       "root",
	"X-Auth_Request-Groups":     "platform-admins",
	"X_AUTH_REQUEST_ORG_ROLES":  "acme=OWNER",
	"x_auth_request_repo_roles": "acme/api=ADMIN",
	"X_Auth_Request_Admin":      "true",
	"X-Auth-Request-Anything":   "forged",
	"X-Auth-Request-User":       "mallory",
	"X-Real-IP":                 "6.6.6.6",
	"X_Real_IP":                 "6.6.6.7",
	"X_Forwarded_For":           "6.6.6.8",
	"X_Forwarded_Host":          "evil.example",
}

func spoofedRequest(t *testing.T, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range spoofedHeaders {
		req.Header[k] = []string{v} // as spelled: no canonicalization
	}
	return req
}

// dashed is a header name as CGI, WSGI and Rack read it, back in dashes.
func dashed(name string) string { return strings.ToLower(strings.ReplaceAll(name, "_", "-")) }

func TestReverseProxyDropsSpoofedIdentityHeadersInEverySpelling(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0], upstream: echoUpstream})
	c := h.browser()
	h.login(c, "demo", "alice", "/", "/")

	for _, tt := range []struct {
		name   string
		xff    string // X-Forwarded-For the (trusted) test client sends
		wantIP string
	}{
		{"a direct client gets its own address as X-Real-IP", "", "127.0.0.1"},
		{"behind a trusted proxy the client is the forwarded address", "203.0.113.9", "203.0.113.9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := spoofedRequest(t, h.srv.URL+"/acme/api")
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got echoed
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("proxied GET = %s, %v", resp.Status, err)
			}
			resp.Body.Close()
			want := map[string]string{
				web.HeaderUser: "alice", web.HeaderEmail: "alice@example.com", web.HeaderGroups: "eng,platform-admins",
				web.HeaderOrgRoles: "acme=MEMBER", web.HeaderRepoRoles: "",
				"X-Real-Ip": tt.wantIP,
			}
			for name, vs := range got.Headers {
				d := dashed(name)
				if !strings.HasPrefix(d, "x-auth-request-") && d != "x-real-ip" && !strings.HasPrefix(d, "x-forwarded-") {
					continue
				}
				if strings.HasPrefix(d, "x-forwarded-") {
					if strings.Contains(name, "_") {
						t.Errorf("upstream received %s: %q", name, vs)
					}
					continue
				}
				w, ours := want[name]
				if !ours {
					t.Errorf("upstream received %s: %q, a header only groupgate may set", name, vs)
					continue
				}
				if len(vs) != 1 || vs[0] != w {
					t.Errorf("upstream %s = %q, want [%q]", name, vs, w)
				}
			}
			for name := range want {
				if _, ok := got.Headers[name]; !ok {
					t.Errorf("upstream lacks %s", name)
				}
			}
		})
	}
}

// cgiHelperEnv marks the test binary run as a CGI program by
// TestReverseProxySpoofedHeadersDoNotReachACGIUpstream.
const cgiHelperEnv = "GROUPGATE_TEST_CGI_UPSTREAM"

// TestCGIUpstreamHelper is not a test: run as a CGI program (net/http/cgi
// starts this test binary), it answers with every HTTP_* variable of its
// environment, as a CGI, WSGI or Rack application reads its headers.
func TestCGIUpstreamHelper(t *testing.T) {
	if os.Getenv(cgiHelperEnv) != "1" {
		t.Skip("run as a CGI program only")
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "HTTP_") {
			env[k] = v
		}
	}
	fmt.Print("Content-Type: application/json\r\n\r\n")
	_ = json.NewEncoder(os.Stdout).Encode(env)
	os.Exit(0)
}

func TestReverseProxySpoofedHeadersDoNotReachACGIUpstream(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip("no path to the test binary:", err)
	}
	upstream := &cgi.Handler{Path: exe, Args: []string{"-test.run=^TestCGIUpstreamHelper$"}, Env: []string{cgiHelperEnv + "=1"}}
	h := newHarness(t, harnessConfig{backend: backends[0], upstream: upstream})
	c := h.browser()
	h.login(c, "demo", "alice", "/", "/")

	resp, err := c.Do(spoofedRequest(t, h.srv.URL+"/acme/api"))
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	var env map[string]string
	if err := json.Unmarshal([]byte(body), &env); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CGI upstream = %s %q: %v", resp.Status, body, err)
	}
	want := map[string]string{
		"HTTP_X_AUTH_REQUEST_USER": "alice", "HTTP_X_AUTH_REQUEST_EMAIL": "alice@example.com",
		"HTTP_X_AUTH_REQUEST_GROUPS": "eng,platform-admins", "HTTP_X_AUTH_REQUEST_ORG_ROLES": "acme=MEMBER",
		"HTTP_X_AUTH_REQUEST_REPO_ROLES": "",
		// The test client at 127.0.0.1 is a trusted proxy that sent no
		// X-Forwarded-For: it is the client.
		"HTTP_X_REAL_IP": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1",
	}
	var names []string
	for k := range env {
		if strings.HasPrefix(k, "HTTP_X_AUTH_REQUEST_") {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	wantNames := []string{"HTTP_X_AUTH_REQUEST_EMAIL", "HTTP_X_AUTH_REQUEST_GROUPS", "HTTP_X_AUTH_REQUEST_ORG_ROLES",
		"HTTP_X_AUTH_REQUEST_REPO_ROLES", "HTTP_X_AUTH_REQUEST_USER"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("CGI upstream sees identity variables %q, want %q", names, wantNames)
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("CGI upstream %s = %q, want %q", k, env[k], v)
		}
	}
	if h := env["HTTP_X_FORWARDED_HOST"]; strings.Contains(h, "evil") {
		t.Errorf("CGI upstream HTTP_X_FORWARDED_HOST = %q, the client's", h)
	}
}

// groupgate's cookies are bearer credentials for groupgate: the session
// cookie, and the login binding cookies, which a browser sends to any path
// under /callback/ or /saml/. Paths under /callback/ (and /saml/ when SAML
// is configured) are never proxied (TestOwnedPathsNeverReachTheUpstream);
// elsewhere none of the cookies reaches the upstream, while the
// application's own cookies do.
func TestReverseProxyKeepsGroupgateCookiesFromTheUpstream(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0], upstream: echoUpstream})
	c := h.browser()
	h.login(c, "demo", "alice", "/", "/")
	for _, path := range []string{"/acme/api", "/saml/entra/extra"} {
		t.Run(path, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
			req.AddCookie(&http.Cookie{Name: "app_pref", Value: "dark"})
			req.AddCookie(&http.Cookie{Name: broker.DefaultCookiePrefix + "abc", Value: "attempt"})
			req.AddCookie(&http.Cookie{Name: saml.BindingCookieName("id-123"), Value: "binding"})
			req.AddCookie(&http.Cookie{Name: "_groupgate_app", Value: "kept"})
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got echoed
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("proxied GET = %s, %v", resp.Status, err)
			}
			resp.Body.Close()
			ck := got.Headers.Get("Cookie")
			for _, leak := range []string{h.sessionCookie(c).Name + "=", broker.DefaultCookiePrefix, "_groupgate_saml_", "attempt", "binding"} {
				if strings.Contains(ck, leak) {
					t.Errorf("upstream Cookie = %q: holds %q", ck, leak)
				}
			}
			if !strings.Contains(ck, "app_pref=dark") || !strings.Contains(ck, "_groupgate_app=kept") {
				t.Errorf("upstream Cookie = %q: want the application's cookies", ck)
			}
		})
	}
}
