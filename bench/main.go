// Command bench prints the table of issue 15's performance targets, every
// figure measured in one run on this machine: /auth over loopback TCP
// against a bare net/http handler measured in the same run (ratios, not
// absolute rates, are the targets), allocations per /auth request, /auth
// at 100 and 100,000 live sessions, and through `go test -bench` the login,
// propagation and SCIM figures on PostgreSQL and Redis.
//
//	go run ./bench           # quick mode: a few minutes
//	go run ./bench -long     # longer loads, 100,000-session propagation, 10,000-user imports
//	go run ./bench -oauth2-proxy=PATH   # measure this oauth2-proxy binary
//	go run ./bench -oauth2-proxy=off    # leave oauth2-proxy out
//
// oauth2-proxy v7.6.0's /oauth2/auth runs in the same rounds as /auth,
// signed in against the demo OIDC provider (package devidp) served in
// process, with its cookie and its Redis session store
// (-oauth2-proxy-sessions=cookie,redis). Its ratios are given to the
// bare handler both in the harness's process and in one of its own, as
// oauth2-proxy has, beside /auth with the local cache in a process of its
// own (the harness runs itself again for both). Its binary is -oauth2-proxy, else
// $GROUPGATE_BENCH_OAUTH2_PROXY, else a build through the Go module proxy
// kept in ~/.cache/groupgate/proxies/oauth2-proxy-v7.6.0 (made on the
// first run; a few minutes). When it cannot be had, its row says why.
//
// It starts every server it measures on 127.0.0.1, bounds every run in
// time, and stops what it started. PostgreSQL and Redis come from the
// environment of the tests (GROUPGATE_TEST_POSTGRES, GROUPGATE_TEST_REDIS;
// defaults 127.0.0.1:5432 and 127.0.0.1:6379).
package main

import (
	"bufio"
	"bytes"
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
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store/sqlite"
	"github.com/groupgate/groupgate/sync"
	"github.com/groupgate/groupgate/web"
)

type mode struct {
	load      time.Duration // per /auth load run
	rounds    int
	conns     int
	sessions  int // the many-sessions /auth figure
	logins    int
	propagate []int // sessions reached by a mapping removal
	scimUsers int
}

var (
	quick = mode{load: 600 * time.Millisecond, rounds: 9, conns: 32, sessions: 100_000, logins: 50, propagate: []int{10_000}, scimUsers: 2000}
	long  = mode{load: 2 * time.Second, rounds: 15, conns: 32, sessions: 100_000, logins: 1000, propagate: []int{10_000, 100_000}, scimUsers: 10_000}
)

// row is one line of the table.
type row struct {
	figure, value, target string
	pass                  string // "pass", "FAIL" or "-" (not a target)
}

type table struct{ rows []row }

func (t *table) add(figure, value, target string, ok bool) {
	p := "FAIL"
	if ok {
		p = "pass"
	}
	t.rows = append(t.rows, row{figure, value, target, p})
	fmt.Fprintf(os.Stderr, "  %s: %s (%s) %s\n", figure, value, target, p)
}

func (t *table) info(figure, value string) {
	t.rows = append(t.rows, row{figure, value, "", "-"})
	fmt.Fprintf(os.Stderr, "  %s: %s\n", figure, value)
}

func (t *table) failed(figure, target string, err error) {
	t.rows = append(t.rows, row{figure, "error: " + err.Error(), target, "FAIL"})
	fmt.Fprintf(os.Stderr, "  %s: error: %v\n", figure, err)
}

func (t *table) print(w io.Writer) {
	fmt.Fprintf(w, "| figure | measured | target | |\n|---|---|---|---|\n")
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.figure, r.value, r.target, r.pass)
	}
}

