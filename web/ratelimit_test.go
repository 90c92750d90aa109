package web_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/web"
)

// fakeIdP is a redirect connector that only builds authorization URLs:
// these tests are about what starting a login stores, not about the IdP.
type fakeIdP struct{ name string }

func (f fakeIdP) Name() string { return f.name }
func (f fakeIdP) Type() string { return "oidc" }
func (f fakeIdP) LoginURL(_ context.Context, a broker.Attempt) (string, error) {
	return "https://idp.example.com/authorize?state=" + a.State(), nil
}
func (f fakeIdP) HandleCallback(context.Context, *http.Request, broker.Attempt) (groupgate.Identity, broker.Tokens, error) {
	return groupgate.Identity{}, broker.Tokens{}, groupgate.Errorf(groupgate.Unauthenticated, "not in these tests")
}

// countingAttempts counts the attempts stored through it.
type countingAttempts struct {
	broker.AttemptStore
	puts atomic.Int64
}

func (c *countingAttempts) PutAttempt(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.puts.Add(1)
	return c.AttemptStore.PutAttempt(ctx, key, value, ttl)
}

// limitedServer is the real handler chain with one redirect provider,
// "demo" (next to "other", so that /login alone shows the picker), over
// backend, trusting 127.0.0.1 as a front proxy.
type limitedServer struct {
	handler  http.Handler
	metrics  http.Handler
	attempts *countingAttempts
	reg      *prometheus.Registry
	clock    *clock
}

func newLimitedServer(t testing.TB, backend session.Backend, clk *clock, limits web.LoginLimits) *limitedServer {
	return newEdgeServer(t, backend, clk, func(c *web.Config) { c.LoginLimits = limits })
}

