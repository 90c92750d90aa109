package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/devidp"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/web"
)

// backchannelReplicas are two replicas on one Redis (with their local
// caches) and PostgreSQL, alice signed in twice (browser a at replica 0,
// browser b at replica 1) and bob once.
type backchannelFixture struct {
	rs        []*replica
	a, b, bob *http.Client
}

func newBackchannelFixture(t *testing.T) *backchannelFixture {
	t.Helper()
	client, prefix := testenv.Redis(t)
	f := &backchannelFixture{rs: startReplicas(t, 2, replicaConfig{openStore: sharedPostgres(t), client: client, prefix: prefix, cache: true})}
	f.a, f.b, f.bob = newBrowser(t), newBrowser(t), newBrowser(t)
	signIn(t, f.a, f.rs[0], "alice")
	signIn(t, f.b, f.rs[1], "alice")
	signIn(t, f.bob, f.rs[0], "bob")
	// Every replica has each session in its cache before the logout.
	for _, c := range []*http.Client{f.a, f.b, f.bob} {
		for _, r := range f.rs {
			if a, err := getAuth(c, r); err != nil || a.status != http.StatusOK {
				t.Fatalf("/auth before the logout: %v %v", a, err)
			}
		}
	}
	return f
}

// post sends a logout token to replica r and returns the status and body.
func postLogout(t *testing.T, r *replica, token string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.PostForm(r.url+web.BackchannelLogoutPath(provider), url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, readAll(t, resp)
}

func sign(t *testing.T, idp *devidp.OIDCProvider, claims map[string]any) string {
	t.Helper()
	tok, err := idp.SignLogoutToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signedOut waits until c is signed out at every replica.
func signedOut(t *testing.T, c *http.Client, rs []*replica, what string) {
	t.Helper()
	for _, r := range rs {
		eventually(t, c, r, time.Second, what, func(a auth) bool { return a.status == http.StatusUnauthorized })
	}
}

// signedIn checks c is still signed in at every replica.
func signedIn(t *testing.T, c *http.Client, rs []*replica, what string) {
	t.Helper()
	for _, r := range rs {
		if a, err := getAuth(c, r); err != nil || a.status != http.StatusOK {
			t.Fatalf("%s: /auth at %s = %v %v, want 200", what, r.url, a, err)
		}
	}
}

func TestBackchannelLogoutFromTheIdPEndsTheSessionsOnEveryReplicaWithinASecond(t *testing.T) {
	f := newBackchannelFixture(t)
	idp := f.rs[0].idp
	n, err := idp.LogoutUser(context.Background(), http.DefaultClient, "u-alice")
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("the IdP sent %d logout tokens, want one per login of alice (2)", n)
	}
	signedOut(t, f.a, f.rs, "alice's first session ended")
	signedOut(t, f.b, f.rs, "alice's second session ended")
	signedIn(t, f.bob, f.rs, "bob's session stays")
}

func TestBackchannelLogoutOfOneIdPSessionEndsOnlyThatSession(t *testing.T) {
	f := newBackchannelFixture(t)
	idp := f.rs[0].idp
	sids := idp.SessionIDs("u-alice", clientID)
	if len(sids) != 2 {
		t.Fatalf("sids %q, want one per login", sids)
	}
	// Only the sid, no sub: groupgate finds the subject from its login.
	status, h, body := postLogout(t, f.rs[1], sign(t, idp, idp.LogoutClaims(clientID, "", sids[0])))
	if status != http.StatusOK || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("logout: %d Cache-Control %q %s", status, h.Get("Cache-Control"), body)
	}
	signedOut(t, f.a, f.rs, "the session of the logged-out sid ended")
	signedIn(t, f.b, f.rs, "alice's other IdP session stays")

	// sub and sid together end that one session too.
	status, _, body = postLogout(t, f.rs[0], sign(t, idp, idp.LogoutClaims(clientID, "u-alice", sids[1])))
	if status != http.StatusOK {
		t.Fatalf("logout: %d %s", status, body)
	}
	signedOut(t, f.b, f.rs, "the session of the second sid ended")
	signedIn(t, f.bob, f.rs, "bob's session stays")
}