func main() {
	if os.Getenv(childEnv) != "" {
		if err := serveChild(); err != nil {
			log.Fatal(err)
		}
		return
	}
	longMode := flag.Bool("long", false, "longer loads and the 100,000-session propagation run")
	only := flag.String("only", "", "run only the sections matching this regexp (auth, login, propagation, scim)")
	o2p := oauth2ProxyOptions{binary: os.Getenv("GROUPGATE_BENCH_OAUTH2_PROXY")}
	flag.StringVar(&o2p.binary, "oauth2-proxy", o2p.binary, "oauth2-proxy binary to measure beside /auth (default $GROUPGATE_BENCH_OAUTH2_PROXY, else "+
		"built once through the Go module proxy into ~/.cache/groupgate/proxies); \"off\" leaves it out")
	flag.Func("oauth2-proxy-sessions", "oauth2-proxy session stores to measure, comma-separated (default cookie,redis)", o2p.setStores)
	flag.Parse()
	if o2p.stores == nil {
		o2p.stores = []string{"cookie", "redis"}
	}
	m := quick
	if *longMode {
		m = long
	}
	sections := regexp.MustCompile(*only)
	redisAddr := os.Getenv("GROUPGATE_TEST_REDIS")
	if redisAddr == "" {
		redisAddr = "127.0.0.1:6379"
	}
	started := time.Now()
	t := &table{}
	fmt.Fprintf(os.Stderr, "bench: %d CPUs, GOMAXPROCS %d, %s, mode %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), map[bool]string{false: "quick", true: "long"}[*longMode])
	if sections.MatchString("auth") {
		if err := authSection(context.Background(), t, m, redisAddr, o2p); err != nil {
			log.Fatalf("auth: %v", err)
		}
	}
	if sections.MatchString("login") {
		goBench(t, "./sync/", "BenchmarkLoginManyGroups/postgres", "1x", []string{"GROUPGATE_BENCH_LOGINS=" + strconv.Itoa(m.logins)}, func(r map[string]map[string]float64) {
			v := pick(r, "BenchmarkLoginManyGroups/postgres")
			if v == nil {
				t.failed("login callback, 1,000 groups (20 mapped), 100,000 mappings, PG: p99", "≤ 10 ms", fmt.Errorf("no result"))
				return
			}
			t.add("login callback, 1,000 groups (20 mapped), 100,000 mappings, PostgreSQL: p99 resolution + session write",
				fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, max %.1f ms", v["p50-ms"], v["p99-ms"], v["max-ms"]), "≤ 10 ms p99", v["p99-ms"] <= 10)
			t.add("resolutions per login", fmt.Sprintf("%.2f", v["resolutions/login"]), "one", v["resolutions/login"] <= 1)
		})
	}
	if sections.MatchString("propagation") {
		for _, n := range m.propagate {
			limit := 500.0
			if n > 10_000 {
				limit = 3000
			}
			goBench(t, "./bench/propagation/", "BenchmarkRemoveMappingReaches10000Sessions", "3x", []string{"GROUPGATE_BENCH_SESSIONS=" + strconv.Itoa(n)}, func(r map[string]map[string]float64) {
				fig := fmt.Sprintf("removal of a mapping → last of %d live sessions updated (PG, Redis, other replica's cache)", n)
				v := pick(r, "BenchmarkRemoveMappingReaches10000Sessions")
				if v == nil {
					t.failed(fig, "", fmt.Errorf("no result"))
					return
				}
				t.add(fig, fmt.Sprintf("%.0f ms (removal call %.0f ms)", v["ms-to-last-session"], v["ms-remove-call"]),
					fmt.Sprintf("≤ %.1f s", limit/1000), v["ms-to-last-session"] <= limit)
			})
		}
	}
	if sections.MatchString("scim") {
		goBench(t, "./scim/", "BenchmarkSCIMCreateRate", "1x", []string{"GROUPGATE_BENCH_SCIM_USERS=" + strconv.Itoa(m.scimUsers)}, func(r map[string]map[string]float64) {
			for _, c := range []struct {
				clients int
				target  float64
			}{{1, 1000}, {8, 3000}} {
				fig := fmt.Sprintf("SCIM POST /Users, PostgreSQL, %d client(s), %d users", c.clients, m.scimUsers)
				v := pick(r, fmt.Sprintf("BenchmarkSCIMCreateRate/postgres/clients-%d", c.clients))
				if v == nil {
					t.failed(fig, "", fmt.Errorf("no result"))
					continue
				}
				t.add(fig, fmt.Sprintf("%.0f users/s", v["users/s"]), fmt.Sprintf("≥ %.0f/s", c.target), v["users/s"] >= c.target)
			}
		})
		// Not a target of its own: what an IdP importing with Bulk gets
		// (the POST operations of one request commit together).
		goBench(t, "./scim/", "BenchmarkSCIMBulkCreateRate", "1x", nil, func(r map[string]map[string]float64) {
			for _, clients := range []int{1, 4} {
				fig := fmt.Sprintf("SCIM POST /Bulk of 1,000 user creates, PostgreSQL, %d client(s)", clients)
				v := pick(r, fmt.Sprintf("BenchmarkSCIMBulkCreateRate/postgres/clients-%d", clients))
				if v == nil {
					t.failed(fig, "", fmt.Errorf("no result"))
					continue
				}
				t.info(fig, fmt.Sprintf("%.0f users/s (%.4f round trips per user)", v["users/s"], v["trips/user"]))
			}
		})
		goBench(t, "./scim/", "BenchmarkSCIM/postgres/filtered", "10x", nil, func(r map[string]map[string]float64) {
			for _, c := range []struct{ name, fig string }{
				{"emails-value-path", `SCIM filter emails[type eq "work" and value ew …] over 100,000 users, PostgreSQL`},
				{"active-eq-true-page-901", "SCIM page at startIndex 90,001 (active eq true), PostgreSQL, asked cold"},
				{"active-eq-true-page-901-walking", "SCIM page at startIndex 90,001 (active eq true), PostgreSQL, in a walk (after 89,901)"},
			} {
				v := pick(r, "BenchmarkSCIM/postgres/filtered-list-100000-users/"+c.name)
				if v == nil {
					t.failed(c.fig, "≤ 20 ms", fmt.Errorf("no result"))
					continue
				}
				ms := v["ns/op"] / 1e6
				t.add(c.fig, fmt.Sprintf("%.2f ms", ms), "≤ 20 ms", ms <= 20)
			}
		})
	}
	fmt.Printf("\ngroupgate bench, %s, %d CPUs (%s), %s, %s mode, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"),
		runtime.NumCPU(), cpuModel(), runtime.Version(), map[bool]string{false: "quick", true: "long"}[*longMode], time.Since(started).Round(time.Second))
	t.print(os.Stdout)
}

// pick finds a benchmark's metrics by name, without the -GOMAXPROCS suffix.
func pick(r map[string]map[string]float64, name string) map[string]float64 {
	for k, v := range r {
		if strings.TrimRight(strings.TrimRight(k, "0123456789"), "-") == name || k == name {
			return v
		}
	}
	return nil
}

// goBench runs benchmarks of pkg matching re once each and hands their
// metrics to report. Its output goes to stderr as it comes.
func goBench(t *table, pkg, re, benchtime string, env []string, report func(map[string]map[string]float64)) {
	fmt.Fprintf(os.Stderr, "bench: go test -run '^$' -bench '%s' -benchtime %s %s %s\n", re, benchtime, strings.Join(env, " "), pkg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^$", "-bench", re, "-benchtime", benchtime, "-timeout", "20m", pkg)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, os.Stderr)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.failed("go test -bench "+re+" "+pkg, "", err)
		return
	}
	report(parseBench(&out))
}

// parseBench reads `go test -bench` output: name, iterations, then value
// unit pairs.
func parseBench(r io.Reader) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		out[f[0]] = m
	}
	return out
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// rss is this process's resident memory (server and load generator).
func rss() string { return rssOf("/proc/self/status") }

