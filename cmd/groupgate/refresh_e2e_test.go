package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/devidp"
	"github.com/groupgate/groupgate/internal/testenv"
)

// refreshServe runs serve with the demo IdP as an OIDC provider whose
// sessions are refreshed every few seconds, on Redis when onRedis is set
// (else in process), and returns its base URL, the IdP (to change what it
// says) and the Redis key prefix.
func refreshServe(t *testing.T, onRedis bool) (string, *devidp.OIDCProvider, string) {
	t.Helper()
	public := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
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
	redisSection, prefix := "", ""
	if onRedis {
		_, prefix = testenv.Redis(t)
		redisSection = fmt.Sprintf("redis:\n  addrs: [%s]\n  key_prefix: %q\n", testenv.RedisAddr(t), prefix)
	}
	config := fmt.Sprintf(`listen: %s
public_url: %s
session:
  secret: 0123456789abcdef0123456789abcdef
  secure_cookie: false
%sproviders:
  - name: %s
    type: oidc
    issuer: %s
    client_id: %s
    client_secret: %s
    scopes: [openid, email, profile, groups]
    refresh:
      enabled: true
      max_group_age: 2s
      grace: 1s
store:
  driver: sqlite
  dsn: file:%s
`, strings.TrimPrefix(public, "http://"), public, redisSection, testProvider, issuer,
		testClientID, testClientSecret, filepath.Join(t.TempDir(), "gg.db"))
	base, _, _, _ := startServe(t, config)
	return base, idp, prefix
}

// pollFor polls cond every 50 ms for up to d.
func pollFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

func TestServeRefreshesSessionGroupsFromTheIdP(t *testing.T) {
	t.Run("on Redis", func(t *testing.T) { testServeRefresh(t, true) })
	t.Run("in process", func(t *testing.T) { testServeRefresh(t, false) })
}

func testServeRefresh(t *testing.T, onRedis bool) {
	base, idp, prefix := refreshServe(t, onRedis)
	rdb, _ := testenv.Redis(t)
	refreshKeys := func() []string {
		keys, err := rdb.Keys(context.Background(), prefix+"refresh:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	alice, bob := newBrowser(t), newBrowser(t)
	for who, b := range map[string]*http.Client{"alice": alice, "bob": bob} {
		if resp, _ := signIn(t, b, base+"/login?rd="+url.QueryEscape(base+"/whoami"), who); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s's sign-in ended with %s", who, resp.Status)
		}
	}

	t.Run("a group change at the IdP reaches /auth without a new login", func(t *testing.T) {
		idp.SetGroups("u-alice", []string{"eng", "sre"})
		var last string
		if !pollFor(10*time.Second, func() bool {
			_, h := authHeaders(t, alice, base)
			last = h.Get("X-Auth-Request-Groups")
			return last == "eng,sre"
		}) {
			t.Fatalf("X-Auth-Request-Groups = %q, want eng,sre", last)
		}
	})
	t.Run("a revoked refresh token ends the session", func(t *testing.T) {
		idp.RevokeRefreshTokens("u-bob")
		if !pollFor(10*time.Second, func() bool {
			code, _ := authHeaders(t, bob, base)
			return code == http.StatusUnauthorized
		}) {
			t.Fatal("bob's session outlived his revoked refresh token")
		}
	})
	if !onRedis {
		return
	}
	t.Run("logout leaves no refresh key behind", func(t *testing.T) {
		if len(refreshKeys()) == 0 {
			t.Fatal("alice's session has no refresh state")
		}
		u, _ := url.Parse(base)
		if _, err := signOutOf(base, alice.Jar.Cookies(u)); err != nil {
			t.Fatal(err)
		}
		// The state goes at once; a refresh that was running when the
		// session ended (every 1.5 s here) may still hold its lease, which
		// it releases when it finds the state gone (its writes only
		// replace a state that still exists).
		var keys []string
		for _, k := range refreshKeys() {
			if !strings.Contains(k, "refresh:lock:") {
				keys = append(keys, k)
			}
		}
		if len(keys) != 0 {
			t.Fatalf("refresh state left after logout: %v", keys)
		}
		if !pollFor(5*time.Second, func() bool { return len(refreshKeys()) == 0 }) {
			t.Fatalf("refresh keys left after logout: %v", refreshKeys())
		}
	})
}

func TestConfigCheckRefusesABadRefreshSection(t *testing.T) {
	config := serveConfig(t, t.TempDir(), "")
	config = strings.Replace(config, "    scopes: [openid, email, profile, groups]\n",
		"    scopes: [openid, email, profile, groups]\n    refresh:\n      enabled: true\n      max_group_age: 0s\n      grace: -1s\n", 1)
	code, _, errOut := runCLI(t, nil, "config", "check", "--config", writeFile(t, "c.yaml", config))
	if code != 1 || !strings.Contains(errOut, "refresh.max_group_age: must be at least 1s") ||
		!strings.Contains(errOut, "refresh.grace: must not be negative") {
		t.Fatalf("config check: exit %d\n%s", code, errOut)
	}
}
