package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"gopkg.in/yaml.v3"

	"github.com/groupgate/groupgate/idtoken"
	"github.com/groupgate/groupgate/internal/testenv"
)

// The reverse-proxy recipes of the README live in deploy/proxies/, and the
// README quotes them (TestReadmeQuotesTheProxyRecipes). These tests run
// each one with the real proxy on loopback: the file is read as written,
// and only the addresses of the example deployment are replaced.
//
// The example deployment, as the recipes write it.
const (
	recipeHost     = "bsr.example.com"
	recipeGate     = "127.0.0.1:4180"
	recipeApp      = "127.0.0.1:8080"
	recipeCookie   = "__Host-groupgate"
	recipeGatePath = "/_gg"
)

// replacement is one change from the example deployment to the test's.
// Every old string must occur in the recipe, so a recipe that drifts from
// what the test expects fails loudly instead of testing something else.
type replacement struct{ old, new string }

func renderRecipe(t *testing.T, file string, reps []replacement) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "proxies", file))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for _, r := range reps {
		if !strings.Contains(s, r.old) {
			t.Fatalf("deploy/proxies/%s no longer contains %q: update the test with the recipe", file, r.old)
		}
		s = strings.ReplaceAll(s, r.old, r.new)
	}
	return s
}

// recorder is the demo upstream with a memory: the headers of the last
// request for each path.
type recorder struct {
	mu   sync.Mutex
	seen map[string]http.Header
	app  http.Handler
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	h := r.Header.Clone()
	if r.Host != "" {
		h.Set("Host", r.Host)
	}
	rec.seen[r.URL.Path] = h
	rec.mu.Unlock()
	rec.app.ServeHTTP(w, r)
}

// last returns the headers of the last request for path, nil if none came.
func (rec *recorder) last(path string) http.Header {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.seen[path]
}

// proxyProcess runs a proxy until the test ends; its output is kept for
// failure messages.
type proxyProcess struct {
	name string
	logs *syncBuffer
	done chan struct{}
	err  error
}