// rssOf reads VmRSS from a /proc/PID/status file.
func rssOf(statusFile string) string {
	b, err := os.ReadFile(statusFile)
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return fmt.Sprintf("%d MiB", kb/1024)
		}
	}
	return "?"
}

// target is one HTTP handler under load, or a server of its own at
// endpoint, and the cookies of its sessions (a session may span several
// cookies).
type target struct {
	name     string
	handler  http.Handler
	endpoint string // when set, load asks it instead of serving handler
	cookies  [][]*http.Cookie
	// accept checks a signed-in answer; nil: 200 with alice in
	// groupgate's user header.
	accept func(*http.Response) error
	close  func()
}

func authSection(ctx context.Context, t *table, m mode, redisAddr string, o2p oauth2ProxyOptions) error {
	dir, err := os.MkdirTemp("", "groupgate-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	client := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: m.conns * 2})
	defer client.Close()
	if err := client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", redisAddr, err)
	}
	prefix := fmt.Sprintf("groupgate-bench:%d:", time.Now().UnixNano())
	defer cleanupRedis(client, prefix)

	bare := bareTarget()
	rb, err := session.NewRedis(client, prefix+"plain:")
	if err != nil {
		return err
	}
	plain, err := groupgateTarget(ctx, "/auth, Redis only (no local cache)", filepath.Join(dir, "plain.db"), rb, 1)
	if err != nil {
		return err
	}
	defer plain.close()
	cached, cache, err := cachedTarget(ctx, client, prefix+"cached:", filepath.Join(dir, "cached.db"), 100)
	if err != nil {
		return err
	}
	defer cache.Close()
	defer cached.close()

	// The processes started for the comparison stop right after the
	// rounds (and on every return before), not at the end of the section.
	var stopProcesses []func()
	stopAll := func() {
		for _, stop := range stopProcesses {
			stop()
		}
		stopProcesses = nil
	}
	defer stopAll()
	proxies, notMeasured := startOAuth2Proxies(ctx, o2p, redisAddr)
	for _, p := range proxies {
		stopProcesses = append(stopProcesses, p.Close)
	}
	targets := []*target{bare, cached, plain}
	// The proxies run in processes of their own: so do their floor and
	// the /auth they are compared with.
	var bareOwn, cachedOwn *target
	if len(proxies) > 0 {
		if bareOwn, err = startChild(childBare, redisAddr, ""); err != nil {
			return err
		}
		stopProcesses = append(stopProcesses, bareOwn.close)
		if cachedOwn, err = startChild(childCached, redisAddr, prefix+"child-cached:"); err != nil {
			return err
		}
		stopProcesses = append(stopProcesses, cachedOwn.close)
		targets = append(targets, bareOwn, cachedOwn)
	}
	for _, p := range proxies {
		targets = append(targets, p.target)
	}
	// The machine is shared: a neighbour's build can halve every rate
	// for a second. Targets therefore run in interleaved rounds, and each
	// ratio is the median of the ratios within a round.
	fmt.Fprintf(os.Stderr, "bench: /auth over loopback, %d connections, %d rounds of %v per target\n", m.conns, m.rounds, m.load)
	rs, err := rounds(m, targets...)
	if err != nil {
		return err
	}
	proxyRSS := make([]string, len(proxies))
	for i, p := range proxies {
		proxyRSS[i] = p.rss()
	}
	stopAll()
	bs, cs, ps := rs[0], rs[1], rs[2]
	t.info("bare net/http handler, same headers, 32 connections", fmt.Sprintf("%.0f req/s (median of rounds); %s", median(rates(bs)), bs[len(bs)/2].lat()))
	rc, rp := ratio(cs, bs), ratio(ps, bs)
	t.add("/auth, Redis + local cache, 32 connections", fmt.Sprintf("%.2f× bare (%.0f req/s; %s; RSS %s)", rc, median(rates(cs)), cs[len(cs)/2].lat(), cs[len(cs)-1].rss), "≥ 0.85×", rc >= 0.85)
	t.add("/auth, Redis only (cache off), 32 connections", fmt.Sprintf("%.2f× bare (%.0f req/s; %s)", rp, median(rates(ps)), ps[len(ps)/2].lat()), "≥ 0.5×", rp >= 0.5)
	if bareOwn != nil {
		bo, co := rs[3], rs[4]
		t.info(bareOwn.name+", 32 connections", fmt.Sprintf("%.2f× bare (%.0f req/s; %s)", ratio(bo, bs), median(rates(bo)), bo[len(bo)/2].lat()))
		t.info(cachedOwn.name+", 32 connections", fmt.Sprintf("%.2f× bare in its own process (%.0f req/s; %s)", ratio(co, bo), median(rates(co)), co[len(co)/2].lat()))
		for i, p := range proxies {
			pr := rs[5+i]
			t.info(p.target.name+", 32 connections", fmt.Sprintf("%.2f× bare in its own process, %.2f× bare (%.0f req/s; %s; its RSS %s)",
				ratio(pr, bo), ratio(pr, bs), median(rates(pr)), pr[len(pr)/2].lat(), proxyRSS[i]))
		}
	}
	for _, row := range notMeasured {
		t.info(row.figure, row.value)
	}

	// Allocations in process: the same request through each handler.
	ab, ac, ap := allocs(bare), allocs(cached), allocs(plain)
	t.add("/auth allocations per request, cached path (in process, httptest)",
		fmt.Sprintf("%d allocs (bare handler %d: +%d); Redis only: %d", ac, ab, ac-ab, ap), "none beyond net/http's (bare)", ac <= ab)

	// Many sessions: the same cached deployment, clients cycling through
	// every session.
	fmt.Fprintf(os.Stderr, "bench: creating %d sessions\n", m.sessions)
	many, manyCache, err := cachedTarget(ctx, client, prefix+"many:", filepath.Join(dir, "many.db"), m.sessions)
	if err != nil {
		return err
	}
	defer manyCache.Close()
	defer many.close()
	// Every session read once from Redis into the local cache; again
	// while the subscriber still drains the creation's invalidations
	// (which drop the entries), at most three times.
	for range 3 {
		if warm(many); manyCache.Len() >= m.sessions {
			break
		}
	}
	hits0, misses0 := manyCache.Stats()
	rs, err = rounds(m, cached, many)
	if err != nil {
		return err
	}
	hits1, misses1 := manyCache.Stats()
	r := ratio(rs[1], rs[0])
	t.add(fmt.Sprintf("/auth at %d live sessions vs 100 (cached)", m.sessions),
		fmt.Sprintf("%.2f× (%.0f vs %.0f req/s; %s; RSS %s; %.0f %% from memory)", r, median(rates(rs[1])), median(rates(rs[0])), rs[1][len(rs[1])/2].lat(), rs[1][len(rs[1])-1].rss,
			100*float64(hits1-hits0)/float64(max(hits1-hits0+misses1-misses0, 1))), "within 10 %", r >= 0.9)
	return nil
}

