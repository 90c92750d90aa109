package refresh_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/oidc"
	"github.com/groupgate/groupgate/claims"
	"github.com/groupgate/groupgate/devidp"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/refresh"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store/sqlite"
	"github.com/groupgate/groupgate/sync"
)

const (
	clientID     = "groupgate"
	clientSecret = "s3cret-for-tests"
	secret       = "a-session-secret-of-at-least-32-bytes!"
	maxGroupAge  = 10 * time.Minute
	grace        = 5 * time.Minute
)

// clock is a movable clock shared by the IdP, the sessions, sync and the
// refresher.
type clock struct {
	mu stdsync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is the demo OIDC provider, a connector to it, the store, sync and
// a Redis session backend: one groupgate replica's worth, without HTTP
// routes.
type env struct {
	t        *testing.T
	clock    *clock
	srv      *httptest.Server
	idp      *devidp.OIDCProvider
	issuer   string
	callback string
	conn     broker.CallbackConnector
	redis    redis.UniversalClient
	prefix   string
	store    refresh.Store
	memory   bool // store is a memory store
	sessions *session.Redis
	syncer   *sync.Syncer

	// refreshGrants counts refresh_token grants at the token endpoint;
	// tokenDelay slows them down.
	refreshGrants atomic.Int64
	tokenDelay    atomic.Int64

	mu   stdsync.Mutex
	last *http.Request
	logs bytes.Buffer // the refreshers' logs, at debug level
}

func (e *env) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.Write(p)
}

// noSecretInLogs fails when the refreshers logged token.
func (e *env) noSecretInLogs(token string) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.logs.Len() == 0 {
		e.t.Fatal("the refreshers logged nothing: the check would prove nothing")
	}
	if strings.Contains(e.logs.String(), token) {
		e.t.Fatalf("the refresh token appears in the logs:\n%s", e.logs.String())
	}
}

func newEnv(t *testing.T) *env { return newEnvOn(t, false) }

// forEachStore runs test on a Redis store and on a memory store.
func forEachStore(t *testing.T, test func(t *testing.T, memory bool)) {
	t.Run("on Redis", func(t *testing.T) { test(t, false) })
	t.Run("in memory", func(t *testing.T) { test(t, true) })
}

