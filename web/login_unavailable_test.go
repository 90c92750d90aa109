package web_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/web"
)

// TestLoginWithAnUnreachableProviderShowsTheUnavailablePage: a provider
// whose IdP did not answer discovery (broker.LazyConnector, not open yet)
// is marked in the picker, and a login with it answers a 503 HTML page
// that names it, stores no attempt, and is no 500; once it opens, the
// same server starts logins with it.
func TestLoginWithAnUnreachableProviderShowsTheUnavailablePage(t *testing.T) {
	var up atomic.Bool
	fire := make(chan time.Time)
	demo := broker.NewLazyConnector("demo", "oidc", func(context.Context) (broker.CallbackConnector, error) {
		if !up.Load() {
			return nil, groupgate.WrapError(groupgate.Unavailable, errors.New("dial tcp 10.9.8.7:443: connection refused"), "discovery failed")
		}
		return fakeIdP{"demo"}, nil
	}, broker.WithAfter(func(time.Duration) <-chan time.Time { return fire }), broker.WithLazyLogger(slog.New(slog.DiscardHandler)))
	if err := demo.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = demo.Close() })

	backend := session.NewMemory()
	attempts := &countingAttempts{AttemptStore: backend}
	login, err := broker.NewLogin(attempts, []broker.Connector{demo, fakeIdP{"other"}}, broker.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewStore(backend, sessionSecret, session.WithTTL(sessionTTL))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := url.Parse("https://sso.example.com")
	policy, err := web.NewRedirectPolicy(pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.NewServer(web.Config{PublicURL: pub, Providers: []string{"demo", "other"}, SessionTTL: sessionTTL},
		web.Deps{Login: login, Sessions: sessions, Accounts: unusedAccounts{}, Redirects: policy})
	if err != nil {
		t.Fatal(err)
	}
	get := func(target string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		return w
	}
	marked := regexp.MustCompile(`href="[^"]*provider=(\w+)[^"]*">\w+ <span class="status">\(unavailable right now\)</span>`)

	t.Run("the picker marks the unreachable provider only", func(t *testing.T) {
		w := get("/login")
		m := marked.FindAllStringSubmatch(w.Body.String(), -1)
		if w.Code != http.StatusOK || len(m) != 1 || m[0][1] != "demo" {
			t.Fatalf("picker = %d, marked %v:\n%s", w.Code, m, w.Body)
		}
	})
	t.Run("a login with it answers 503 with a page that names it", func(t *testing.T) {
		w := get("/login?provider=demo")
		body := w.Body.String()
		if w.Code != http.StatusServiceUnavailable || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") ||
			!strings.Contains(body, "Sign-in with demo is unavailable right now") || strings.Contains(body, "10.9.8.7") {
			t.Fatalf("%d %s:\n%s", w.Code, w.Header().Get("Content-Type"), body)
		}
		if n := attempts.puts.Load(); n != 0 {
			t.Fatalf("%d attempts stored for a login that cannot start", n)
		}
	})
	t.Run("once the provider opens, logins start and the mark is gone", func(t *testing.T) {
		up.Store(true)
		fire <- time.Time{}
		deadline := time.Now().Add(5 * time.Second)
		for !demo.Available() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if w := get("/login?provider=demo"); w.Code != http.StatusFound {
			t.Fatalf("login = %d, want 302 to the IdP", w.Code)
		}
		if w := get("/login"); marked.MatchString(w.Body.String()) {
			t.Fatalf("picker still marks a provider:\n%s", w.Body)
		}
	})
}
