package oidc_test

import (
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/oidc"
	"github.com/groupgate/groupgate/claims"
	"github.com/groupgate/groupgate/devidp"
)

// Demo clients registered at every test IdP.
const (
	clientA     = "groupgate-a"
	clientB     = "groupgate-b"
	clientPost  = "groupgate-post"
	clientStale = "groupgate-stale" // issues ID tokens that are already expired
	secret      = "s3cret-for-tests"
)

// env is one test IdP and a tiny relying-party side on the same server: the
// IdP under /idp, the callback at /callback (it records the request the
// browser brought back), and a signed-out page.
type env struct {
	srv       *httptest.Server
	issuer    string
	callback  string
	signedOut string
	idp       *devidp.OIDCProvider

	mu   sync.Mutex
	last *http.Request
}

func newEnv(t *testing.T, cfg devidp.OIDCConfig) *env {
	t.Helper()
	e := &env{}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL + "/idp"
	e.callback = e.srv.URL + "/callback"
	e.signedOut = e.srv.URL + "/signed-out"
	for _, c := range []struct {
		id     string
		method zoidc.AuthMethod
		life   time.Duration
	}{
		{clientA, zoidc.AuthMethodBasic, 0},
		{clientB, zoidc.AuthMethodBasic, 0},
		{clientPost, zoidc.AuthMethodPost, 0},
		{clientStale, zoidc.AuthMethodBasic, -time.Minute},
	} {
		cfg.Clients = append(cfg.Clients, devidp.OIDCClient{
			ID: c.id, Secret: secret, AuthMethod: c.method, IDTokenLifetime: c.life,
			RedirectURIs:           []string{e.callback},
			PostLogoutRedirectURIs: []string{e.signedOut},
		})
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	idp, err := devidp.NewOIDC(e.issuer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.idp = idp
	mux.Handle("/idp/", idp)
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.last = r.Clone(context.Background())
		e.mu.Unlock()
		io.WriteString(w, "callback received")
	})
	mux.HandleFunc("/signed-out", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "signed out")
	})
	return e
}

