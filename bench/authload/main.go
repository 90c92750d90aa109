// Command authload measures forward-auth throughput over real loopback TCP:
// groupgate's /auth with a valid session on in-process sessions, Redis, and
// Redis behind the local cache (session.Cache), against a bare net/http handler that writes the same headers.
// Every target gets the same keep-alive clients for the same time, in one
// run, so the figures are comparable.
//
//	go run ./bench/authload -duration 10s -conns 32 -redis 127.0.0.1:6379
//
// It only talks to servers it starts on 127.0.0.1 and stops by itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store/sqlite"
	"github.com/groupgate/groupgate/sync"
	"github.com/groupgate/groupgate/web"
	"github.com/redis/go-redis/v9"
)

type target struct {
	name    string
	handler http.Handler
	cookie  *http.Cookie
	close   func()
}

func main() {
	duration := flag.Duration("duration", 10*time.Second, "load time per target")
	conns := flag.Int("conns", 32, "concurrent keep-alive clients")
	redisAddr := flag.String("redis", "", "Redis host:port for the Redis target (empty: skip it)")
	flag.Parse()
	if *duration <= 0 || *duration > 5*time.Minute || *conns <= 0 || *conns > 1024 {
		log.Fatal("duration must be in (0, 5m] and conns in [1, 1024]")
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "authload")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	targets := []target{}
	mem := session.NewMemory()
	t, err := groupgateTarget(ctx, "groupgate /auth, in-process sessions", filepath.Join(dir, "mem.db"), mem)
	if err != nil {
		log.Fatal(err)
	}
	targets = append(targets, t)
	if *redisAddr != "" {
		client := redis.NewClient(&redis.Options{Addr: *redisAddr, PoolSize: *conns * 2})
		prefix := fmt.Sprintf("authload:%d:", time.Now().UnixNano())
		rb, err := session.NewRedis(client, prefix)
		if err != nil {
			log.Fatal(err)
		}
		t, err := groupgateTarget(ctx, "groupgate /auth, Redis sessions", filepath.Join(dir, "redis.db"), rb)
		if err != nil {
			log.Fatal(err)
		}
		inner := t.close
		t.close = inner
		defer func() {
			cleanupRedis(ctx, client, prefix)
			client.Close()
		}()
		targets = append(targets, t)

		// The same Redis behind the local cache; the session is read once
		// from Redis and then from memory until a change is published.
		cprefix := prefix + "cached:"
		crb, err := session.NewRedis(client, cprefix)
		if err != nil {
			log.Fatal(err)
		}
		cache := session.NewCache(crb)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = cache.WaitReady(wctx)
		cancel()
		if err != nil {
			log.Fatal(err)
		}
		ct, err := groupgateTarget(ctx, "groupgate /auth, Redis + local cache", filepath.Join(dir, "cached.db"), cache)
		if err != nil {
			log.Fatal(err)
		}
		cinner := ct.close
		ct.close = func() {
			cinner()
			hits, misses := cache.Stats()
			_ = cache.Close()
			fmt.Fprintf(os.Stderr, "local cache: %d hits, %d Redis reads\n", hits, misses)
		}
		targets = append(targets, ct)
	}
	targets = append(targets, bareTarget())

	fmt.Printf("%-40s %12s %10s %10s %10s\n", "target", "req/s", "p50", "p99", "max")
	for _, t := range targets {
		r, err := run(t, *duration, *conns)
		t.close()
		if err != nil {
			log.Fatalf("%s: %v", t.name, err)
		}
		fmt.Printf("%-40s %12.0f %10s %10s %10s\n", t.name, r.rps, r.p50, r.p99, r.max)
	}
}

