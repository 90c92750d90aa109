package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/groupgate/groupgate/web"
)

// BenchmarkAuthWithIdentityToken is BenchmarkAuth's in-process case with
// X-Auth-Request-Jwt on: the session's token is reused for half its
// lifetime, so the hot path adds a cache lookup and a comparison of the
// snapshot, not a signature. Compare with BenchmarkAuth.
func BenchmarkAuthWithIdentityToken(b *testing.B) {
	h := newHarness(b, harnessConfig{backend: backends[0], tokens: true, infoLogs: true})
	c := h.browser()
	h.login(c, "demo", "alice", "/", "/")
	handler, cookie := h.web.Handler(), h.sessionCookie(c)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/auth", nil)
			req.AddCookie(cookie)
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, req)
			if w.Code != http.StatusOK || w.Header().Get(web.HeaderJWT) == "" {
				b.Fatalf("/auth = %d, token %q", w.Code, w.Header().Get(web.HeaderJWT))
			}
		}
	})
}