// rounds runs m.rounds rounds of load over every target in turn and
// returns each target's results, sorted by rate.
func rounds(m mode, targets ...*target) ([][]result, error) {
	out := make([][]result, len(targets))
	for range m.rounds {
		for i, t := range targets {
			r, err := load(t, m.load, m.conns)
			if err != nil {
				return nil, err
			}
			out[i] = append(out[i], r)
		}
	}
	return out, nil
}

// ratio is the median over rounds of a's rate over b's in the same round.
func ratio(a, b []result) float64 {
	rs := make([]float64, len(a))
	for i := range a {
		rs[i] = a[i].rps / b[i].rps
	}
	return median(rs)
}

func rates(rs []result) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.rps
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// groupgateTarget builds the web server as serve does (SQLite store,
// syncer, session store) with n sessions of alice, who has two groups and
// an organization role.
func groupgateTarget(ctx context.Context, name, dbPath string, backend session.Backend, n int) (*target, error) {
	st, err := sqlite.Open(ctx, "file:"+dbPath)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		return nil, err
	}
	syncer := sync.New(st, backend)
	u, mem, err := syncer.Login(ctx, groupgate.Identity{Provider: "bench", Subject: "alice", Username: "alice", Email: "alice@example.com", Groups: []string{"eng", "platform-admins"}, GroupsPresent: true})
	if err != nil {
		return nil, err
	}
	mem.OrgRoles = map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin}
	sessions, err := session.NewStore(backend, []byte("bench-secret-bench-secret-0123456789abcdef"), session.WithTTL(time.Hour), session.WithSecureCookie(false))
	if err != nil {
		return nil, err
	}
	login, err := broker.NewLogin(backend, nil)
	if err != nil {
		return nil, err
	}
	public, _ := url.Parse("http://127.0.0.1")
	redirects, err := web.NewRedirectPolicy(public, nil)
	if err != nil {
		return nil, err
	}
	srv, err := web.NewServer(web.Config{PublicURL: public, SessionTTL: time.Hour},
		web.Deps{Login: login, Sessions: sessions, Accounts: syncer, Redirects: redirects})
	if err != nil {
		return nil, err
	}
	cookies := make([][]*http.Cookie, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg stdsync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				id, err := session.NewID(u.ID)
				if err == nil {
					now := time.Now()
					rec := &session.Record{ID: id, UserID: u.ID, Provider: "bench", Identity: groupgate.Identity{Username: "alice", Email: "alice@example.com"}, Memberships: mem, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
					w := httptest.NewRecorder()
					if err = sessions.Start(w, httptest.NewRequest(http.MethodGet, "/callback/bench", nil), rec); err == nil {
						if cs := w.Result().Cookies(); len(cs) > 0 {
							cookies[i] = cs[:1]
						} else {
							err = fmt.Errorf("no session cookie issued")
						}
					}
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	return &target{name: name, handler: srv.Handler(), cookies: cookies, close: func() { st.Close() }}, nil
}

func cachedTarget(ctx context.Context, client redis.UniversalClient, prefix, dbPath string, n int) (*target, *session.Cache, error) {
	rb, err := session.NewRedis(client, prefix)
	if err != nil {
		return nil, nil, err
	}
	cache := session.NewCache(rb)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := cache.WaitReady(wctx); err != nil {
		_ = cache.Close()
		return nil, nil, err
	}
	t, err := groupgateTarget(ctx, "/auth, Redis + local cache", dbPath, cache, n)
	if err != nil {
		_ = cache.Close()
		return nil, nil, err
	}
	return t, cache, nil
}

func bareTarget() *target {
	ih := web.IdentityHeaders{User: "alice", Email: "alice@example.com", Memberships: groupgate.Memberships{
		Groups: []string{"eng", "platform-admins"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin},
	}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ih.Set(w.Header())
		w.WriteHeader(http.StatusOK)
	})
	return &target{name: "bare net/http handler", handler: h, cookies: [][]*http.Cookie{{{Name: "_groupgate", Value: "unused"}}}, close: func() {}}
}

// allocs is the allocations of one request through t's handler in
// process, with the recorder and request allocated the same way for
// every target.
func allocs(t *target) int64 {
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodGet, "/auth", nil)
			addCookies(req, t.cookies[0])
			w := httptest.NewRecorder()
			t.handler.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("%s: status %d", t.name, w.Code)
			}
		}
	})
	return r.AllocsPerOp()
}

