package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/web"
)

// TestMetricsAreOffTheMainListenerByDefault: in reverse-proxy mode the
// main listener is the application's public host, so /metrics (logins,
// refusals, process details) must not be served there unless the
// operator asks; MetricsHandler serves them on a listener of their own.
func TestMetricsAreOffTheMainListenerByDefault(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("the application's own " + r.URL.Path))
	}))
	t.Cleanup(upstream.Close)
	tests := []struct {
		name     string
		edit     func(*web.Config)
		wantMain bool
	}{
		{"without upstream /metrics is not found", func(*web.Config) {}, false},
		{"in reverse-proxy mode /metrics is the application's path", func(c *web.Config) { c.Upstream = mustURL(t, upstream.URL) }, false},
		{"MetricsOnMainListener serves them on the main listener", func(c *web.Config) { c.MetricsOnMainListener = true }, true},
		{"MetricsOnMainListener wins over reverse-proxy mode", func(c *web.Config) {
			c.Upstream, c.MetricsOnMainListener = mustURL(t, upstream.URL), true
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: time.Now()}
			ls := newEdgeServer(t, session.NewMemory(session.WithNow(clk.Now)), clk, tt.edit)
			main := ls.start("/metrics", "203.0.113.7:1", "")
			served := main.Code == http.StatusOK && strings.Contains(main.Body.String(), "groupgate_auth_requests_total")
			if served != tt.wantMain {
				t.Errorf("main listener /metrics = %d, serves metrics: %v, want %v", main.Code, served, tt.wantMain)
			}
			w := httptest.NewRecorder()
			ls.metrics.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "groupgate_login_starts_refused_total") {
				t.Errorf("MetricsHandler = %d:\n%s", w.Code, w.Body)
			}
		})
	}
}

func mustURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