// newEnvOn is newEnv with the refresh state in memory when memory is set,
// else in Redis; sessions are in Redis either way.
func newEnvOn(t *testing.T, memory bool) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, clock: &clock{t: time.Now()}, memory: memory}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL + "/idp"
	e.callback = e.srv.URL + "/callback"
	idp, err := devidp.NewOIDC(e.issuer, devidp.OIDCConfig{
		Clients: []devidp.OIDCClient{{ID: clientID, Secret: clientSecret, RedirectURIs: []string{e.callback}}},
		Now:     e.clock.Now,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.idp = idp
	mux.Handle("/idp/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth/token") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if v, _ := url.ParseQuery(string(body)); v.Get("grant_type") == "refresh_token" {
				e.refreshGrants.Add(1)
				time.Sleep(time.Duration(e.tokenDelay.Load()))
			}
		}
		idp.ServeHTTP(w, r)
	}))
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.last = r.Clone(context.Background())
		e.mu.Unlock()
		io.WriteString(w, "callback received")
	})

	hidden, err := claims.NewFilter(nil, []string{"^hidden-"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := oidc.Config{
		Issuer: e.issuer, ClientID: clientID, ClientSecret: clientSecret,
		Scopes:      []string{"openid", "email", "profile", "groups", "offline_access"},
		RedirectURL: e.callback, Filter: hidden,
	}
	e.conn, err = cfg.Open(ctx, "demo", slog.New(slog.DiscardHandler), oidc.WithHTTPClient(e.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}

	e.redis, e.prefix = testenv.Redis(t)
	e.sessions, err = session.NewRedis(e.redis, e.prefix, session.WithNow(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if memory {
		e.store = refresh.NewMemoryStore(e.clock.Now)
	} else if e.store, err = refresh.NewRedisStore(e.redis, e.prefix); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, "file:"+filepath.Join(t.TempDir(), "gg.db"), sqlite.WithNow(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e.syncer = sync.New(st, e.sessions, sync.WithNow(e.clock.Now), sync.WithGroupFilter(hidden.Allowed))
	return e
}

// refresher is one replica's refresher over e.
func (e *env) refresher(opts ...refresh.Option) *refresh.Refresher {
	e.t.Helper()
	r, err := refresh.New(e.store, []byte(secret), e.sessions, e.syncer,
		map[string]refresh.Provider{"demo": {Connector: e.conn.(broker.RefreshConnector), MaxGroupAge: maxGroupAge, Grace: grace}},
		append([]refresh.Option{refresh.WithNow(e.clock.Now),
			refresh.WithLogger(slog.New(slog.NewJSONHandler(e, &slog.HandlerOptions{Level: slog.LevelDebug})))}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	hiddenID   = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]+)">`)
)

// login signs username in at the IdP through the code flow, as the
// browser and the callback would, and starts a session the way web's
// finish step does: sync, save, then the refresher. It returns the
// session and the refresh token the IdP issued.
func (e *env) login(r *refresh.Refresher, username string) (*session.Record, string) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	a := broker.NewAttempt("demo", "", time.Now(), broker.DefaultAttemptTTL)
	loginURL, err := e.conn.LoginURL(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	b := *e.srv.Client()
	b.Jar = jar
	resp, err := b.Get(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action, id := formAction.FindSubmatch(page), hiddenID.FindSubmatch(page)
	if action == nil || id == nil {
		t.Fatalf("no login form at %s:\n%s", loginURL, page)
	}
	resp, err = b.PostForm(html.UnescapeString(string(action[1])), url.Values{
		"id": {html.UnescapeString(string(id[1]))}, "username": {username}, "password": {username + "-password"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	e.mu.Lock()
	cb := e.last
	e.mu.Unlock()
	if cb == nil {
		t.Fatalf("sign-in as %s did not reach the callback", username)
	}
	ident, tokens, err := e.conn.HandleCallback(ctx, cb, a)
	if err != nil {
		t.Fatal(err)
	}
	if tokens.RefreshToken == "" {
		t.Fatal("the IdP issued no refresh token for offline_access")
	}
	user, m, err := e.syncer.Login(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := session.NewID(user.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec := &session.Record{ID: sid, UserID: user.ID, Provider: "demo", Identity: ident, Memberships: m,
		CreatedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(12 * time.Hour)}
	if err := e.sessions.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := r.Started(ctx, rec, tokens.RefreshToken); err != nil {
		t.Fatal(err)
	}
	return rec, tokens.RefreshToken
}

// groups is the session's current group snapshot; nil when it ended.
func (e *env) groups(id string) []string {
	e.t.Helper()
	rec, err := e.sessions.Load(context.Background(), id)
	if groupgate.IsCode(err, groupgate.NotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return append([]string{}, rec.Memberships.Groups...)
}

// leftovers is what the refresh store still holds: its Redis keys, or
// the number of entries of a memory store.
func (e *env) leftovers() []string {
	e.t.Helper()
	if e.memory {
		if n := refresh.MemoryLen(e.store); n > 0 {
			return []string{fmt.Sprintf("%d memory entries", n)}
		}
		return nil
	}
	return e.refreshKeys()
}

// refreshKeys lists the refresh package's keys left in Redis.
func (e *env) refreshKeys() []string {
	e.t.Helper()
	keys, err := e.redis.Keys(context.Background(), e.prefix+"refresh:*").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}

func runOnce(t *testing.T, r *refresh.Refresher) map[refresh.Outcome]int {
	t.Helper()
	out, err := r.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGroupsChangedAtTheIdPReachTheSessionWithoutANewLogin(t *testing.T) {
	forEachStore(t, func(t *testing.T, memory bool) {
		e := newEnvOn(t, memory)
		reg := prometheus.NewRegistry()
		r := e.refresher(refresh.WithRegisterer(reg))
		rec, _ := e.login(r, "alice")
		if got := e.groups(rec.ID); !slices.Equal(got, []string{"eng", "platform-admins"}) {
			t.Fatalf("groups after login = %v", got)
		}
		e.idp.SetGroups("u-alice", []string{"eng", "hidden-ops", "sre"})

		if out := runOnce(t, r); len(out) != 0 {
			t.Fatalf("a refresh ran before it was due: %v", out)
		}
		e.clock.Add(maxGroupAge * 3 / 4)
		if out := runOnce(t, r); out[refresh.Refreshed] != 1 {
			t.Fatalf("RunOnce at the due time = %v, want one refresh", out)
		}
		// The group filter hides hidden-ops, as at login.
		if got := e.groups(rec.ID); !slices.Equal(got, []string{"eng", "sre"}) {
			t.Fatalf("groups after refresh = %v, want [eng sre]", got)
		}
		if out := runOnce(t, r); len(out) != 0 {
			t.Fatalf("a second refresh ran right after the first: %v", out)
		}
		// The IdP rotated the refresh token; the next refresh uses the new one.
		e.idp.SetGroups("u-alice", nil)
		e.clock.Add(maxGroupAge * 3 / 4)
		if out := runOnce(t, r); out[refresh.Refreshed] != 1 {
			t.Fatalf("second RunOnce = %v", out)
		}
		if got := e.groups(rec.ID); len(got) != 0 {
			t.Fatalf("groups after the IdP removed them all = %v, want none", got)
		}
		if n := counterOf(t, reg, "refreshed"); n != 2 {
			t.Fatalf("groupgate_session_refreshes_total{outcome=refreshed} = %v, want 2", n)
		}
	})
}

// counterOf is the refresh counter of outcome gathered from reg.
func counterOf(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "groupgate_session_refreshes_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no groupgate_session_refreshes_total{outcome=%q}", outcome)
	return 0
}

func TestARefusedRefreshTokenEndsTheSessionAtOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, memory bool) {
		tests := []struct {
			name   string
			before func(e *env)
			after  func(e *env)
		}{
			{name: "a revoked refresh token", after: func(e *env) {
				if n := e.idp.RevokeRefreshTokens("u-bob"); n != 1 {
					e.t.Fatalf("revoked %d refresh tokens, want 1", n)
				}
			}},
			{name: "an expired refresh token", before: func(e *env) { e.idp.SetRefreshTokenLifetime(maxGroupAge / 2) }},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnvOn(t, memory)
				r := e.refresher()
				if tc.before != nil {
					tc.before(e)
				}
				rec, token := e.login(r, "bob")
				if tc.after != nil {
					tc.after(e)
				}
				e.clock.Add(maxGroupAge * 3 / 4)
				if out := runOnce(t, r); out[refresh.Ended] != 1 {
					t.Fatalf("RunOnce = %v, want the session ended", out)
				}
				if _, err := e.sessions.Load(context.Background(), rec.ID); !groupgate.IsCode(err, groupgate.NotFound) {
					t.Fatalf("session after a refused refresh: %v, want NotFound", err)
				}
				if keys := e.leftovers(); len(keys) != 0 {
					t.Fatalf("refresh keys left behind: %v", keys)
				}
				e.noSecretInLogs(token)
			})
		}
	})
}

func TestAnUnreachableIdPKeepsTheSessionWithinGraceAndEndsItAfter(t *testing.T) {
	forEachStore(t, func(t *testing.T, memory bool) {
		e := newEnvOn(t, memory)
		r := e.refresher()
		rec, token := e.login(r, "alice")
		e.srv.Close() // every IdP request is refused from now on

		e.clock.Add(maxGroupAge * 3 / 4)
		if out := runOnce(t, r); out[refresh.Kept] != 1 {
			t.Fatalf("RunOnce with the IdP down = %v, want the session kept", out)
		}
		// Groups as old as max_group_age + grace - 1s: still kept.
		e.clock.Add(maxGroupAge/4 + grace - time.Second)
		if out := runOnce(t, r); out[refresh.Kept] != 1 {
			t.Fatalf("RunOnce just within grace = %v, want the session kept", out)
		}
		if got := e.groups(rec.ID); !slices.Equal(got, []string{"eng", "platform-admins"}) {
			t.Fatalf("groups within grace = %v, want the last known ones", got)
		}
		e.clock.Add(time.Second)
		if out := runOnce(t, r); out[refresh.Ended] != 1 {
			t.Fatalf("RunOnce past grace = %v, want the session ended", out)
		}
		if e.groups(rec.ID) != nil {
			t.Fatal("the session outlived its grace")
		}
		if keys := e.leftovers(); len(keys) != 0 {
			t.Fatalf("refresh keys left behind: %v", keys)
		}
		e.noSecretInLogs(token)
	})
}

func TestTwoReplicasRefreshingOneSessionCallTheIdPOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, memory bool) {
		e := newEnvOn(t, memory)
		// A lease far shorter than the IdP's answer: only its renewal keeps
		// the second replica out.
		const lease = 150 * time.Millisecond
		a, b := e.refresher(refresh.WithLease(lease)), e.refresher(refresh.WithLease(lease))
		rec, _ := e.login(a, "alice")
		e.idp.SetGroups("u-alice", []string{"sre"})
		e.tokenDelay.Store(int64(4 * lease))
		e.clock.Add(maxGroupAge * 3 / 4)

		var (
			wg       stdsync.WaitGroup
			mu       stdsync.Mutex
			outcomes = map[refresh.Outcome]int{}
		)
		for _, r := range []*refresh.Refresher{a, b, a, b} {
			wg.Go(func() {
				// Each replica keeps trying for longer than the refresh takes.
				for range 8 {
					o, err := r.RefreshSession(context.Background(), rec.ID)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					outcomes[o]++
					mu.Unlock()
					time.Sleep(lease / 2)
				}
			})
		}
		wg.Wait()
		if n := e.refreshGrants.Load(); n != 1 {
			t.Fatalf("the IdP saw %d refresh grants, want 1 (outcomes %v)", n, outcomes)
		}
		if outcomes[refresh.Refreshed] != 1 || outcomes[refresh.Ended] != 0 {
			t.Fatalf("outcomes = %v, want exactly one refresh", outcomes)
		}
		if got := e.groups(rec.ID); !slices.Equal(got, []string{"sre"}) {
			t.Fatalf("groups = %v, want [sre]", got)
		}
	})
}

func TestTheRefreshTokenIsEncryptedAtRest(t *testing.T) {
	e := newEnv(t)
	r := e.refresher()
	rec, token := e.login(r, "alice")
	keys := e.refreshKeys()
	if len(keys) != 2 { // the state and the due set
		t.Fatalf("refresh keys = %v", keys)
	}
	for _, k := range keys {
		raw, err := e.redis.Dump(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(raw, token) {
			t.Fatalf("key %s holds the refresh token in clear", k)
		}
	}
	// The sealed token still works: it is encrypted, not lost.
	e.clock.Add(maxGroupAge)
	if out := runOnce(t, r); out[refresh.Refreshed] != 1 {
		t.Fatalf("RunOnce = %v", out)
	}
	// Another session secret cannot open it: the session ends rather
	// than refresh with a token it cannot read.
	other, err := refresh.New(e.store, []byte(strings.Repeat("x", 32)), e.sessions, e.syncer,
		map[string]refresh.Provider{"demo": {Connector: e.conn.(broker.RefreshConnector), MaxGroupAge: maxGroupAge, Grace: grace}},
		refresh.WithNow(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(maxGroupAge)
	if o, err := other.RefreshSession(context.Background(), rec.ID); err != nil || o != refresh.Ended {
		t.Fatalf("refresh with another secret = %v, %v; want ended", o, err)
	}
}

func TestNoRefreshKeyOutlivesItsSession(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, memory bool) {
		t.Run("a logout forgets the state at once", func(t *testing.T) {
			e := newEnvOn(t, memory)
			r := e.refresher()
			rec, _ := e.login(r, "alice")
			if len(e.leftovers()) == 0 {
				t.Fatal("no refresh state after login")
			}
			if err := e.sessions.Delete(ctx, rec.ID); err != nil {
				t.Fatal(err)
			}
			if err := r.Ended(ctx, rec.ID); err != nil {
				t.Fatal(err)
			}
			if left := e.leftovers(); len(left) != 0 {
				t.Fatalf("refresh state left behind: %v", left)
			}
		})
		t.Run("a session ended elsewhere is forgotten when its refresh comes due", func(t *testing.T) {
			e := newEnvOn(t, memory)
			r := e.refresher()
			rec, _ := e.login(r, "alice")
			if _, err := e.sessions.DeleteUserSessions(ctx, rec.UserID); err != nil {
				t.Fatal(err)
			}
			e.clock.Add(maxGroupAge)
			if out := runOnce(t, r); out[refresh.Gone] != 1 {
				t.Fatalf("RunOnce = %v, want the state forgotten", out)
			}
			if n := e.refreshGrants.Load(); n != 0 {
				t.Fatalf("the IdP saw %d refresh grants for an ended session", n)
			}
			if left := e.leftovers(); len(left) != 0 {
				t.Fatalf("refresh state left behind: %v", left)
			}
		})
	})
	t.Run("the Redis state expires with the session", func(t *testing.T) {
		e := newEnv(t)
		r := e.refresher()
		rec, _ := e.login(r, "alice")
		ttl, err := e.redis.PTTL(ctx, e.prefix+"refresh:{u:"+strings.Replace(rec.ID, ".", "}:", 1)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := rec.ExpiresAt.Sub(e.clock.Now()); ttl <= 0 || ttl > want {
			t.Fatalf("state TTL = %s, want at most the session's %s", ttl, want)
		}
	})
	t.Run("the memory state expires with the session", func(t *testing.T) {
		e := newEnvOn(t, true)
		r := e.refresher()
		e.login(r, "alice")
		e.clock.Add(12 * time.Hour)
		runOnce(t, r)
		if left := e.leftovers(); len(left) != 0 {
			t.Fatalf("refresh state outlived its session: %v", left)
		}
	})
}

func TestARefreshThatLosesItsLeaseStopsWithoutApplyingAnything(t *testing.T) {
	e := newEnv(t)
	const lease = 150 * time.Millisecond
	r := e.refresher(refresh.WithLease(lease))
	rec, _ := e.login(r, "alice")
	e.idp.SetGroups("u-alice", []string{"sre"})
	e.tokenDelay.Store(int64(10 * lease))
	e.clock.Add(maxGroupAge)

	// As if Redis failed over and lost the lease, or this process stalled
	// past it: the lease key is gone before the IdP answers.
	lockKey := e.prefix + "refresh:lock:{u:" + strings.Replace(rec.ID, ".", "}:", 1)
	go func() {
		for !pollKey(e, lockKey) {
			time.Sleep(10 * time.Millisecond)
		}
		e.redis.Del(context.Background(), lockKey)
	}()
	if o, err := r.RefreshSession(context.Background(), rec.ID); err == nil {
		t.Fatalf("RefreshSession = %s with its lease lost, want an error", o)
	}
	if got := e.groups(rec.ID); !slices.Equal(got, []string{"eng", "platform-admins"}) {
		t.Fatalf("groups = %v: a refresh without its lease applied its answer", got)
	}
}

func pollKey(e *env, key string) bool {
	n, _ := e.redis.Exists(context.Background(), key).Result()
	return n == 1
}

func TestALoginWhoseRefreshTokenCannotBeKeptEndsItsSession(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = down.Close() })
	downStore, err := refresh.NewRedisStore(down, e.prefix)
	if err != nil {
		t.Fatal(err)
	}
	r, err := refresh.New(downStore, []byte(secret), e.sessions, e.syncer,
		map[string]refresh.Provider{"demo": {Connector: e.conn.(broker.RefreshConnector), MaxGroupAge: maxGroupAge, Grace: grace}},
		refresh.WithNow(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	sid, err := session.NewID("u1")
	if err != nil {
		t.Fatal(err)
	}
	rec := &session.Record{ID: sid, UserID: "u1", Provider: "demo", Identity: groupgate.Identity{Provider: "demo", Subject: "u-alice"},
		CreatedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(time.Hour)}
	if err := e.sessions.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := r.Started(ctx, rec, "a-refresh-token"); !groupgate.IsCode(err, groupgate.Unavailable) {
		t.Fatalf("Started with the refresh state unreachable: %v, want Unavailable", err)
	}
	if _, err := e.sessions.Load(ctx, sid); !groupgate.IsCode(err, groupgate.NotFound) {
		t.Fatalf("the session lives on without its refresh token: %v", err)
	}
}
