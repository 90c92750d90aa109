package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/oidc"
	"github.com/groupgate/groupgate/devidp"
	"github.com/groupgate/groupgate/scim"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
	"github.com/groupgate/groupgate/web"
)

const (
	clientID     = "groupgate"
	clientSecret = "groupgate-test-secret"
	provider     = "okta"
	secret       = "0123456789abcdef0123456789abcdef"
)

// replica is one groupgate server: its own store handle, session backend
// (Redis, optionally behind the local cache), syncer, API, SCIM and web
// surface, on its own loopback listener.
type replica struct {
	url     string
	http    *httptest.Server
	st      store.Store
	backend session.Backend
	cache   *session.Cache
	syncer  *sync.Syncer
	// idp is the demo OIDC IdP all replicas share; it sends back-channel
	// logouts to replica 0.
	idp *devidp.OIDCProvider
}

// replicaConfig is what the replicas of one test share.
type replicaConfig struct {
	openStore func(t *testing.T) store.Store
	client    redis.UniversalClient
	prefix    string
	cache     bool
	// wrapWriter, when set, wraps the snapshot writer of replica i's
	// syncer: tests use it to hold a write at a chosen moment.
	wrapWriter func(i int, w sync.SnapshotWriter) sync.SnapshotWriter
}

// startReplicas starts n replicas and the demo OIDC IdP with every
// replica's callback registered, mirroring cmd/groupgate's buildApp.
func startReplicas(t *testing.T, n int, cfg replicaConfig) []*replica {
	t.Helper()
	servers := make([]*httptest.Server, n)
	var redirects, logouts []string
	for i := range servers {
		servers[i] = httptest.NewUnstartedServer(nil)
		u := "http://" + servers[i].Listener.Addr().String()
		redirects = append(redirects, u+"/callback/"+provider)
		logouts = append(logouts, u+"/logged-out")
	}
	idp := startIdP(t, redirects, logouts, "http://"+servers[0].Listener.Addr().String()+web.BackchannelLogoutPath(provider))
	out := make([]*replica, n)
	for i, hs := range servers {
		out[i] = buildReplica(t, i, hs, idp.Issuer(), cfg)
		out[i].idp = idp
	}
	return out
}