func TestBackchannelLogoutRefusesForgedTokensAndEndsNothing(t *testing.T) {
	f := newBackchannelFixture(t)
	idp := f.rs[0].idp
	other, err := devidp.NewOIDC(idp.Issuer(), devidp.OIDCConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	valid := func() map[string]any { return idp.LogoutClaims(clientID, "u-alice", "") }
	with := func(change func(c map[string]any)) string {
		c := valid()
		change(c)
		return sign(t, idp, c)
	}
	now := time.Now()
	tampered := func() string {
		tok := sign(t, idp, idp.LogoutClaims(clientID, "u-carol", ""))
		parts := strings.Split(tok, ".")
		payload, _ := json.Marshal(valid())
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	}
	unsigned := func() string {
		payload, _ := json.Marshal(valid())
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"logout+jwt"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	}
	tests := []struct {
		name  string
		token string
	}{
		{"signed by another key", sign(t, other, valid())},
		{"a payload that is not what was signed", tampered()},
		{"unsigned (alg none)", unsigned()},
		{"for another client", with(func(c map[string]any) { c["aud"] = "other-app" })},
		{"for several clients, none of them us", with(func(c map[string]any) { c["aud"] = []string{"a", "b"} })},
		{"authorized for another party", with(func(c map[string]any) { c["azp"] = "other-app" })},
		{"from another issuer", with(func(c map[string]any) { c["iss"] = "https://evil.example.com" })},
		{"with a nonce, as an ID token has", with(func(c map[string]any) { c["nonce"] = "n-1" })},
		{"without events", with(func(c map[string]any) { delete(c, "events") })},
		{"with events but not the logout event", with(func(c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
		})},
		{"with the logout event not an object", with(func(c map[string]any) {
			c["events"] = map[string]any{devidp.BackchannelLogoutEvent: "yes"}
		})},
		{"expired", with(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-4*time.Minute).Unix(), now.Add(-2*time.Minute).Unix()
		})},
		{"issued too long ago", with(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-30*time.Minute).Unix(), now.Add(time.Hour).Unix()
		})},
		{"issued in the future", with(func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() })},
		{"without iat", with(func(c map[string]any) { delete(c, "iat") })},
		{"naming neither sub nor sid", with(func(c map[string]any) { delete(c, "sub") })},
		{"without jti", with(func(c map[string]any) { delete(c, "jti") })},
		{"not a JWT", "not-a-token"},
	}
	for _, tt := range tests {
		t.Run("a token "+tt.name+" answers 400", func(t *testing.T) {
			status, h, body := postLogout(t, f.rs[0], tt.token)
			var e struct {
				Error string `json:"error"`
			}
			if status != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
				t.Errorf("answer %d %s, want 400 with a JSON error", status, body)
			}
			if h.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
			}
		})
	}

	t.Run("a replayed token answers 400 on another replica", func(t *testing.T) {
		// carol has no session: the first delivery ends nothing but
		// spends the jti.
		tok := sign(t, idp, idp.LogoutClaims(clientID, "u-carol", ""))
		if status, _, body := postLogout(t, f.rs[0], tok); status != http.StatusOK {
			t.Fatalf("first delivery: %d %s", status, body)
		}
		if status, _, body := postLogout(t, f.rs[1], tok); status != http.StatusBadRequest || !strings.Contains(body, "already used") {
			t.Fatalf("replay: %d %s, want 400", status, body)
		}
	})

	t.Run("requests that are not logouts", func(t *testing.T) {
		for _, tt := range []struct {
			method, path, body string
			want               int
		}{
			{http.MethodGet, web.BackchannelLogoutPath(provider), "", http.StatusMethodNotAllowed},
			{http.MethodPost, web.BackchannelLogoutPath("nobody"), "logout_token=x", http.StatusNotFound},
			{http.MethodPost, web.BackchannelLogoutPath(provider) + "/deeper", "logout_token=x", http.StatusNotFound},
			{http.MethodPost, web.BackchannelLogoutPath(provider), "", http.StatusBadRequest},
		} {
			req, _ := http.NewRequest(tt.method, f.rs[0].url+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
		}
	})

	signedIn(t, f.a, f.rs, "alice's first session survives every forged logout")
	signedIn(t, f.b, f.rs, "alice's second session survives every forged logout")
}