func startProxy(t *testing.T, name string, addr string, cmd *exec.Cmd) *proxyProcess {
	t.Helper()
	p := &proxyProcess{name: name, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.logs)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case <-p.done:
			t.Fatalf("%s exited before listening: %v\n%s", name, p.err, p.logs)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s after 30s:\n%s", name, addr, p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proxyCase is one reverse proxy: how to find it, and how to run its
// recipe with the test's addresses.
type proxyCase struct {
	name string
	// binary returns the proxy's path, or skips (fails under CI=true when
	// the test command should have provided it).
	binary func(t *testing.T) string
	// run renders the recipe for a proxy listening on listen (host:port)
	// in front of groupgate at gate and the app at app, with groupgate's
	// session cookie named cookie, and starts it.
	run func(t *testing.T, bin, dir, listen, gate, app, cookie string) *exec.Cmd
	// keepsAppCookies: the application still gets its own cookies (the
	// Traefik recipe removes the Cookie header altogether).
	keepsAppCookies bool
	// releasesRoute: the recipe guards /releases/ with
	// /auth?org=acme&min_role=WRITER (README: per-route authorization).
	releasesRoute bool
}

// commonReplacements move the example deployment to the test's loopback
// ports. Cookies are not Secure on plain http, so the session cookie is
// groupgate's plain-http default name.
func commonReplacements(gate, app, cookie string) []replacement {
	return []replacement{
		{recipeGate, gate},
		{recipeApp, app},
		{recipeCookie, cookie},
	}
}

var proxyCases = []proxyCase{
	{
		name: "nginx",
		binary: func(t *testing.T) string {
			return testenv.Binary(t, testenv.NginxEnv, "install the Debian package nginx (scripts/test.sh does, as root)", "nginx")
		},
		run: func(t *testing.T, bin, dir, listen, gate, app, cookie string) *exec.Cmd {
			host, _, _ := net.SplitHostPort(listen)
			recipe := renderRecipe(t, "nginx.conf", append(commonReplacements(gate, app, cookie),
				replacement{"listen 443 ssl;", "listen " + listen + ";"},
				replacement{"server_name " + recipeHost + ";", "server_name " + host + ";"},
			))
			for _, sub := range []string{"body", "proxy", "fastcgi", "uwsgi", "scgi"} {
				if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			writeTo(t, filepath.Join(dir, "groupgate.conf"), recipe)
			// The recipe is the http block's content; this is the rest of
			// a configuration that a non-root nginx can run in dir.
			writeTo(t, filepath.Join(dir, "nginx.conf"), fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/groupgate.conf;
}
`, dir))
			return exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr")
		},
		keepsAppCookies: true,
		releasesRoute:   true,
	},
	{
		name: "Caddy",
		binary: func(t *testing.T) string {
			return testenv.Binary(t, testenv.CaddyEnv, "build it with GOBIN=DIR go install github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9 (scripts/test.sh does)", "caddy")
		},
		run: func(t *testing.T, bin, dir, listen, gate, app, cookie string) *exec.Cmd {
			recipe := renderRecipe(t, "Caddyfile", append(commonReplacements(gate, app, cookie),
				replacement{recipeHost + " {", "http://" + listen + " {"},
			))
			// Global options for a test: no admin endpoint, no
			// certificates, nothing but loopback.
			writeTo(t, filepath.Join(dir, "Caddyfile"), "{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n\tdefault_bind 127.0.0.1\n}\n\n"+recipe)
			cmd := exec.Command(bin, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
			cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
			return cmd
		},
		keepsAppCookies: true,
		releasesRoute:   true,
	},
	{
		name: "Traefik",
		binary: func(t *testing.T) string {
			return testenv.Binary(t, testenv.TraefikEnv, "build ./cmd/traefik inside the module github.com/traefik/traefik/v3@v3.6.12 (scripts/test.sh does, once, about 13 minutes on two cores)", "traefik")
		},
		run: func(t *testing.T, bin, dir, listen, gate, app, cookie string) *exec.Cmd {
			host, _, _ := net.SplitHostPort(listen)
			// The recipe removes every cookie: it names none.
			recipe := renderRecipe(t, "traefik.yaml", []replacement{
				{recipeGate, gate},
				{recipeApp, app},
				{"Host(`" + recipeHost + "`)", "Host(`" + host + "`)"},
			})
			writeTo(t, filepath.Join(dir, "dynamic.yaml"), recipe)
			return exec.Command(bin,
				"--entryPoints.web.address="+listen,
				"--providers.file.filename="+filepath.Join(dir, "dynamic.yaml"),
				"--global.checkNewVersion=false",
				"--global.sendAnonymousUsage=false",
				"--log.level=INFO",
				"--log.noColor=true",
			)
		},
		releasesRoute: true,
	},
	{
		name: "Envoy",
		binary: func(t *testing.T) string {
			return testenv.OptionalBinary(t, testenv.EnvoyEnv, "Envoy has no Debian package and no Go module that builds it, so the test command cannot provide it; deploy/proxies/envoy.yaml is the recipe, untested here. Set GROUPGATE_TEST_ENVOY to an envoy binary to run it", "envoy")
		},
		run: func(t *testing.T, bin, dir, listen, gate, app, cookie string) *exec.Cmd {
			host, port, _ := net.SplitHostPort(listen)
			gh, gp, _ := net.SplitHostPort(gate)
			ah, ap, _ := net.SplitHostPort(app)
			recipe := renderRecipe(t, "envoy.yaml", []replacement{
				{"address: 0.0.0.0, port_value: 443", "address: " + host + ", port_value: " + port},
				{"address: 127.0.0.1, port_value: 4180", "address: " + gh + ", port_value: " + gp},
				{"address: 127.0.0.1, port_value: 8080", "address: " + ah + ", port_value: " + ap},
				{"rd=https://", "rd=http://"},
				{recipeHost, listen},
			})
			writeTo(t, filepath.Join(dir, "envoy.yaml"), recipe)
			return exec.Command(bin, "-c", filepath.Join(dir, "envoy.yaml"), "--log-level", "warn", "--base-id", fmt.Sprint(time.Now().UnixNano()%100000))
		},
	},
}

func writeTo(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// proxiedServeConfig is serve behind a proxy at public (which mounts it at
// /_gg): auth-only mode (no upstream:), the proxy on loopback trusted for
// its forwarding headers, SQLite in dir and the demo OIDC IdP.
func proxiedServeConfig(t *testing.T, dir, public string) string {
	t.Helper()
	issuer := startIdP(t, public)
	return fmt.Sprintf(`listen: 127.0.0.1:%d
public_url: %s
trusted_proxies: [127.0.0.1]
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
`, freePort(t), public, testProvider, issuer, testClientID, testClientSecret, filepath.Join(dir, "gg.db"))
}

// spoofed are identity headers a client sends in every spelling that CGI,
// WSGI, Rack or PHP would read as X-Auth-Request-*, and the forwarding
// headers an application may believe.
var spoofed = map[string]string{
	"X-Auth-Request-User":      "mallory",
	"X_Auth_Request_User":      "mallory",
	"X-Auth_Request-User":      "mallory",
	"x_auth-request_user":      "mallory",
	"X-Auth-Request-Groups":    "mallory-admins",
	"X_Auth_Request_Groups":    "mallory-admins",
	"X-Auth-Request-Org-Roles": "acme=OWNER-by-mallory",
	"X_Auth_Request_Org_Roles": "acme=OWNER-by-mallory",
	"X-Auth-Request-Email":     "mallory@example.com",
	// bob has no repository role: groupgate's header is empty, and an
	// empty value must not let the client's through.
	"X-Auth-Request-Repo-Roles": "acme/api=ADMIN-by-mallory",
	"X-Real-IP":                 "203.0.113.66",
	"X-Forwarded-For":           "203.0.113.66",
	"X-Forwarded-Host":          "mallory.example",
	"X-Forwarded-Proto":         "mallory",
}

// TestProxiesRunTheREADMERecipes runs groupgate in auth-only mode behind
// each reverse proxy of the README, configured by the recipe in
// deploy/proxies/, in front of the demo upstream, and checks with a
// cookie-jar client what the application receives.
func TestProxiesRunTheREADMERecipes(t *testing.T) {
	for _, pc := range proxyCases {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			bin := pc.binary(t)
			testProxy(t, pc, bin)
		})
	}
}

func testProxy(t *testing.T, pc proxyCase, bin string) {
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	front := "http://" + listen
	public := front + recipeGatePath

	rec := &recorder{seen: map[string]http.Header{}, app: demoApp(slog.New(slog.DiscardHandler))}
	app := httptest.NewServer(rec)
	t.Cleanup(app.Close)

	config := proxiedServeConfig(t, dir, public)
	code, out, errOut := runCLI(t, nil, "token", "create", "--config", writeFile(t, "gg.yaml", config), "--user", "alice@example.com")
	if code != 0 {
		t.Fatalf("token create: exit %d: %s", code, errOut)
	}
	token := lastLine(out)
	base, _, _, logs := startServe(t, config)
	cookie := defaultCookieName(false)

	mustCall(t, base, token, "OrganizationService/CreateOrganization", `{"name":"acme"}`)
	org := mustCall(t, base, token, "OrganizationService/GetOrganizationByName", `{"name":"acme"}`)
	orgID, _ := org["organization"].(map[string]any)["id"].(string)
	mustCall(t, base, token, "OrganizationService/AddOrganizationGroup", `{"organization_id":"`+orgID+`","group_name":"eng"}`)

	cmd := pc.run(t, bin, dir, listen, strings.TrimPrefix(base, "http://"), strings.TrimPrefix(app.URL, "http://"), cookie)
	proxy := startProxy(t, pc.name, listen, cmd)
	// Listening is not ready: Traefik loads its file provider after it
	// opens the port, and answers 404 until then.
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(public + "/healthz")
		if err == nil {
			readAll(t, resp)
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz through %s: %v, %v", public, pc.name, resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("groupgate logs:\n%s", logs)
		}
	})

	bob := newBrowser(t)
	frontURL, _ := url.Parse(front + "/")
	// An application cookie set before groupgate's, and one after: both
	// must reach the application, groupgate's must not.
	bob.Jar.SetCookies(frontURL, []*http.Cookie{{Name: "app_before", Value: "1", Path: "/"}})

	t.Run("a browser without a session sends nothing to the application", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, front+"/spoof-anonymous", nil)
		for k, v := range spoofed {
			req.Header[k] = []string{v}
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if loc := resp.Header.Get("Location"); (resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther) || !strings.Contains(loc, recipeGatePath+"/login") {
			t.Fatalf("anonymous request: %s to %q, want a redirect to %s/login", resp.Status, loc, recipeGatePath)
		}
		if h := rec.last("/spoof-anonymous"); h != nil {
			t.Fatalf("the application received an anonymous request: %v", h)
		}
	})

	original := front + "/app/page?tab=roles"
	t.Run("an anonymous browser is sent to the login and comes back to the original URL", func(t *testing.T) {
		resp, body := signIn(t, bob, original, "bob")
		if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != original {
			t.Fatalf("after login: %s at %s, want 200 at %s:\n%s", resp.Status, resp.Request.URL, original, body)
		}
		if !strings.Contains(body, "groupgate demo app") {
			t.Fatalf("the page after login is not the demo app:\n%s", body)
		}
	})
	bob.Jar.SetCookies(frontURL, []*http.Cookie{{Name: "app_after", Value: "2", Path: "/"}})
	var gotSession bool
	for _, c := range bob.Jar.Cookies(frontURL) {
		gotSession = gotSession || c.Name == cookie
	}
	if !gotSession {
		t.Fatalf("bob's browser has no %s cookie for %s after login", cookie, front)
	}

	get := func(t *testing.T, path string, header map[string]string) http.Header {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, front+path, nil)
		for k, v := range header {
			req.Header[k] = []string{v}
		}
		resp, err := bob.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		h := rec.last(path)
		if resp.StatusCode != http.StatusOK || h == nil {
			t.Fatalf("GET %s: %s, the application saw %v:\n%s", path, resp.Status, h, body)
		}
		return h
	}

	t.Run("the application sees bob's identity headers", func(t *testing.T) {
		h := get(t, "/who", nil)
		for name, want := range map[string]string{
			"X-Auth-Request-User":      "bob",
			"X-Auth-Request-Email":     "bob@example.com",
			"X-Auth-Request-Groups":    "eng",
			"X-Auth-Request-Org-Roles": "acme=MEMBER",
		} {
			if got := h.Values(name); len(got) != 1 || got[0] != want {
				t.Fatalf("%s = %q, want %q", name, got, want)
			}
		}
	})

	t.Run("client-sent identity headers in any spelling never reach the application", func(t *testing.T) {
		h := get(t, "/spoof", spoofed)
		for name, values := range h {
			for _, v := range values {
				if strings.Contains(v, "mallory") || strings.Contains(v, "203.0.113.66") {
					t.Fatalf("the application received the client's %s: %q (all headers: %v)", name, v, h)
				}
			}
			if norm := strings.ToLower(strings.ReplaceAll(name, "_", "-")); strings.HasPrefix(norm, "x-auth-request-") && strings.Contains(name, "_") {
				t.Fatalf("the application received a header spelled %s", name)
			}
		}
		if got := h.Values("X-Auth-Request-User"); len(got) != 1 || got[0] != "bob" {
			t.Fatalf("X-Auth-Request-User = %q, want [bob]", got)
		}
	})

	t.Run("groupgate's session cookie never reaches the application", func(t *testing.T) {
		h := get(t, "/cookies", nil)
		all := strings.Join(h.Values("Cookie"), "; ")
		if strings.Contains(all, cookie+"=") {
			t.Fatalf("the application received groupgate's session cookie: Cookie: %s", all)
		}
		if pc.keepsAppCookies && (!strings.Contains(all, "app_before=1") || !strings.Contains(all, "app_after=2")) {
			t.Fatalf("the application lost its own cookies: Cookie: %q", all)
		}
	})

	t.Run("the application gets a signed identity that verifies against the JWKS", func(t *testing.T) {
		h := get(t, "/jwt", nil)
		claims := verifyUpstreamJWT(t, public, h.Get("X-Auth-Request-Jwt"))
		if claims.PreferredUsername != "bob" || claims.OrgRoles["acme"] != "MEMBER" {
			t.Fatalf("claims = %+v", claims)
		}
	})

	if pc.releasesRoute {
		t.Run("a route that requires WRITER on acme refuses bob, a MEMBER, with 403", func(t *testing.T) {
			resp, err := bob.Get(front + "/releases/v1.tar.gz")
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("GET /releases/v1.tar.gz: %s, want 403:\n%s", resp.Status, body)
			}
			if h := rec.last("/releases/v1.tar.gz"); h != nil {
				t.Fatal("the application received a request the route refuses")
			}
		})
		t.Run("the same route lets bob in once his group grants MACHINE, which ranks as WRITER", func(t *testing.T) {
			// The BSR's OrganizationRole enum spells WRITER as MACHINE.
			mustCall(t, base, token, "OrganizationService/UpdateOrganizationGroup",
				`{"organization_id":"`+orgID+`","group_name":"eng","role_override":"ORGANIZATION_ROLE_MACHINE"}`)
			h := get(t, "/releases/v2.tar.gz", nil)
			if got := h.Get("X-Auth-Request-Org-Roles"); got != "acme=MACHINE" {
				t.Fatalf("X-Auth-Request-Org-Roles = %q, want acme=MACHINE", got)
			}
			if claims := verifyUpstreamJWT(t, public, h.Get("X-Auth-Request-Jwt")); claims.OrgRoles["acme"] != "MACHINE" {
				t.Fatalf("the token says %+v, want acme MACHINE", claims.OrgRoles)
			}
		})
	}

	t.Run("a removed mapping is visible at the application on the next request", func(t *testing.T) {
		mustCall(t, base, token, "OrganizationService/RemoveOrganizationGroup", `{"organization_id":"`+orgID+`","group_name":"eng"}`)
		h := get(t, "/after-removal", nil)
		if got := h.Get("X-Auth-Request-Org-Roles"); got != "" {
			t.Fatalf("X-Auth-Request-Org-Roles = %q after the mapping was removed, want none", got)
		}
		if got := h.Get("X-Auth-Request-User"); got != "bob" {
			t.Fatalf("X-Auth-Request-User = %q, want bob (still signed in)", got)
		}
	})

	select {
	case <-proxy.done:
		t.Fatalf("%s exited during the test: %v", pc.name, proxy.err)
	default:
	}
}

// TestReadmeQuotesTheProxyRecipes keeps one copy of each recipe: the
// README quotes the files of deploy/proxies/ that the proxy tests run, and
// points at the one it does not quote.
func TestReadmeQuotesTheProxyRecipes(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ file, lang string }{
		{"nginx.conf", "nginx"},
		{"Caddyfile", "caddyfile"},
		{"traefik.yaml", "yaml"},
	} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "proxies", r.file))
		if err != nil {
			t.Fatal(err)
		}
		if quote := "```" + r.lang + "\n" + string(raw) + "```\n"; !strings.Contains(string(readme), quote) {
			t.Errorf("README.md does not quote deploy/proxies/%s as it is; paste the file into its ```%s block", r.file, r.lang)
		}
	}
	if !strings.Contains(string(readme), "deploy/proxies/envoy.yaml") {
		t.Error("README.md does not point at deploy/proxies/envoy.yaml")
	}
}

// TestProxyRecipesParse checks the YAML recipes where no proxy runs them
// (Traefik is opt-in, Envoy cannot be installed), so a typo shows anyway.
func TestProxyRecipesParse(t *testing.T) {
	for _, file := range []string{"traefik.yaml", "envoy.yaml"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "proxies", file))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Errorf("deploy/proxies/%s: %v", file, err)
		}
		if len(doc) == 0 {
			t.Errorf("deploy/proxies/%s is empty", file)
		}
	}
}

// verifyUpstreamJWT checks raw with go-jose against the key set published
// at public (through the proxy), as an upstream would.
func verifyUpstreamJWT(t *testing.T, public, raw string) idtoken.Claims {
	t.Helper()
	if raw == "" {
		t.Fatal("the application received no X-Auth-Request-Jwt")
	}
	resp, err := http.Get(public + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS through the proxy: %s, %v:\n%s", resp.Status, err, body)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var std jwt.Claims
	var claims idtoken.Claims
	if err := tok.Claims(set, &std, &claims); err != nil {
		t.Fatalf("X-Auth-Request-Jwt does not verify: %v", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: public, AnyAudience: jwt.Audience{public}, Time: time.Now()}, time.Minute); err != nil {
		t.Fatal(err)
	}
	return claims
}
