package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/session/sessiontest"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/sqlite"
)

// metricValue reads one unlabelled sample from base's /metrics; 0 when
// absent.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", name, m[1], err)
	}
	return v
}

// noGoroutineIn fails if, a moment after a Run and Close returned, any
// goroutine still runs a function whose name contains one of funcs.
func noGoroutineIn(t *testing.T, funcs ...string) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(2 * time.Second); ; {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		left = left[:0]
		for _, f := range funcs {
			if strings.Contains(stacks, f) {
				left = append(left, f)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines still running %v after shutdown:\n%s", left, stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeReplaysTheOutbox leaves an access change committed with its
// outbox entry but never pushed, as when a replica dies between commit
// and push, and expects serve's outbox runner to bring the signed-in
// user's session in line; on shutdown the runner stops before the store
// closes.
func TestServeReplaysTheOutbox(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, stop, done, logs := startServeWith(t, serveConfig(t, dir, ""), func(m *Main) { m.OutboxInterval = 20 * time.Millisecond })

	alice := newBrowser(t)
	signIn(t, alice, base+"/login?rd="+url.QueryEscape(base+"/whoami"), "alice")
	if code, h := authHeaders(t, alice, base); code != http.StatusOK || h.Get("X-Auth-Request-Org-Roles") != "" {
		t.Fatalf("/auth before the change = %d, org roles %q; logs:\n%s", code, h.Get("X-Auth-Request-Org-Roles"), logs)
	}

	// A second handle on serve's database writes the change the way the
	// syncer does, dated a minute ago so that it is past the replay grace.
	st, err := sqlite.Open(ctx, "file:"+filepath.Join(dir, "gg.db"), sqlite.WithNow(func() time.Time { return time.Now().Add(-time.Minute) }))
	if err != nil {
		t.Fatal(err)
	}
	err = st.InTx(ctx, func(tx store.Store) error {
		org, err := tx.CreateOrganization(ctx, groupgate.Organization{Name: "acme"})
		if err != nil {
			return err
		}
		if _, err := tx.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: org.ID, Group: "eng"}); err != nil {
			return err
		}
		_, err = tx.(store.OutboxStore).EnqueueOutbox(ctx, store.OutboxEntry{Groups: []string{"eng"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the runner pushes the change to alice's session", func(t *testing.T) {
		for deadline := time.Now().Add(5 * time.Second); ; {
			code, h := authHeaders(t, alice, base)
			if code == http.StatusOK && h.Get("X-Auth-Request-Org-Roles") == "acme=MEMBER" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/auth = %d, org roles %q, want acme=MEMBER; logs:\n%s", code, h.Get("X-Auth-Request-Org-Roles"), logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("and acknowledges the entry", func(t *testing.T) {
		for deadline := time.Now().Add(5 * time.Second); ; {
			left, err := st.ListOutbox(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("outbox still holds %+v", left)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	t.Run("shutdown stops the runner cleanly", func(t *testing.T) {
		stop()
		if err := <-done; err != nil {
			t.Fatalf("serve: %v", err)
		}
		noGoroutineIn(t, "(*Syncer).RunOutbox")
		if strings.Contains(logs.String(), "outbox replay failed") || strings.Contains(logs.String(), "outbox runner stopped") {
			t.Fatalf("the runner failed or outlived the store:\n%s", logs)
		}
	})
}

// hungRedis accepts connections and never answers, like a Redis that is
// stuck; it returns its address.
func hungRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    stdsync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// TestRedisSessionsFailFastWhenRedisHangs: with go-redis's defaults a
// session read against a hung Redis takes 5 seconds or more; serve's
// client must give up within about one with Unavailable, which /auth
// answers as 503.
func TestRedisSessionsFailFastWhenRedisHangs(t *testing.T) {
	addr := hungRedis(t)
	for _, cached := range []bool{false, true} {
		t.Run("local cache "+map[bool]string{false: "off", true: "on"}[cached], func(t *testing.T) {
			m := NewMain()
			t.Cleanup(func() { _ = m.Close() })
			r := &RedisConfig{}
			r.setDefaults()
			r.Addrs = []string{addr}
			r.LocalCache.Enabled = cached
			backend, checks, err := m.buildSessionBackend(Config{Redis: r}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), nil)
			if err != nil {
				t.Fatal(err)
			}
			// Without the local cache the backend still announces its
			// writes, through a Cache that keeps no copies.
			if c, ok := backend.(*session.Cache); !ok || c.KeepsCopies() != cached {
				t.Fatalf("backend is %T (local cache %v)", backend, cached)
			}
			id, err := session.NewID("alice")
			if err != nil {
				t.Fatal(err)
			}
			const within = 3 * time.Second
			start := time.Now()
			_, err = backend.Load(context.Background(), id)
			if took := time.Since(start); !groupgate.IsCode(err, groupgate.Unavailable) || took > within {
				t.Fatalf("Load took %v and returned %v; want Unavailable within %v", took, err, within)
			}
			start = time.Now()
			err = checks[0].Func(context.Background())
			if took := time.Since(start); err == nil || took > within {
				t.Fatalf("the readiness check took %v and returned %v; want an error within %v", took, err, within)
			}
		})
	}
}

// TestServeFailsClosedWhileRedisIsDown kills serve's Redis under a signed-in
// browser: /auth answers 503 (never 200) and promptly, /readyz 503, and
// once Redis is back on its port both recover without a restart.
func TestServeFailsClosedWhileRedisIsDown(t *testing.T) {
	srv := sessiontest.StartRedisServer(t)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base, stop, done, logs := startServe(t, serveConfig(t, t.TempDir(), "redis:\n  addrs: ["+srv.Addr()+"]\nmetrics:\n  listen: "+metricsAddr+"\n"))
	alice := newBrowser(t)
	signIn(t, alice, base+"/login?rd="+url.QueryEscape(base+"/whoami"), "alice")
	if code, _ := authHeaders(t, alice, base); code != http.StatusOK {
		t.Fatalf("/auth before the outage = %d; logs:\n%s", code, logs)
	}
	if up := metricValue(t, "http://"+metricsAddr, "groupgate_outbox_stats_up"); up != 1 {
		t.Fatalf("groupgate_outbox_stats_up = %v, want 1 (the store answers)", up)
	}

	srv.Stop()
	// The local cache is on (the default): "down" starts when serve has
	// noticed, as its metric shows; until then nobody could have written a
	// revocation either.
	for deadline := time.Now().Add(3 * time.Second); metricValue(t, "http://"+metricsAddr, "groupgate_session_cache_ready") != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the local cache stayed on 3s after Redis died")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Run("auth answers 503 promptly while Redis is down", func(t *testing.T) {
		for range 5 {
			start := time.Now()
			code, _ := authHeaders(t, alice, base)
			if took := time.Since(start); code != http.StatusServiceUnavailable || took > 2*time.Second {
				t.Fatalf("/auth = %d after %v, want 503 within 2s", code, took)
			}
		}
	})
	t.Run("readyz answers 503 naming redis", func(t *testing.T) {
		if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"redis"`) {
			t.Fatalf("/readyz = %d %q", code, body)
		}
	})

	srv.Start()
	t.Run("both recover once Redis is back, without a restart", func(t *testing.T) {
		for deadline := time.Now().Add(10 * time.Second); ; {
			code, _ := authHeaders(t, alice, base)
			ready, _ := get(t, base+"/readyz")
			if code == http.StatusOK && ready == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/auth = %d, /readyz = %d 10s after Redis returned", code, ready)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	noGoroutineIn(t, "(*Syncer).RunOutbox", "(*Cache).subscribe")

	// go-redis's own lines go through slog, so the log stays JSON through
	// the outage, and a failure repeated on every request is written about
	// once per repeatWindow rather than on every request.
	t.Run("the log stays JSON and repeated warnings are held back", func(t *testing.T) {
		perMessage := map[string]int{}
		for line := range strings.Lines(logs.String()) {
			var rec struct {
				Level string `json:"level"`
				Msg   string `json:"msg"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("a log line is not JSON (%v): %q", err, line)
			}
			if rec.Level == "WARN" || rec.Level == "ERROR" {
				perMessage[rec.Msg]++
			}
		}
		for msg, n := range perMessage {
			// The outage lasts a few seconds: one line, plus one at most
			// if it straddles a window.
			if n > 2 {
				t.Errorf("%q was logged %d times during a short outage", msg, n)
			}
		}
	})
}
