package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/idtoken"
	"github.com/groupgate/groupgate/store/sqlite"
)

// TestTheExampleVerifiesGroupgatesTokens runs the example's handler
// against a real idtoken issuer and its JWKS, across a key rotation.
func TestTheExampleVerifiesGroupgatesTokens(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, "file:"+filepath.Join(t.TempDir(), "gg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	iss, err := idtoken.New(st, []byte("0123456789abcdef0123456789abcdef"), idtoken.Config{Issuer: "https://gg.example.com", Audience: []string{"https://app.example.com"}}, idtoken.WithNow(clock))
	if err != nil {
		t.Fatal(err)
	}
	if err := iss.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(iss.JWKSHandler())
	t.Cleanup(jwks.Close)
	v := &Verifier{JWKSURL: jwks.URL, Issuer: "https://gg.example.com", Audience: "https://app.example.com", Now: clock}
	app := v.Handler()
	ask := func(tok string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("X-Auth-Request-Jwt", tok)
		w := httptest.NewRecorder()
		app.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	subj := idtoken.Subject{UserID: "u1", Username: "alice", Email: "alice@example.com",
		Memberships: groupgate.Memberships{Groups: []string{"eng"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin}}}
	tok, err := iss.Token(ctx, "", subj)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := ask(tok); code != http.StatusOK || !strings.Contains(body, `"preferred_username":"alice"`) || !strings.Contains(body, `"acme":"ADMIN"`) {
		t.Fatalf("a good token: %d %s", code, body)
	}
	for name, bad := range map[string]string{"no token": "", "a forged signature": tok[:len(tok)-4] + "AAAA", "garbage": "a.b.c"} {
		if code, _ := ask(bad); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	// After a rotation the example fetches the key set again for the new kid.
	now = now.Add(idtoken.DefaultRotationPeriod - idtoken.DefaultPublishAhead) // the next key is published
	if err := iss.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(idtoken.DefaultPublishAhead + time.Minute) // and signs
	rotated, _ := iss.Token(ctx, "", subj)
	if kid := func(s string) string { return strings.SplitN(s, ".", 2)[0] }; kid(rotated) == kid(tok) {
		t.Fatal("the key did not rotate")
	}
	if code, body := ask(rotated); code != http.StatusOK {
		t.Fatalf("a token of the rotated key: %d %s", code, body)
	}
	if code, _ := ask(tok); code != http.StatusUnauthorized {
		t.Fatalf("the first token a day later: %d, want 401 (expired)", code)
	}
}