func startIdP(t *testing.T, redirects, logouts []string, backchannel string) *devidp.OIDCProvider {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	issuer := srv.URL + "/idp"
	idp, err := devidp.NewOIDC(issuer, devidp.OIDCConfig{
		Logger: slog.New(slog.DiscardHandler),
		Clients: []devidp.OIDCClient{{
			ID: clientID, Secret: clientSecret,
			RedirectURIs: redirects, PostLogoutRedirectURIs: logouts,
			BackchannelLogoutURI: backchannel,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/idp/", idp)
	return idp
}

func buildReplica(t *testing.T, i int, hs *httptest.Server, issuer string, cfg replicaConfig) *replica {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	pubStr := "http://" + hs.Listener.Addr().String()
	pub, _ := url.Parse(pubStr)
	st := cfg.openStore(t)

	r, err := session.NewRedis(cfg.client, cfg.prefix)
	if err != nil {
		t.Fatal(err)
	}
	var backend session.Backend = r
	var cache *session.Cache
	if cfg.cache {
		cache = session.NewCache(r)
		t.Cleanup(func() { _ = cache.Close() })
		backend = cache
	}
	var writer sync.SnapshotWriter = backend
	if cfg.wrapWriter != nil {
		writer = cfg.wrapWriter(i, backend)
	}
	syncer := sync.New(st, writer, sync.WithLogger(logger))
	conn, err := oidc.Config{
		Issuer: issuer, ClientID: clientID, ClientSecret: clientSecret,
		Scopes:      []string{"openid", "email", "profile", "groups"},
		RedirectURL: pubStr + "/callback/" + provider,
	}.Open(ctx, provider, logger)
	if err != nil {
		t.Fatalf("open OIDC provider: %v", err)
	}
	login, err := broker.NewLogin(backend, []broker.Connector{conn})
	if err != nil {
		t.Fatal(err)
	}
	cookies, err := session.NewStore(backend, []byte(secret), session.WithTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := web.NewRedirectPolicy(pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	health := web.NewHealth([]web.Check{{Name: "store", Func: st.Ping}, {Name: "redis", Func: backend.Ping}})
	connectAPI := api.New(st, syncer, api.WithAdmins([]string{"root@example.com"}),
		api.WithSessions(backend), api.WithCookieAuth(api.SessionCookieAuth(cookies)))
	sc := scim.NewServer(st.(scim.Store), syncer, scim.WithBaseURL(pubStr+"/scim/v2"))
	backchannel, err := web.NewBackchannelLogout(web.BackchannelConfig{Providers: []string{provider}}, login, st, backend)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.NewServer(web.Config{PublicURL: pub, Providers: []string{provider}, SessionTTL: time.Hour},
		web.Deps{Login: login, Sessions: cookies, Accounts: syncer, Redirects: policy, Health: health, SessionBackend: backend, Users: st},
		web.WithMount(connectAPI), web.WithMount(web.MountFunc(func(mux *http.ServeMux) { mux.Handle("/scim/v2/", sc) })),
		web.WithMount(backchannel))
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(hs.Close)
	if cache != nil {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := cache.WaitReady(wctx); err != nil {
			t.Fatal(err)
		}
	}
	return &replica{url: pubStr, http: hs, st: st, backend: backend, cache: cache, syncer: syncer}
}

// newBrowser is a client with its own cookie jar that follows redirects.
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

// signIn logs user in through replica r's /login with the demo IdP's form.
func signIn(t *testing.T, c *http.Client, r *replica, user string) {
	t.Helper()
	resp, err := c.Get(r.url + "/login?rd=" + url.QueryEscape(r.url+"/whoami"))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	m := formActionRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("login ended at %s with %s, not the IdP's form", resp.Request.URL, resp.Status)
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
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"user"`) {
		t.Fatalf("sign-in of %s ended with %s: %s", user, resp.Status, body)
	}
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

// auth is one forward-auth answer.
type auth struct {
	status   int
	orgRoles string
	repo     string
}

func getAuth(c *http.Client, r *replica) (auth, error) {
	resp, err := c.Get(r.url + "/auth")
	if err != nil {
		return auth{}, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return auth{status: resp.StatusCode, orgRoles: resp.Header.Get(web.HeaderOrgRoles), repo: resp.Header.Get("X-Auth-Request-Repo-Roles")}, nil
}

// eventually polls /auth on r until ok accepts the answer, failing after
// within; it returns how long it took.
func eventually(t *testing.T, c *http.Client, r *replica, within time.Duration, what string, ok func(auth) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last auth
	for {
		a, err := getAuth(c, r)
		if err != nil {
			t.Fatal(err)
		}
		if ok(a) {
			return time.Since(start)
		}
		last = a
		if time.Since(start) > within {
			t.Fatalf("%s: not seen within %v; last /auth: %d org=%q repo=%q", what, within, last.status, last.orgRoles, last.repo)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// apiToken creates an API token for userID and returns its secret.
func apiToken(t *testing.T, st store.Store, userID string) string {
	t.Helper()
	return createToken(t, st, groupgate.TokenAPI, userID)
}

func createToken(t *testing.T, st store.Store, kind groupgate.TokenKind, userID string) string {
	t.Helper()
	tok := "gg_" + store.NewID()
	sum := sha256.Sum256([]byte(tok))
	if _, err := st.CreateToken(context.Background(), groupgate.Token{Kind: kind, Name: "e2e", UserID: userID, Hash: sum[:]}); err != nil {
		t.Fatal(err)
	}
	return tok
}

// call posts a Connect JSON request to r and fails on a non-200 answer.
func call(t *testing.T, r *replica, token, procedure, body string) string {
	t.Helper()
	out, err := tryCall(r, token, procedure, body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryCall is call for goroutines other than the test's.
func tryCall(r *replica, token, procedure, body string) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, r.url+"/buf.alpha.registry.v1alpha1."+procedure, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s %s", procedure, body, resp.Status, b)
	}
	return string(b), nil
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
