package broker_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
)

// memAttempts is an in-memory AttemptStore that honours TTLs by an
// injected clock; ignoreTTL keeps entries forever so that Login's own
// expiry check can be tested on its own.
type memAttempts struct {
	mu        sync.Mutex
	now       func() time.Time
	ignoreTTL bool
	failPut   error
	m         map[string]memEntry
}

type memEntry struct {
	v   []byte
	exp time.Time
}

func newMemAttempts(now func() time.Time) *memAttempts {
	return &memAttempts{now: now, m: map[string]memEntry{}}
}

func (s *memAttempts) PutAttempt(_ context.Context, key string, v []byte, ttl time.Duration) error {
	if s.failPut != nil {
		return s.failPut
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = memEntry{v: v, exp: s.now().Add(ttl)}
	return nil
}

func (s *memAttempts) TakeAttempt(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	delete(s.m, key)
	if !ok || (!s.ignoreTTL && !s.now().Before(e.exp)) {
		return nil, groupgate.Errorf(groupgate.NotFound, "no login attempt")
	}
	return e.v, nil
}

// fakeConnector logs in whoever the callback's "code" names, after checking
// that the attempt it is handed is the one its login URL was built from.
type fakeConnector struct {
	name string
}

func (c fakeConnector) Name() string { return c.name }
func (c fakeConnector) Type() string { return "fake" }

func (c fakeConnector) LoginURL(_ context.Context, a broker.Attempt) (string, error) {
	q := url.Values{"state": {a.State()}, "nonce": {a.Nonce}}
	return "https://idp.test/authorize?" + q.Encode(), nil
}

func (c fakeConnector) HandleCallback(_ context.Context, r *http.Request, a broker.Attempt) (groupgate.Identity, broker.Tokens, error) {
	if r.FormValue("nonce") != a.Nonce {
		return groupgate.Identity{}, broker.Tokens{}, groupgate.Errorf(groupgate.Unauthenticated, "nonce mismatch")
	}
	return groupgate.Identity{Provider: c.name, Subject: r.FormValue("code")}, broker.Tokens{IDToken: "id-" + r.FormValue("code")}, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// callback builds the IdP's redirect back for a started login, as the
// browser would send it: state and nonce echoed, code naming the user, and
// the given cookies.
func callback(t *testing.T, s broker.Started, code string, cookies ...*http.Cookie) *http.Request {
	t.Helper()
	u, err := url.Parse(s.RedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"state": {u.Query().Get("state")}, "nonce": {u.Query().Get("nonce")}, "code": {code}}
	r := httptest.NewRequest(http.MethodGet, "/callback/fake?"+q.Encode(), nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return r
}

func cookieOf(s broker.Started) *http.Cookie {
	return &http.Cookie{Name: s.Cookie.Name, Value: s.Cookie.Value}
}

func newLogin(t *testing.T, store broker.AttemptStore, clk *clock) *broker.Login {
	t.Helper()
	l, err := broker.NewLogin(store, []broker.Connector{fakeConnector{name: "fake"}, fakeConnector{name: "other"}},
		broker.WithNow(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLogin(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	t.Run("a login begun and finished in the same browser returns the identity and the return URL", func(t *testing.T) {
		clk := &clock{t: start}
		l := newLogin(t, newMemAttempts(clk.Now), clk)
		s, err := l.Begin(ctx, "fake", "https://bsr.example.com/x")
		if err != nil {
			t.Fatal(err)
		}
		if !s.Cookie.Expires.Equal(start.Add(broker.DefaultAttemptTTL)) {
			t.Errorf("cookie expires %v, want %v", s.Cookie.Expires, start.Add(broker.DefaultAttemptTTL))
		}
		res, err := l.Finish(ctx, "fake", callback(t, s, "alice", cookieOf(s)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Identity.Subject != "alice" || res.ReturnTo != "https://bsr.example.com/x" || res.CookieName != s.Cookie.Name || res.Tokens.IDToken != "id-alice" {
			t.Errorf("result = %+v", res)
		}
	})

	t.Run("parallel logins in one browser each finish with their own attempt", func(t *testing.T) {
		clk := &clock{t: start}
		l := newLogin(t, newMemAttempts(clk.Now), clk)
		s1, err := l.Begin(ctx, "fake", "https://a.example.com/")
		if err != nil {
			t.Fatal(err)
		}
		s2, err := l.Begin(ctx, "fake", "https://b.example.com/")
		if err != nil {
			t.Fatal(err)
		}
		if s1.Cookie.Name == s2.Cookie.Name || s1.Attempt.ID == s2.Attempt.ID || s1.Attempt.Nonce == s2.Attempt.Nonce {
			t.Fatalf("two attempts share a cookie name, ID or nonce: %+v %+v", s1, s2)
		}
		both := []*http.Cookie{cookieOf(s1), cookieOf(s2)}
		r2, err := l.Finish(ctx, "fake", callback(t, s2, "bob", both...))
		if err != nil {
			t.Fatal(err)
		}
		r1, err := l.Finish(ctx, "fake", callback(t, s1, "alice", both...))
		if err != nil {
			t.Fatal(err)
		}
		if r1.ReturnTo != "https://a.example.com/" || r2.ReturnTo != "https://b.example.com/" {
			t.Errorf("return URLs crossed: %q %q", r1.ReturnTo, r2.ReturnTo)
		}
	})

	refusals := []struct {
		name string
		// run begins a login and returns the callback to finish.
		run  func(t *testing.T, l *broker.Login, clk *clock, store *memAttempts) (provider string, r *http.Request)
		code groupgate.ErrorCode
	}{
		{
			name: "a callback without the binding cookie is refused (login CSRF)",
			run: func(t *testing.T, l *broker.Login, _ *clock, _ *memAttempts) (string, *http.Request) {
				s, _ := l.Begin(ctx, "fake", "")
				return "fake", callback(t, s, "mallory")
			},
			code: groupgate.Invalid,
		},
		{
			name: "a binding cookie of another attempt does not unlock this one",
			run: func(t *testing.T, l *broker.Login, _ *clock, _ *memAttempts) (string, *http.Request) {
				mine, _ := l.Begin(ctx, "fake", "")
				theirs, _ := l.Begin(ctx, "fake", "")
				forged := &http.Cookie{Name: theirs.Cookie.Name, Value: mine.Cookie.Value}
				return "fake", callback(t, theirs, "mallory", cookieOf(mine), forged)
			},
			code: groupgate.Invalid,
		},
		{
			name: "a callback replayed after a finished login is refused",
			run: func(t *testing.T, l *broker.Login, _ *clock, _ *memAttempts) (string, *http.Request) {
				s, _ := l.Begin(ctx, "fake", "")
				if _, err := l.Finish(ctx, "fake", callback(t, s, "alice", cookieOf(s))); err != nil {
					t.Fatal(err)
				}
				return "fake", callback(t, s, "alice", cookieOf(s))
			},
			code: groupgate.Invalid,
		},
		{
			name: "an attempt past its lifetime is refused even if the store still has it",
			run: func(t *testing.T, l *broker.Login, clk *clock, store *memAttempts) (string, *http.Request) {
				store.ignoreTTL = true
				s, _ := l.Begin(ctx, "fake", "")
				clk.Add(broker.DefaultAttemptTTL)
				return "fake", callback(t, s, "alice", cookieOf(s))
			},
			code: groupgate.Invalid,
		},
		{
			name: "an attempt the store expired is refused",
			run: func(t *testing.T, l *broker.Login, clk *clock, _ *memAttempts) (string, *http.Request) {
				s, _ := l.Begin(ctx, "fake", "")
				clk.Add(broker.DefaultAttemptTTL + time.Second)
				return "fake", callback(t, s, "alice", cookieOf(s))
			},
			code: groupgate.Invalid,
		},
		{
			name: "a callback to another provider than the attempt's is refused",
			run: func(t *testing.T, l *broker.Login, _ *clock, _ *memAttempts) (string, *http.Request) {
				s, _ := l.Begin(ctx, "fake", "")
				return "other", callback(t, s, "alice", cookieOf(s))
			},
			code: groupgate.Invalid,
		},
		{
			name: "a malformed state is refused before the store is asked",
			run: func(t *testing.T, l *broker.Login, _ *clock, _ *memAttempts) (string, *http.Request) {
				r := httptest.NewRequest(http.MethodGet, "/callback/fake?state=short&code=x", nil)
				r.AddCookie(&http.Cookie{Name: l.CookieName("short"), Value: "short"})
				return "fake", r
			},
			code: groupgate.Invalid,
		},
		{
			name: "a connector's refusal is passed on with its code",
			run: func(t *testing.T, l *broker.Login, _ *clock, _ *memAttempts) (string, *http.Request) {
				s, _ := l.Begin(ctx, "fake", "")
				r := callback(t, s, "alice", cookieOf(s))
				q := r.URL.Query()
				q.Set("nonce", "wrong")
				r.URL.RawQuery = q.Encode()
				return "fake", r
			},
			code: groupgate.Unauthenticated,
		},
		{
			name: "an unknown provider is not found",
			run: func(t *testing.T, l *broker.Login, _ *clock, _ *memAttempts) (string, *http.Request) {
				s, _ := l.Begin(ctx, "fake", "")
				return "nope", callback(t, s, "alice", cookieOf(s))
			},
			code: groupgate.NotFound,
		},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: start}
			store := newMemAttempts(clk.Now)
			l := newLogin(t, store, clk)
			provider, r := tc.run(t, l, clk, store)
			_, err := l.Finish(ctx, provider, r)
			if got := groupgate.ErrorCodeOf(err); got != tc.code {
				t.Fatalf("Finish error = %v (code %q), want code %q", err, got, tc.code)
			}
		})
	}

	t.Run("a store that cannot save the attempt makes Begin unavailable", func(t *testing.T) {
		clk := &clock{t: start}
		store := newMemAttempts(clk.Now)
		store.failPut = errors.New("redis down")
		l := newLogin(t, store, clk)
		_, err := l.Begin(ctx, "fake", "")
		if !groupgate.IsCode(err, groupgate.Unavailable) || !strings.Contains(err.Error(), "redis down") {
			t.Fatalf("Begin error = %v, want Unavailable wrapping the cause", err)
		}
	})

	t.Run("two providers with one name are refused", func(t *testing.T) {
		_, err := broker.NewLogin(newMemAttempts(time.Now), []broker.Connector{fakeConnector{name: "a"}, fakeConnector{name: "a"}})
		if err == nil {
			t.Fatal("NewLogin accepted duplicate provider names")
		}
	})
}