// warm sends one request per session in process.
func warm(t *target) {
	var next atomic.Int64
	var wg stdsync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(t.cookies) {
					return
				}
				req := httptest.NewRequest(http.MethodGet, "/auth", nil)
				addCookies(req, t.cookies[i])
				t.handler.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
	wg.Wait()
}

type result struct {
	rps                    float64
	p50, p99, p999, maxLat time.Duration
	rss                    string
}

func (r result) lat() string {
	return fmt.Sprintf("p50 %v p99 %v p99.9 %v", r.p50, r.p99, r.p999)
}

// load sends keep-alive GET /auth (or t's endpoint) from conns clients
// for d (and at most 10 million requests), each client cycling through
// the sessions from its own starting point, and fails on any answer but
// a signed-in one.
func load(t *target, d time.Duration, conns int) (result, error) {
	endpoint := t.endpoint
	if endpoint == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return result{}, err
		}
		srv := &http.Server{Handler: t.handler, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		endpoint = "http://" + ln.Addr().String() + "/auth"
	}
	accept := t.accept
	if accept == nil {
		accept = acceptGroupgateAuth
	}
	transport := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	const maxRequests = 10_000_000
	var sent atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	latencies := make([][]time.Duration, conns)
	var wg stdsync.WaitGroup
	start := time.Now()
	for c := range conns {
		wg.Go(func() {
			k := c * len(t.cookies) / conns
			for time.Now().Before(deadline) && sent.Add(1) <= maxRequests {
				req, _ := http.NewRequest(http.MethodGet, endpoint, nil)
				addCookies(req, t.cookies[k%len(t.cookies)])
				k++
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					err = accept(resp)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				latencies[c] = append(latencies[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return result{}, fmt.Errorf("%s: %w", t.name, err)
	}
	all := slices.Concat(latencies...)
	if len(all) == 0 {
		return result{}, fmt.Errorf("%s: no request completed", t.name)
	}
	slices.Sort(all)
	q := func(f float64) time.Duration {
		return all[min(len(all)-1, int(float64(len(all))*f))].Round(time.Microsecond)
	}
	return result{rps: float64(len(all)) / elapsed.Seconds(), p50: q(0.5), p99: q(0.99), p999: q(0.999), maxLat: all[len(all)-1], rss: rss()}, nil
}

// acceptGroupgateAuth is a signed-in answer of groupgate's /auth (and of
// the bare handler): 200 with alice as the user.
func acceptGroupgateAuth(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK || resp.Header.Get(web.HeaderUser) != "alice" {
		return fmt.Errorf("status %d, user %q", resp.StatusCode, resp.Header.Get(web.HeaderUser))
	}
	return nil
}

func addCookies(req *http.Request, cookies []*http.Cookie) {
	for _, c := range cookies {
		req.AddCookie(c)
	}
}

func cleanupRedis(c *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			c.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		c.Unlink(ctx, keys...)
	}
}