// open returns a connector for clientID at e's IdP.
func (e *env) open(t *testing.T, clientID string, mod func(*oidc.Config)) broker.CallbackConnector {
	t.Helper()
	cfg := oidc.Config{
		Issuer:       e.issuer,
		ClientID:     clientID,
		ClientSecret: secret,
		Scopes:       []string{"openid", "email", "profile", "groups"},
		RedirectURL:  e.callback,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := cfg.Open(context.Background(), "demo", slog.New(slog.DiscardHandler), oidc.WithHTTPClient(e.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// browser is an HTTP client with a cookie jar that follows redirects, as a
// browser would.
func (e *env) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := *e.srv.Client() // a copy: srv.Client() is shared with the connector
	c.Jar = jar
	return &c
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	hiddenID   = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]+)">`)
)

// signIn follows loginURL to the IdP's form, submits username and password,
// follows the redirects back to the callback and returns the callback
// request as the relying party received it.
func (e *env) signIn(t *testing.T, loginURL, username, password string) *http.Request {
	t.Helper()
	b := e.browser(t)
	resp, err := b.Get(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action, id := formAction.FindSubmatch(page), hiddenID.FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || action == nil || id == nil {
		t.Fatalf("GET %s: %s, no login form:\n%s", loginURL, resp.Status, page)
	}
	e.mu.Lock()
	e.last = nil
	e.mu.Unlock()
	resp, err = b.PostForm(html.UnescapeString(string(action[1])), url.Values{
		"id": {html.UnescapeString(string(id[1]))}, "username": {username}, "password": {password},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e.mu.Lock()
	defer e.mu.Unlock()
	if resp.StatusCode != http.StatusOK || e.last == nil {
		t.Fatalf("sign-in as %s did not reach the callback: %s %s\n%s", username, resp.Request.URL, resp.Status, body)
	}
	return e.last
}

func newAttempt(t *testing.T) broker.Attempt {
	t.Helper()
	return broker.NewAttempt("demo", "", time.Now(), broker.DefaultAttemptTTL)
}

// login runs the whole code flow for username through c.
func (e *env) login(t *testing.T, c broker.CallbackConnector, username string) (groupgate.Identity, broker.Tokens, error) {
	t.Helper()
	a := newAttempt(t)
	u, err := c.LoginURL(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	r := e.signIn(t, u, username, username+"-password")
	return c.HandleCallback(context.Background(), r, a)
}

func TestLoginIdentities(t *testing.T) {
	inIDToken := newEnv(t, devidp.OIDCConfig{})
	inUserInfo := newEnv(t, devidp.OIDCConfig{GroupsOnlyInUserInfo: true})
	engOnly, err := claims.NewFilter([]string{"^eng$"}, nil)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		env         *env
		mod         func(*oidc.Config)
		user        string
		wantGroups  []string
		wantPresent bool
		wantEmail   string
		wantName    string
	}{
		{name: "alice gets her groups from the ID token", env: inIDToken, user: "alice",
			wantGroups: []string{"eng", "platform-admins"}, wantPresent: true, wantEmail: "alice@example.com", wantName: "Alice Example"},
		{name: "alice gets her groups from UserInfo when the provider puts them only there", env: inUserInfo, user: "alice",
			mod:        func(c *oidc.Config) { c.GroupsFrom = oidc.GroupsFromUserInfo },
			wantGroups: []string{"eng", "platform-admins"}, wantPresent: true, wantEmail: "alice@example.com", wantName: "Alice Example"},
		{name: "reading the ID token of a provider that puts groups only in UserInfo finds no groups", env: inUserInfo, user: "alice",
			wantGroups: []string{}, wantPresent: false, wantEmail: "alice@example.com", wantName: "Alice Example"},
		{name: "bob is in eng only", env: inIDToken, user: "bob",
			wantGroups: []string{"eng"}, wantPresent: true, wantEmail: "bob@example.com", wantName: "Bob Example"},
		{name: "carol without groups still logs in, with an empty group set", env: inIDToken, user: "carol",
			wantGroups: []string{}, wantPresent: false, wantEmail: "carol@example.com", wantName: "Carol Example"},
		{name: "carol without groups in UserInfo still logs in", env: inUserInfo, user: "carol",
			mod:        func(c *oidc.Config) { c.GroupsFrom = oidc.GroupsFromUserInfo },
			wantGroups: []string{}, wantPresent: false, wantEmail: "carol@example.com", wantName: "Carol Example"},
		{name: "the group filter hides groups outside it", env: inIDToken, user: "alice",
			mod:        func(c *oidc.Config) { c.Filter = engOnly },
			wantGroups: []string{"eng"}, wantPresent: true, wantEmail: "alice@example.com", wantName: "Alice Example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.env.open(t, clientA, tc.mod)
			id, tokens, err := tc.env.login(t, c, tc.user)
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			if id.Provider != "demo" || id.Subject != "u-"+tc.user || id.Username != tc.user || id.Email != tc.wantEmail || id.DisplayName != tc.wantName {
				t.Errorf("identity = %+v", id)
			}
			if !slices.Equal(id.Groups, tc.wantGroups) || id.GroupsPresent != tc.wantPresent {
				t.Errorf("groups = %q (present %v), want %q (present %v)", id.Groups, id.GroupsPresent, tc.wantGroups, tc.wantPresent)
			}
			if tokens.IDToken == "" || tokens.AccessToken == "" || tokens.Expiry.IsZero() {
				t.Errorf("tokens = %+v, want ID token, access token and expiry", tokens)
			}
		})
	}
}

func TestLoginRefusals(t *testing.T) {
	e := newEnv(t, devidp.OIDCConfig{})
	ctx := context.Background()

	tests := []struct {
		name string
		// run starts flows as needed and finishes one, returning its error.
		run  func(t *testing.T) error
		code groupgate.ErrorCode
		// cause, when set, must be in the error chain.
		cause error
	}{
		{
			name: "a callback whose state is not the attempt's is refused",
			run: func(t *testing.T) error {
				c := e.open(t, clientA, nil)
				a := newAttempt(t)
				u, _ := c.LoginURL(ctx, a)
				r := e.signIn(t, u, "alice", "alice-password")
				_, _, err := c.HandleCallback(ctx, r, newAttempt(t))
				return err
			},
			code: groupgate.Invalid,
		},
		{
			name: "an ID token whose nonce is not the attempt's is refused",
			run: func(t *testing.T) error {
				c := e.open(t, clientA, nil)
				a := newAttempt(t)
				u, _ := c.LoginURL(ctx, a)
				r := e.signIn(t, u, "alice", "alice-password")
				a.Nonce = newAttempt(t).Nonce
				_, _, err := c.HandleCallback(ctx, r, a)
				return err
			},
			code:  groupgate.Unauthenticated,
			cause: zoidc.ErrNonceInvalid,
		},
		{
			name: "a code redeemed with another PKCE verifier is refused by the provider",
			run: func(t *testing.T) error {
				c := e.open(t, clientA, nil)
				a := newAttempt(t)
				u, _ := c.LoginURL(ctx, a)
				r := e.signIn(t, u, "alice", "alice-password")
				a.PKCEVerifier = newAttempt(t).PKCEVerifier
				_, _, err := c.HandleCallback(ctx, r, a)
				return err
			},
			code: groupgate.Unauthenticated,
		},
		{
			name: "a code issued to another client is refused",
			run: func(t *testing.T) error {
				a, b := e.open(t, clientA, nil), e.open(t, clientB, nil)
				att := newAttempt(t)
				u, _ := b.LoginURL(ctx, att)
				r := e.signIn(t, u, "alice", "alice-password")
				_, _, err := a.HandleCallback(ctx, r, att)
				return err
			},
			code: groupgate.Unauthenticated,
		},
		{
			name: "an expired ID token is refused",
			run: func(t *testing.T) error {
				_, _, err := e.login(t, e.open(t, clientStale, nil), "alice")
				return err
			},
			code:  groupgate.Unauthenticated,
			cause: zoidc.ErrExpired,
		},
		{
			name: "a code cannot be redeemed twice",
			run: func(t *testing.T) error {
				c := e.open(t, clientA, nil)
				a := newAttempt(t)
				u, _ := c.LoginURL(ctx, a)
				r := e.signIn(t, u, "alice", "alice-password")
				if _, _, err := c.HandleCallback(ctx, r, a); err != nil {
					t.Fatalf("first redemption: %v", err)
				}
				_, _, err := c.HandleCallback(ctx, r, a)
				return err
			},
			code: groupgate.Unauthenticated,
		},
		{
			name: "an error callback from the provider is refused with its code",
			run: func(t *testing.T) error {
				c := e.open(t, clientA, nil)
				a := newAttempt(t)
				r := httptest.NewRequest(http.MethodGet, "/callback?error=access_denied&state="+a.State(), nil)
				_, _, err := c.HandleCallback(ctx, r, a)
				if !strings.Contains(groupgate.ErrorMessageOf(err), "access_denied") {
					t.Errorf("message %q does not name the provider's error", groupgate.ErrorMessageOf(err))
				}
				return err
			},
			code: groupgate.Unauthenticated,
		},
		{
			name: "a client registered for client_secret_post is refused when discovery leads to client_secret_basic",
			run: func(t *testing.T) error {
				_, _, err := e.login(t, e.open(t, clientPost, nil), "alice")
				return err
			},
			code: groupgate.Unauthenticated,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(t)
			if got := groupgate.ErrorCodeOf(err); got != tc.code {
				t.Fatalf("error = %v (code %q), want code %q", err, got, tc.code)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Fatalf("error = %v, want it to wrap %v", err, tc.cause)
			}
		})
	}
}

func TestClientAuthentication(t *testing.T) {
	tests := []struct {
		name      string
		advertise []zoidc.AuthMethod
		client    string
	}{
		{name: "client_secret_basic is used when discovery offers it", advertise: nil, client: clientA},
		{name: "client_secret_basic is used when discovery says nothing (its default)", advertise: []zoidc.AuthMethod{}, client: clientA},
		{name: "client_secret_post is used when discovery offers only it", advertise: []zoidc.AuthMethod{zoidc.AuthMethodPost}, client: clientPost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, devidp.OIDCConfig{TokenAuthMethods: tc.advertise})
			id, _, err := e.login(t, e.open(t, tc.client, nil), "bob")
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			if id.Username != "bob" {
				t.Errorf("identity = %+v", id)
			}
		})
	}

	t.Run("a provider offering neither secret method cannot be opened", func(t *testing.T) {
		e := newEnv(t, devidp.OIDCConfig{TokenAuthMethods: []zoidc.AuthMethod{zoidc.AuthMethodPrivateKeyJWT}})
		cfg := oidc.Config{Issuer: e.issuer, ClientID: clientA, ClientSecret: secret, RedirectURL: e.callback}
		if _, err := cfg.Open(context.Background(), "demo", nil, oidc.WithHTTPClient(e.srv.Client())); err == nil {
			t.Fatal("Open accepted a provider without client_secret_basic or client_secret_post")
		}
	})
}

