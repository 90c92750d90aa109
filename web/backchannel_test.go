package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store/sqlite"
	"github.com/groupgate/groupgate/web"
)

// The receiver does unauthenticated work (a token with an unknown key ID
// makes the replica fetch the IdP's keys), so a client beyond its burst
// gets 429 with Retry-After before any of it, and a refill lets it in
// again.
func TestBackchannelLogoutLimitsEachClient(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	backend := session.NewMemory(session.WithNow(clk.Now))
	login, err := broker.NewLogin(backend, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, "file:"+filepath.Join(t.TempDir(), "gg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := web.NewBackchannelLogout(web.BackchannelConfig{Providers: []string{"okta"},
		Limits: web.LoginLimits{PerClientBurst: 3, PerClientPerMinute: 6}}, login, st, backend, web.WithBackchannelNow(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	b.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func() *http.Response {
		resp, err := http.PostForm(srv.URL+web.BackchannelLogoutPath("okta"), url.Values{"logout_token": {"a.b.c"}})
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		return resp
	}
	for i := range 3 {
		// okta has no connector here: refused after the limit admitted it.
		if resp := post(); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("request %d: %s, want 400", i+1, resp.Status)
		}
	}
	resp := post()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("beyond the burst: %s Retry-After %q, want 429 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	clk.Advance(10 * time.Second)
	if resp := post(); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("after a refill: %s, want 400", resp.Status)
	}
}