// newEdgeServer is limitedServer with its configuration changed by edit.
func newEdgeServer(t testing.TB, backend session.Backend, clk *clock, edit func(*web.Config)) *limitedServer {
	t.Helper()
	ls := &limitedServer{attempts: &countingAttempts{AttemptStore: backend}, reg: prometheus.NewRegistry(), clock: clk}
	login, err := broker.NewLogin(ls.attempts, []broker.Connector{fakeIdP{"demo"}}, broker.WithNow(clk.Now), broker.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewStore(backend, sessionSecret, session.WithTTL(sessionTTL), session.WithNow(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := url.Parse("https://sso.example.com")
	policy, err := web.NewRedirectPolicy(pub, []string{"bsr.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := web.ParseTrustedProxies([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := web.Config{PublicURL: pub, Providers: []string{"demo", "other"}, SessionTTL: sessionTTL, TrustedProxies: trusted}
	edit(&cfg)
	srv, err := web.NewServer(cfg,
		web.Deps{Login: login, Sessions: sessions, Accounts: unusedAccounts{}, Redirects: policy},
		web.WithNow(clk.Now), web.WithRegistry(ls.reg))
	if err != nil {
		t.Fatal(err)
	}
	ls.handler = srv.Handler()
	ls.metrics = srv.MetricsHandler()
	return ls
}

// start sends GET target from remote (ip:port), as a proxy at 127.0.0.1
// when xff is set.
func (ls *limitedServer) start(target, remote, xff string) *httptest.ResponseRecorder {
	return ls.send(httptest.NewRequest(http.MethodGet, target, nil), remote, xff)
}

// send serves a clone of r from remote; cloning a parsed request keeps
// 50,000 requests fast.
func (ls *limitedServer) send(r *http.Request, remote, xff string) *httptest.ResponseRecorder {
	r = r.Clone(context.Background())
	r.RemoteAddr = remote
	if xff != "" {
		r.Header.Set("X-Forwarded-For", xff)
	}
	w := httptest.NewRecorder()
	ls.handler.ServeHTTP(w, r)
	return w
}

// statusOnly is a ResponseWriter that keeps the status and headers and
// drops the body: 50,000 recorders would cost more than the server.
type statusOnly struct {
	header http.Header
	code   int
}

func (w *statusOnly) Header() http.Header         { return w.header }
func (w *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (w *statusOnly) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

// serveMany serves r n times, reusing r (the server's outermost middleware
// only reads it and hands a copy inward) and one writer, and calls each
// with the status and headers of every answer.
func (ls *limitedServer) serveMany(r *http.Request, n int, each func(code int, h http.Header)) {
	w := &statusOnly{header: http.Header{}}
	for range n {
		clear(w.header)
		w.code = 0
		ls.handler.ServeHTTP(w, r)
		each(w.code, w.header)
	}
}

// refused reads groupgate_login_starts_refused_total{reason}.
func (ls *limitedServer) refused(t testing.TB, reason string) float64 {
	t.Helper()
	mfs, err := ls.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "groupgate_login_starts_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no groupgate_login_starts_refused_total{reason=%q}", reason)
	return 0
}

// unusedAccounts is never called: no login finishes in these tests.
type unusedAccounts struct{ web.AccountSyncer }

// attemptStores are the attempt stores the memory test runs on; keys
// counts what the store holds (nil: only the puts are counted).
type attemptStore struct {
	name string
	open func(t testing.TB, now func() time.Time) (session.Backend, func() int)
}

var attemptStores = []attemptStore{
	{"in-process attempts", func(_ testing.TB, now func() time.Time) (session.Backend, func() int) {
		return session.NewMemory(session.WithNow(now)), nil
	}},
	{"Redis attempts", func(t testing.TB, now func() time.Time) (session.Backend, func() int) {
		client, prefix := testenv.Redis(t)
		b, err := session.NewRedis(client, prefix, session.WithNow(now))
		if err != nil {
			t.Fatal(err)
		}
		return b, func() int { return redisKeys(t, client, prefix) }
	}},
}

// redisKeys counts the keys under prefix.
func redisKeys(t testing.TB, client redis.UniversalClient, prefix string) int {
	t.Helper()
	n := 0
	iter := client.Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// longRD is an allowed return URL of n bytes.
func longRD(n int) string {
	base := "https://bsr.example.com/"
	return base + strings.Repeat("a", n-len(base))
}

// TestLoginStartsFromOneAddressStayBounded is the attack of issue 10
// point 9: 50,000 login starts from one address, each with a 4 KiB rd,
// used to store 50,000 attempts for ten minutes. The limits hold memory
// and the attempt store to the per-client burst, and every refusal is a
// 429 with Retry-After, counted in the metrics.
func TestLoginStartsFromOneAddressStayBounded(t *testing.T) {
	const requests = 50_000
	req := httptest.NewRequest(http.MethodGet, "/login?provider=demo&rd="+url.QueryEscape(longRD(4000)), nil)
	for _, as := range attemptStores {
		t.Run(as.name, func(t *testing.T) {
			clk := &clock{t: time.Now()}
			backend, keys := as.open(t, clk.Now)
			ls := newLimitedServer(t, backend, clk, web.LoginLimits{})
			before := heapAlloc()
			var admitted, tooMany int
			var retryAfter, contentType string
			req.RemoteAddr = "203.0.113.7:40000"
			ls.serveMany(req, requests, func(code int, h http.Header) {
				switch code {
				case http.StatusFound:
					admitted++
				case http.StatusTooManyRequests:
					tooMany++
					retryAfter, contentType = h.Get("Retry-After"), h.Get("Content-Type")
				default:
					t.Fatalf("GET /login = %d", code)
				}
			})
			grown := int64(heapAlloc()) - int64(before)
			stored := ls.attempts.puts.Load()
			t.Logf("%d admitted, %d refused, %d attempts stored, heap grew %d KiB", admitted, tooMany, stored, grown/1024)
			if admitted > web.DefaultLoginPerClientBurst || stored > web.DefaultLoginPerClientBurst {
				t.Errorf("one address started %d logins (%d attempts stored), want at most the burst of %d",
					admitted, stored, web.DefaultLoginPerClientBurst)
			}
			if keys != nil {
				if n := keys(); n > web.DefaultLoginPerClientBurst {
					t.Errorf("Redis holds %d keys under the test's prefix, want at most %d", n, web.DefaultLoginPerClientBurst)
				}
			}
			if grown > 8<<20 {
				t.Errorf("heap grew %d MiB, want under 8 MiB", grown>>20)
			}
			if tooMany == 0 {
				t.Fatal("no start was refused")
			}
			if ra, err := strconv.Atoi(retryAfter); err != nil || ra < 1 {
				t.Errorf("Retry-After = %q, want a positive number of seconds", retryAfter)
			}
			if !strings.HasPrefix(contentType, "text/html") {
				t.Errorf("429 Content-Type = %q, want an HTML page", contentType)
			}
			if got := ls.refused(t, "client"); got != float64(tooMany) {
				t.Errorf("refusals counted = %v, want %d", got, tooMany)
			}
		})
	}
}

// TestLoginStartsFromManyAddressesStayBounded: an attacker with many
// addresses meets the replica's cap on live attempts, in memory and in
// Redis, until attempts expire.
func TestLoginStartsFromManyAddressesStayBounded(t *testing.T) {
	const (
		requests = 5_000
		maxLive  = 1_000
	)
	req := httptest.NewRequest(http.MethodGet, "/login?provider=demo&rd="+url.QueryEscape(longRD(2000)), nil)
	for _, as := range attemptStores {
		t.Run(as.name, func(t *testing.T) {
			clk := &clock{t: time.Now()}
			backend, keys := as.open(t, clk.Now)
			ls := newLimitedServer(t, backend, clk, web.LoginLimits{MaxLive: maxLive})
			before := heapAlloc()
			var admitted int
			var last *httptest.ResponseRecorder
			for i := range requests {
				// Client addresses as a trusted proxy reports them.
				ip := fmt.Sprintf("198.%d.%d.%d", 18+i>>16&1, i>>8&0xff, i&0xff)
				w := ls.send(req, "127.0.0.1:1234", ip)
				switch w.Code {
				case http.StatusFound:
					admitted++
				case http.StatusTooManyRequests:
					last = w
				default:
					t.Fatalf("GET /login = %d: %s", w.Code, w.Body)
				}
			}
			grown := int64(heapAlloc()) - int64(before)
			t.Logf("%d admitted, heap grew %d KiB", admitted, grown/1024)
			if admitted != maxLive || ls.attempts.puts.Load() != maxLive {
				t.Errorf("%d starts admitted, %d stored, want exactly the cap %d", admitted, ls.attempts.puts.Load(), maxLive)
			}
			if keys != nil {
				if n := keys(); n > maxLive {
					t.Errorf("Redis holds %d keys, want at most %d", n, maxLive)
				}
			}
			if grown > 24<<20 {
				t.Errorf("heap grew %d MiB, want under 24 MiB", grown>>20)
			}
			if got := ls.refused(t, "global"); got != requests-maxLive {
				t.Errorf("global refusals counted = %v, want %d", got, requests-maxLive)
			}
			if ra, _ := strconv.Atoi(last.Header().Get("Retry-After")); ra < 1 || ra > 600 {
				t.Errorf("Retry-After = %q, want up to the attempt lifetime", last.Header().Get("Retry-After"))
			}
			// Once the first attempts have expired, new starts are admitted.
			clk.Advance(10*time.Minute + time.Second)
			if w := ls.send(req, "127.0.0.1:1234", "192.0.2.1"); w.Code != http.StatusFound {
				t.Errorf("after the attempts expired: %d, want 302", w.Code)
			}
		})
	}
}

func TestLoginLimitsPerClient(t *testing.T) {
	limits := web.LoginLimits{PerClientBurst: 3, PerClientPerMinute: 6}
	newServer := func(t *testing.T) *limitedServer {
		clk := &clock{t: time.Now()}
		return newLimitedServer(t, session.NewMemory(session.WithNow(clk.Now)), clk, limits)
	}
	exhaust := func(t *testing.T, ls *limitedServer, remote, xff string) {
		t.Helper()
		for i := range 3 {
			if w := ls.start("/login?provider=demo", remote, xff); w.Code != http.StatusFound {
				t.Fatalf("start %d = %d, want 302", i+1, w.Code)
			}
		}
		if w := ls.start("/login?provider=demo", remote, xff); w.Code != http.StatusTooManyRequests {
			t.Fatalf("start 4 = %d, want 429", w.Code)
		}
	}
	t.Run("the allowance refills with time", func(t *testing.T) {
		ls := newServer(t)
		exhaust(t, ls, "203.0.113.7:1", "")
		w := ls.start("/login?provider=demo", "203.0.113.7:1", "")
		if got := w.Header().Get("Retry-After"); got != "10" {
			t.Errorf("Retry-After = %q, want 10 (one start per 10s)", got)
		}
		ls.clock.Advance(10 * time.Second)
		if w := ls.start("/login?provider=demo", "203.0.113.7:1", ""); w.Code != http.StatusFound {
			t.Fatalf("after 10s: %d, want 302", w.Code)
		}
	})
	t.Run("another address has its own allowance", func(t *testing.T) {
		ls := newServer(t)
		exhaust(t, ls, "203.0.113.7:1", "")
		if w := ls.start("/login?provider=demo", "203.0.113.8:1", ""); w.Code != http.StatusFound {
			t.Fatalf("other address: %d, want 302", w.Code)
		}
	})
	t.Run("addresses in one IPv6 /64 share an allowance", func(t *testing.T) {
		ls := newServer(t)
		exhaust(t, ls, "[2001:db8:1:2::1]:1", "")
		if w := ls.start("/login?provider=demo", "[2001:db8:1:2:ffff::9]:1", ""); w.Code != http.StatusTooManyRequests {
			t.Fatalf("same /64: %d, want 429", w.Code)
		}
		if w := ls.start("/login?provider=demo", "[2001:db8:1:3::1]:1", ""); w.Code != http.StatusFound {
			t.Fatalf("next /64: %d, want 302", w.Code)
		}
	})
	t.Run("behind a trusted proxy the forwarded client is limited", func(t *testing.T) {
		ls := newServer(t)
		exhaust(t, ls, "127.0.0.1:1", "198.51.100.1")
		if w := ls.start("/login?provider=demo", "127.0.0.1:1", "198.51.100.2"); w.Code != http.StatusFound {
			t.Fatalf("another client behind the proxy: %d, want 302", w.Code)
		}
	})
	t.Run("an untrusted peer cannot escape by inventing X-Forwarded-For", func(t *testing.T) {
		ls := newServer(t)
		for i := range 3 {
			ls.start("/login?provider=demo", "203.0.113.9:1", fmt.Sprintf("10.0.0.%d", i))
		}
		if w := ls.start("/login?provider=demo", "203.0.113.9:1", "10.0.0.99"); w.Code != http.StatusTooManyRequests {
			t.Fatalf("spoofed X-Forwarded-For: %d, want 429", w.Code)
		}
	})
	t.Run("the picker, which stores nothing, is not limited", func(t *testing.T) {
		ls := newServer(t)
		exhaust(t, ls, "203.0.113.7:1", "")
		if w := ls.start("/login?rd=/x", "203.0.113.7:1", ""); w.Code != http.StatusOK {
			t.Fatalf("picker: %d, want 200", w.Code)
		}
	})
	t.Run("forward-auth is not limited", func(t *testing.T) {
		ls := newServer(t)
		exhaust(t, ls, "203.0.113.7:1", "")
		if w := ls.start("/auth", "203.0.113.7:1", ""); w.Code != http.StatusUnauthorized {
			t.Fatalf("/auth: %d, want 401", w.Code)
		}
	})
}

// TestSAMLLoginStartIsLimited: /saml/NAME/login stores an attempt like
// /login does, and shares its limits. The SAML harness runs on the wall
// clock, which refills a little while the test runs: the first refusal
// must come after the burst, and come.
func TestSAMLLoginStartIsLimited(t *testing.T) {
	h := newSAMLHarness(t, nil)
	c := h.browser()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for i := 1; i <= 2*web.DefaultLoginPerClientBurst; i++ {
		resp, err := c.Get(h.base + "/saml/corp/login?rd=/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			if i <= web.DefaultLoginPerClientBurst {
				t.Fatalf("start %d refused within the burst of %d", i, web.DefaultLoginPerClientBurst)
			}
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			return
		}
	}
	t.Fatalf("%d SAML login starts from one address were all admitted", 2*web.DefaultLoginPerClientBurst)
}
