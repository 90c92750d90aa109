package scim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store/postgres"
)

// BenchmarkSCIM measures what an IdP's push costs end to end: each request
// goes through the handler with bearer authentication, the syncer and a
// real store, on SQLite and PostgreSQL. Seeding is never timed. Run with
//
//	go test -run XXX -bench 'BenchmarkSCIM/.*/(create|patch)' -benchtime 1x -timeout 30m ./scim/
//	go test -run XXX -bench 'BenchmarkSCIM/.*/filtered' -timeout 30m ./scim/
//
// Figures are kept in docs/benchmarks.md.
func BenchmarkSCIM(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			// Creation runs on a store of its own so that it measures a
			// first push into an empty directory; the other two share one
			// seeded store.
			b.Run("create-10000-users", func(b *testing.B) {
				st, _ := be.open(b)
				benchCreateUsers(b, newEnvOn(b, st))
			})
			st, analyze := be.open(b)
			seed := &benchSeed{e: newEnvOn(b, st), analyze: analyze}
			b.Run("patch-add-10000-members", func(b *testing.B) {
				benchPatchAddMembers(b, seed)
			})
			b.Run("filtered-list-100000-users", func(b *testing.B) {
				benchFilteredList(b, seed)
			})
		})
	}
}

// benchCreateUsers sends POST /Users 10,000 times per round.
func benchCreateUsers(b *testing.B, e *env) {
	const n = 10000
	b.ReportAllocs()
	rounds := 0
	for b.Loop() {
		b.StopTimer()
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = benchUserJSON(fmt.Sprintf("new-r%d-%05d", rounds, i), i)
		}
		b.StartTimer()
		for i, body := range bodies {
			if w := benchSend(e.srv, "POST", "/scim/v2/Users", body); w.Code != 201 {
				b.Fatalf("POST /Users #%d: status %d: %s", i, w.Code, w.Body.String())
			}
		}
		rounds++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rounds*n), "ns/user")

	// Every POST answered 201; check that every user is really there and
	// one reads back as it was sent.
	got, err := e.st.CountUsers(e.ctx)
	if err != nil || got != rounds*n {
		b.Fatalf("CountUsers = %d, %v; want %d", got, err, rounds*n)
	}
	q := url.Values{"filter": {`userName eq "new-r0-04242"`}}
	list := benchExpect(b, benchSend(e.srv, "GET", "/scim/v2/Users?"+q.Encode(), nil), 200, "look up a created user")
	res, _ := list["Resources"].([]any)
	if list["totalResults"] != 1.0 || len(res) != 1 || res[0].(map[string]any)["displayName"] != "Bench new-r0-04242" {
		b.Fatalf("created user reads back as %v", list)
	}
}

