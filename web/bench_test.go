package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/web"
)

// cachedBackend is Redis behind the local cache, as serve runs it: the
// forward-auth hot path answers from memory. Its TTL is the longest
// allowed so that a benchmark measures hits, not the backstop's reloads.
var cachedBackend = backendKind{"Redis sessions + local cache", func(t testing.TB, now func() time.Time) session.Backend {
	client, prefix := testenv.Redis(t)
	r, err := session.NewRedis(client, prefix, session.WithNow(now))
	if err != nil {
		t.Fatal(err)
	}
	c := session.NewCache(r, session.WithCacheTTL(10*time.Second))
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}}

// BenchmarkAuth measures /auth with a valid session on each backend, and
// a bare handler that writes the same headers: the floor any forward-auth
// endpoint pays in net/http. Requests go to the handler in-process, so the
// numbers are groupgate's cost, not the loopback's. Issue 15's target is
// the cached case's allocs/op no higher than the bare handler's.
func BenchmarkAuth(b *testing.B) {
	for _, bk := range append(backends[:len(backends):len(backends)], cachedBackend) {
		b.Run(bk.name, func(b *testing.B) {
			h := newHarness(b, harnessConfig{backend: bk, infoLogs: true})
			c := h.browser()
			h.login(c, "demo", "alice", "/", "/")
			benchAuth(b, h.web.Handler(), h.sessionCookie(c))
		})
	}
	b.Run("bare net/http handler", func(b *testing.B) {
		ih := web.IdentityHeaders{User: "alice", Email: "alice@example.com", Memberships: groupgate.Memberships{
			Groups: []string{"eng", "platform-admins"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember},
		}}
		bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ih.Set(w.Header())
			w.WriteHeader(http.StatusOK)
		})
		benchAuth(b, bare, &http.Cookie{Name: "_groupgate", Value: "unused"})
	})
}

func benchAuth(b *testing.B, h http.Handler, cookie *http.Cookie) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/auth", nil)
			req.AddCookie(cookie)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK || w.Header().Get(web.HeaderUser) != "alice" {
				b.Fatalf("/auth = %d, user %q", w.Code, w.Header().Get(web.HeaderUser))
			}
		}
	})
}