func TestLoginURL(t *testing.T) {
	e := newEnv(t, devidp.OIDCConfig{})
	c := e.open(t, clientA, nil)
	a := newAttempt(t)
	raw, err := c.LoginURL(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{
		"response_type":         "code",
		"client_id":             clientA,
		"redirect_uri":          e.callback,
		"state":                 a.State(),
		"nonce":                 a.Nonce,
		"code_challenge":        zoidc.NewSHACodeChallenge(a.PKCEVerifier),
		"code_challenge_method": "S256",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if !strings.HasPrefix(raw, e.issuer+"/") {
		t.Errorf("login URL %s is not at the issuer", raw)
	}
}

func TestLogoutURL(t *testing.T) {
	e := newEnv(t, devidp.OIDCConfig{})
	c := e.open(t, clientA, nil)
	_, tokens, err := e.login(t, c, "alice")
	if err != nil {
		t.Fatal(err)
	}
	lc, ok := c.(broker.LogoutConnector)
	if !ok {
		t.Fatal("the OIDC connector does not offer logout")
	}
	raw, ok, err := lc.LogoutURL(context.Background(), tokens.IDToken, e.signedOut)
	if err != nil || !ok {
		t.Fatalf("LogoutURL = %q, %v, %v", raw, ok, err)
	}
	u, _ := url.Parse(raw)
	if q := u.Query(); q.Get("id_token_hint") != tokens.IDToken || q.Get("post_logout_redirect_uri") != e.signedOut || q.Get("client_id") != clientA {
		t.Errorf("logout URL %s lacks id_token_hint, post_logout_redirect_uri or client_id", raw)
	}

	t.Run("the provider accepts it and sends the browser back", func(t *testing.T) {
		resp, err := e.browser(t).Get(raw)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Request.URL.String() != e.signedOut {
			t.Errorf("logout ended at %s, want %s", resp.Request.URL, e.signedOut)
		}
	})
}

func TestOpenRefusesBadConfig(t *testing.T) {
	e := newEnv(t, devidp.OIDCConfig{})
	tests := []struct {
		name string
		cfg  oidc.Config
	}{
		{name: "an unknown groups_from is refused", cfg: oidc.Config{Issuer: e.issuer, ClientID: clientA, RedirectURL: e.callback, GroupsFrom: "saml"}},
		{name: "a relative redirect URL is refused", cfg: oidc.Config{Issuer: e.issuer, ClientID: clientA, RedirectURL: "/callback"}},
		{name: "an issuer that differs from discovery's is refused", cfg: oidc.Config{Issuer: e.issuer + "/", ClientID: clientA, RedirectURL: e.callback}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.cfg.Open(context.Background(), "demo", nil, oidc.WithHTTPClient(e.srv.Client())); err == nil {
				t.Fatal("Open succeeded")
			}
		})
	}
}