// benchPatchAddMembers sends one PATCH adding 10,000 existing users to an
// empty group per round; the group is created outside the timer.
func benchPatchAddMembers(b *testing.B, seed *benchSeed) {
	const n = 10000
	seed.ensure(b, n, 2000)
	e := seed.e
	ops := make([]map[string]string, n)
	for i, id := range seed.ids[:n] {
		ops[i] = map[string]string{"value": id}
	}
	body, err := json.Marshal(map[string]any{
		"schemas":    []string{URNPatchOp},
		"Operations": []map[string]any{{"op": "add", "path": "members", "value": ops}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("PATCH body: %d bytes (limit %d)", len(body), DefaultMaxBodyBytes)
	b.ReportAllocs()
	rounds := 0
	for b.Loop() {
		b.StopTimer()
		name := fmt.Sprintf("bench-group-%d", rounds)
		g := benchExpect(b, benchSend(e.srv, "POST", "/scim/v2/Groups",
			[]byte(`{"schemas":["`+URNGroup+`"],"displayName":"`+name+`"}`)), 201, "POST /Groups")
		id, _ := g["id"].(string)
		b.StartTimer()
		w := benchSend(e.srv, "PATCH", "/scim/v2/Groups/"+id, body)
		b.StopTimer()
		out := benchExpect(b, w, 200, "PATCH /Groups add members")
		if members, _ := out["members"].([]any); len(members) != n {
			b.Fatalf("PATCH answered with %d members, want %d", len(members), n)
		}
		stored, err := e.st.ListGroupMembersBySource(e.ctx, name, groupgate.SourceSCIM)
		if err != nil || len(stored) != n {
			b.Fatalf("store has %d scim members of %s, %v; want %d", len(stored), name, err, n)
		}
		b.StartTimer()
		rounds++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rounds*n), "ns/member")
}

// benchFilteredList runs paged, filtered GET /Users over 100,000 users:
// an indexable prefix, a value path and a display-name lookup that must
// read users' documents, and a deep import page.
func benchFilteredList(b *testing.B, seed *benchSeed) {
	const n = 100000
	if testing.Short() {
		b.Skip("seeding 100,000 users is skipped in -short mode")
	}
	seed.ensure(b, n, 5000)
	cases := []struct {
		name   string
		query  url.Values
		total  int
		length int
		first  string // userName of the first resource
	}{
		{"userName-sw", url.Values{"filter": {`userName sw "user-0042"`}, "count": {"100"}},
			100, 100, "user-004200"},
		{"emails-value-path", url.Values{"filter": {`emails[type eq "work" and value ew "4242@example.com"]`}, "count": {"100"}},
			10, 10, "user-004242"},
		{"displayName-eq", url.Values{"filter": {`displayName eq "Bench user-077777"`}, "count": {"100"}},
			1, 1, "user-077777"},
		{"active-eq-true-page-901", url.Values{"filter": {`active eq true`}, "startIndex": {"90001"}, "count": {"100"}},
			n, 100, ""},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			target := "/scim/v2/Users?" + tc.query.Encode()
			check := func(out map[string]any) {
				b.Helper()
				res, _ := out["Resources"].([]any)
				if out["totalResults"] != float64(tc.total) || len(res) != tc.length || out["itemsPerPage"] != float64(tc.length) {
					b.Fatalf("GET %s: totalResults %v, %d resources, itemsPerPage %v; want %d, %d", target, out["totalResults"], len(res), out["itemsPerPage"], tc.total, tc.length)
				}
				if tc.first != "" {
					if got := res[0].(map[string]any)["userName"]; got != tc.first {
						b.Fatalf("GET %s: first userName %v, want %s", target, got, tc.first)
					}
				}
				for _, r := range res {
					if u, _ := r.(map[string]any)["userName"].(string); !strings.HasPrefix(u, "user-") {
						b.Fatalf("GET %s: unexpected resource %v", target, r)
					}
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				w := benchSend(seed.e.srv, "GET", target, nil)
				b.StopTimer()
				check(benchExpect(b, w, 200, "GET "+target))
				b.StartTimer()
			}
		})
	}
	// An IdP walking every active user: the page at 90,001 right after
	// the page at 89,901, as a walk asks for it (only the second timed).
	b.Run("active-eq-true-page-901-walking", func(b *testing.B) {
		q := url.Values{"filter": {`active eq true`}, "count": {"100"}}
		prev, next := q, url.Values{"filter": q["filter"], "count": q["count"]}
		prev.Set("startIndex", "89901")
		next.Set("startIndex", "90001")
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			benchExpect(b, benchSend(seed.e.srv, "GET", "/scim/v2/Users?"+prev.Encode(), nil), 200, "GET page 89,901")
			b.StartTimer()
			w := benchSend(seed.e.srv, "GET", "/scim/v2/Users?"+next.Encode(), nil)
			b.StopTimer()
			out := benchExpect(b, w, 200, "GET page 90,001")
			if res, _ := out["Resources"].([]any); len(res) != 100 || out["totalResults"] != float64(n) {
				b.Fatalf("page 90,001: %d resources of %v", len(res), out["totalResults"])
			}
			b.StartTimer()
		}
	})
}

// BenchmarkSCIMCreateRate is the import rate the issue-15 targets name:
// POST /Users through the handler on PostgreSQL, from one client and from
// 8 concurrent ones, as users/s. GROUPGATE_BENCH_SCIM_USERS sets the
// users per round (2,000).
//
//	go test -run '^$' -bench BenchmarkSCIMCreateRate -benchtime 1x ./scim/
func BenchmarkSCIMCreateRate(b *testing.B) {
	n := 2000
	if v := os.Getenv("GROUPGATE_BENCH_SCIM_USERS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n < 8 {
			b.Fatalf("GROUPGATE_BENCH_SCIM_USERS=%q: want a count of at least 8", v)
		}
	}
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("postgres/clients-%d", clients), func(b *testing.B) {
			var stmts stmtCounter
			st, _ := openPostgresWith(b, postgres.WithQueryTracer(&stmts))
			e := newEnvOn(b, st)
			rounds := 0
			stmts.n.Store(0)
			for b.Loop() {
				b.StopTimer()
				bodies := make([][]byte, n)
				for i := range bodies {
					bodies[i] = benchUserJSON(fmt.Sprintf("rate-r%d-%06d", rounds, i), i)
				}
				b.StartTimer()
				if msg := sendFromClients(clients, n, func(i int) string {
					if w := benchSend(e.srv, "POST", "/scim/v2/Users", bodies[i]); w.Code != 201 {
						return fmt.Sprintf("POST /Users #%d: status %d: %s", i, w.Code, w.Body.String())
					}
					return ""
				}); msg != "" {
					b.Fatal(msg)
				}
				b.StopTimer()
				rounds++
				b.StartTimer()
			}
			b.ReportMetric(float64(rounds*n)/b.Elapsed().Seconds(), "users/s")
			// Round trips per create: BEGIN and COMMIT count, a batch once.
			b.ReportMetric(float64(stmts.n.Load())/float64(rounds*n), "trips/user")
			if got, err := e.st.CountUsers(e.ctx); err != nil || got != rounds*n {
				b.Fatalf("CountUsers = %d, %v; want %d", got, err, rounds*n)
			}
		})
	}
}

// sendFromClients runs requests 0..n-1 from clients concurrent clients,
// each taking the next request when its last one is answered, and returns
// the first failure send reported ("" when none); the clients stop at it.
func sendFromClients(clients, n int, send func(i int) string) string {
	var next atomic.Int64
	var failed atomic.Value
	var wg stdsync.WaitGroup
	for range clients {
		wg.Go(func() {
			for failed.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if msg := send(i); msg != "" {
					failed.CompareAndSwap(nil, msg)
					return
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		return f.(string)
	}
	return ""
}