// groupgateTarget builds the web server as serve does (SQLite store,
// syncer, session store) and a session for alice with two groups and an
// organization role, as a login would leave it.
func groupgateTarget(ctx context.Context, name, dbPath string, backend session.Backend) (target, error) {
	st, err := sqlite.Open(ctx, "file:"+dbPath)
	if err != nil {
		return target{}, err
	}
	if err := st.Migrate(ctx); err != nil {
		return target{}, err
	}
	syncer := sync.New(st, backend)
	u, m, err := syncer.Login(ctx, groupgate.Identity{Provider: "bench", Subject: "alice", Username: "alice", Email: "alice@example.com", Groups: []string{"eng", "platform-admins"}, GroupsPresent: true})
	if err != nil {
		return target{}, err
	}
	m.OrgRoles = map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin}
	sessions, err := session.NewStore(backend, []byte("authload-secret-authload-secret-0123456789"), session.WithTTL(time.Hour), session.WithSecureCookie(false))
	if err != nil {
		return target{}, err
	}
	login, err := broker.NewLogin(backend, nil)
	if err != nil {
		return target{}, err
	}
	public, _ := url.Parse("http://127.0.0.1")
	redirects, err := web.NewRedirectPolicy(public, nil)
	if err != nil {
		return target{}, err
	}
	srv, err := web.NewServer(web.Config{PublicURL: public, SessionTTL: time.Hour},
		web.Deps{Login: login, Sessions: sessions, Accounts: syncer, Redirects: redirects})
	if err != nil {
		return target{}, err
	}
	id, err := session.NewID(u.ID)
	if err != nil {
		return target{}, err
	}
	now := time.Now()
	rec := &session.Record{ID: id, UserID: u.ID, Provider: "bench", Identity: groupgate.Identity{Username: "alice", Email: "alice@example.com"}, Memberships: m, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	w := httptest.NewRecorder()
	if err := sessions.Start(w, httptest.NewRequest(http.MethodGet, "/callback/bench", nil), rec); err != nil {
		return target{}, err
	}
	cookies := w.Result().Cookies()
	if len(cookies) == 0 {
		return target{}, fmt.Errorf("no session cookie issued")
	}
	return target{name: name, handler: srv.Handler(), cookie: cookies[0], close: func() { st.Close() }}, nil
}

func bareTarget() target {
	ih := web.IdentityHeaders{User: "alice", Email: "alice@example.com", Memberships: groupgate.Memberships{
		Groups: []string{"eng", "platform-admins"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin},
	}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ih.Set(w.Header())
		w.WriteHeader(http.StatusOK)
	})
	return target{name: "bare net/http handler", handler: h, cookie: &http.Cookie{Name: "_groupgate", Value: "unused"}, close: func() {}}
}

type result struct {
	rps           float64
	p50, p99, max time.Duration
}

func run(t target, d time.Duration, conns int) (result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	srv := &http.Server{Handler: t.handler, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	endpoint := "http://" + ln.Addr().String() + "/auth"
	transport := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	var failures atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	latencies := make([][]time.Duration, conns)
	var wg stdsync.WaitGroup
	start := time.Now()
	for i := range conns {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, endpoint, nil)
			req.AddCookie(t.cookie)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || resp.Header.Get(web.HeaderUser) != "alice" {
						err = fmt.Errorf("status %d, user %q", resp.StatusCode, resp.Header.Get(web.HeaderUser))
					}
				}
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
					return
				}
				latencies[i] = append(latencies[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failures.Load() > 0 {
		return result{}, fmt.Errorf("%d failed requests, first: %v", failures.Load(), firstErr.Load())
	}
	all := slices.Concat(latencies...)
	slices.Sort(all)
	if len(all) == 0 {
		return result{}, fmt.Errorf("no request completed")
	}
	return result{
		rps: float64(len(all)) / elapsed.Seconds(),
		p50: all[len(all)/2].Round(time.Microsecond),
		p99: all[len(all)*99/100].Round(time.Microsecond),
		max: all[len(all)-1].Round(time.Microsecond),
	}, nil
}

func cleanupRedis(ctx context.Context, c *redis.Client, prefix string) {
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}
