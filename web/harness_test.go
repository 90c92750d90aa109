package web_test

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/oidc"
	"github.com/groupgate/groupgate/devidp"
	"github.com/groupgate/groupgate/idtoken"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store/sqlite"
	"github.com/groupgate/groupgate/sync"
	"github.com/groupgate/groupgate/web"
)

const (
	clientID     = "groupgate"
	clientSecret = "groupgate-secret"
	otherID      = "other-app"
	otherSecret  = "other-app-secret"
	sessionTTL   = 12 * time.Hour
)

var sessionSecret = []byte("0123456789abcdef0123456789abcdef-web-tests")

// clock is the injected time of sessions and the server; tests move it.
type clock struct {
	mu stdsync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// lockedBuffer collects the server's logs, which tests search for secrets.
type lockedBuffer struct {
	mu  stdsync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// backendKind builds the session backend a harness runs on.
type backendKind struct {
	name string
	open func(t testing.TB, now func() time.Time) session.Backend
}

var backends = []backendKind{
	{"in-process sessions", func(_ testing.TB, now func() time.Time) session.Backend {
		return session.NewMemory(session.WithNow(now))
	}},
	{"Redis sessions", func(t testing.TB, now func() time.Time) session.Backend {
		client, prefix := testenv.Redis(t)
		b, err := session.NewRedis(client, prefix, session.WithNow(now))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}},
}

type harnessConfig struct {
	backend  backendKind
	upstream http.Handler // set: reverse-proxy mode
	// afterAccountLogin, when set, runs after the syncer's Login has read
	// the user's access and before the server saves the session: a change
	// racing the login.
	afterAccountLogin func(h *harness)
	// routes are upstream_routes (reverse-proxy mode).
	routes []web.Route
	// tokens turns on X-Auth-Request-Jwt, with keys in the harness's store.
	tokens bool
	// tracer, when set, traces requests and the deps (tracing_test.go).
	tracer trace.TracerProvider
	// infoLogs logs at Info, serve's default, rather than Debug: the
	// benchmarks measure /auth, not its debug log line.
	infoLogs bool
	// extra, when set, adds OIDC providers after "demo" and "demo-ui":
	// it mounts their IdPs on mux and opens their connectors with client.
	extra func(h *harness, mux *http.ServeMux, client *http.Client) []broker.Connector
}

// racingAccounts runs a hook between the syncer's Login and the session
// save, to reproduce a change that commits in that window.
type racingAccounts struct {
	*sync.Syncer
	after func()
}

func (r racingAccounts) Login(ctx context.Context, ident groupgate.Identity) (groupgate.User, groupgate.Memberships, error) {
	u, m, err := r.Syncer.Login(ctx, ident)
	if err == nil {
		r.after()
	}
	return u, m, err
}

// harness is groupgate's browser surface on one httptest server, with two
// demo OIDC providers under the same origin: "demo" puts groups in the ID
// token, "demo-ui" only in UserInfo. The store is SQLite in t.TempDir(),
// seeded with organization acme and mapping eng → MEMBER.
type harness struct {
	t        testing.TB
	srv      *httptest.Server
	web      *web.Server
	syncer   *sync.Syncer
	backend  session.Backend
	clock    *clock
	logs     *lockedBuffer
	acme     groupgate.Organization
	upstream *httptest.Server
	// tokens signs X-Auth-Request-Jwt when harnessConfig.tokens is set.
	tokens *idtoken.Issuer
	// swap makes the "demo" connector authenticate at the token endpoint
	// as other-app: a relay that hands it another client's tokens.
	swap atomic.Bool
	// idpDown makes every call of the connectors to the IdPs fail as if
	// the network were down.
	idpDown atomic.Bool
}

func newHarness(t testing.TB, cfg harnessConfig) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{t: t, clock: &clock{t: time.Now()}, logs: &lockedBuffer{}}
	mux := http.NewServeMux()
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	base := h.srv.URL
	discard := slog.New(slog.DiscardHandler)

	idp, err := devidp.NewOIDC(base+"/idp", devidp.OIDCConfig{Logger: discard, Clients: []devidp.OIDCClient{
		{ID: clientID, Secret: clientSecret, RedirectURIs: []string{base + "/callback/demo"}, PostLogoutRedirectURIs: []string{base + "/logged-out"}},
		{ID: otherID, Secret: otherSecret, RedirectURIs: []string{base + "/callback/demo"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	idpUI, err := devidp.NewOIDC(base+"/idp-ui", devidp.OIDCConfig{Logger: discard, GroupsOnlyInUserInfo: true, Clients: []devidp.OIDCClient{
		{ID: clientID, Secret: clientSecret, RedirectURIs: []string{base + "/callback/demo-ui"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/idp/", idp)
	mux.Handle("/idp-ui/", idpUI)

	httpClient := &http.Client{Transport: swapTransport{base: h.srv.Client().Transport, swap: &h.swap, down: &h.idpDown}, Timeout: 10 * time.Second}
	open := func(name, issuer, groupsFrom string) broker.Connector {
		c, err := oidc.Config{
			Issuer: issuer, ClientID: clientID, ClientSecret: clientSecret,
			Scopes:      []string{"openid", "email", "profile", "groups"},
			RedirectURL: base + "/callback/" + name,
			GroupsFrom:  groupsFrom,
		}.Open(ctx, name, discard, oidc.WithHTTPClient(httpClient))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	connectors := []broker.Connector{open("demo", base+"/idp", ""), open("demo-ui", base+"/idp-ui", oidc.GroupsFromUserInfo)}
	providers := []string{"demo", "demo-ui"}
	if cfg.extra != nil {
		for _, c := range cfg.extra(h, mux, httpClient) {
			connectors = append(connectors, c)
			providers = append(providers, c.Name())
		}
	}

	st, err := sqlite.Open(ctx, "file:"+filepath.Join(t.TempDir(), "gg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	h.backend = cfg.backend.open(t, h.clock.Now)
	h.syncer = sync.New(st, h.backend, sync.WithPushRetry(1, time.Millisecond))
	if h.acme, err = st.CreateOrganization(ctx, groupgate.Organization{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.syncer.AddOrgMapping(ctx, "test", h.acme.ID, "eng", groupgate.OrgRoleUnspecified); err != nil {
		t.Fatal(err)
	}

	// The broker shares the server's clock, as cmd/groupgate wires it:
	// the binding cookie's Max-Age is the attempt expiry by that clock.
	login, err := broker.NewLogin(h.backend, connectors, broker.WithLogger(discard), broker.WithNow(h.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewStore(h.backend, sessionSecret, session.WithTTL(sessionTTL), session.WithNow(h.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := url.Parse(base)
	policy, err := web.NewRedirectPolicy(pub, []string{"bsr.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	// The test client connects from 127.0.0.1: trusting it lets tests play
	// the front proxy's forwarding headers.
	trusted, err := web.ParseTrustedProxies([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	wcfg := web.Config{
		PublicURL: pub, Providers: providers, SessionTTL: sessionTTL, TrustedProxies: trusted,
	}
	// Tests sign in many times from 127.0.0.1 while the clock stands still.
	wcfg.LoginLimits.PerClientBurst = 1_000_000
	if cfg.upstream != nil {
		h.upstream = httptest.NewServer(cfg.upstream)
		t.Cleanup(h.upstream.Close)
		wcfg.Upstream, _ = url.Parse(h.upstream.URL)
	}
	wcfg.Routes = cfg.routes
	level := slog.LevelDebug
	if cfg.infoLogs {
		level = slog.LevelInfo
	}
	opts := []web.Option{web.WithNow(h.clock.Now), web.WithRegistry(prometheus.NewRegistry()),
		web.WithLogger(slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: level})))}
	if cfg.tokens {
		if h.tokens, err = idtoken.New(st, sessionSecret, idtoken.Config{Issuer: base, Audience: []string{base}}, idtoken.WithNow(h.clock.Now)); err != nil {
			t.Fatal(err)
		}
		if err := h.tokens.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, web.WithIdentityTokens(h.tokens))
	}
	var accounts web.AccountSyncer = h.syncer
	if cfg.afterAccountLogin != nil {
		accounts = racingAccounts{Syncer: h.syncer, after: func() { cfg.afterAccountLogin(h) }}
	}
	deps := web.Deps{Login: login, Sessions: sessions, Accounts: accounts, Redirects: policy,
		Health: web.NewHealth([]web.Check{{Name: "sessions", Func: h.backend.Ping}})}
	if cfg.tracer != nil {
		deps = web.TraceDeps(deps, cfg.tracer)
		opts = append(opts, web.WithTracerProvider(cfg.tracer))
	}
	h.web, err = web.NewServer(wcfg, deps, opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", h.web.Handler())
	return h
}

// swapTransport rewrites token requests to authenticate as other-app when
// swap is set, and fails every request when down is set.
type swapTransport struct {
	base http.RoundTripper
	swap *atomic.Bool
	down *atomic.Bool
}

func (s swapTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if s.down.Load() {
		return nil, errors.New("connection refused (test)")
	}
	if s.swap.Load() && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") {
		r = r.Clone(r.Context())
		r.SetBasicAuth(url.QueryEscape(otherID), url.QueryEscape(otherSecret))
	}
	return s.base.RoundTrip(r)
}

// browser returns a client with its own cookie jar that does not follow
// redirects, so tests see every Location.
func (h *harness) browser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &http.Client{
		Jar:       jar,
		Transport: h.srv.Client().Transport,
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenID   = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]+)"`)
)

// signIn drives a browser from startURL (usually /login?…) through the IdP
// as user, until groupgate's callback answers, and returns that answer.
// edit, when set, may change any URL before the browser visits it. Every
// Location along the way is passed to check, when set. A response that is
// neither a redirect nor the IdP's form is returned as it is.
func (h *harness) signIn(c *http.Client, startURL, user string, edit func(*url.URL), check func(string)) *http.Response {
	h.t.Helper()
	next, err := url.Parse(startURL)
	if err != nil {
		h.t.Fatal(err)
	}
	var resp *http.Response
	for range 12 {
		if edit != nil {
			edit(next)
		}
		resp = h.get(c, next.String(), nil)
		if strings.HasPrefix(resp.Request.URL.Path, "/callback/") {
			return resp
		}
		body := readBody(h.t, resp)
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc := resp.Header.Get("Location")
			if check != nil {
				check(loc)
			}
			if next, err = resp.Request.URL.Parse(loc); err != nil {
				h.t.Fatalf("Location %q: %v", loc, err)
			}
		case resp.StatusCode == http.StatusOK && formAction.MatchString(body):
			action := html.UnescapeString(formAction.FindStringSubmatch(body)[1])
			id := html.UnescapeString(hiddenID.FindStringSubmatch(body)[1])
			resp, err = c.PostForm(action, url.Values{"id": {id}, "username": {user}, "password": {user + "-password"}})
			if err != nil {
				h.t.Fatal(err)
			}
			readBody(h.t, resp)
			if resp.StatusCode != http.StatusFound {
				h.t.Fatalf("IdP sign-in as %s: %s", user, resp.Status)
			}
			if next, err = resp.Request.URL.Parse(resp.Header.Get("Location")); err != nil {
				h.t.Fatal(err)
			}
		default:
			resp.Body = io.NopCloser(strings.NewReader(body))
			return resp
		}
	}
	h.t.Fatalf("sign-in from %s did not reach the callback", startURL)
	return nil
}

// login signs user in at provider and checks that the callback sent the
// browser on to rd (want).
func (h *harness) login(c *http.Client, provider, user, rd, want string) {
	h.t.Helper()
	resp := h.signIn(c, h.srv.URL+"/login?"+url.Values{"provider": {provider}, "rd": {rd}}.Encode(), user, nil, nil)
	body := readBody(h.t, resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		h.t.Fatalf("callback for %s: %s Location %q, want 303 to %q\n%s", user, resp.Status, resp.Header.Get("Location"), want, body)
	}
}

func (h *harness) get(c *http.Client, target string, header http.Header) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// auth asks /auth with c's cookies and returns the response, body read.
func (h *harness) auth(c *http.Client) *http.Response {
	h.t.Helper()
	resp := h.get(c, h.srv.URL+"/auth", nil)
	readBody(h.t, resp)
	return resp
}

// sessionCookie returns the browser's session cookie.
func (h *harness) sessionCookie(c *http.Client) *http.Cookie {
	h.t.Helper()
	u, _ := url.Parse(h.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "_groupgate" {
			return ck
		}
	}
	h.t.Fatal("no session cookie in the jar")
	return nil
}

// withCookie is a fresh browser that holds only the given session cookie.
func (h *harness) withCookie(value string) *http.Client {
	c := h.browser()
	u, _ := url.Parse(h.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "_groupgate", Value: value, Path: "/"}})
	return c
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
