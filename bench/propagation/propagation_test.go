package propagation

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store/postgres"
	"github.com/groupgate/groupgate/sync"
)

// startProfile starts a CPU profile written to file and returns what
// stops it.
func startProfile(b *testing.B, file string) (stop func()) {
	out, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := out.Close(); err != nil {
			b.Error(err)
		}
	}
}

// sessionCount is the number of users, each with one live session:
// 10,000, or GROUPGATE_BENCH_SESSIONS (the harness's long mode asks for
// 100,000).
func sessionCount(b *testing.B) int {
	n := 10_000
	if v := os.Getenv("GROUPGATE_BENCH_SESSIONS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
			b.Fatalf("GROUPGATE_BENCH_SESSIONS=%q: want a positive count", v)
		}
	}
	return n
}

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns
// the first error.
func parallel(n, workers int, fn func(i int) error) error {
	var (
		next atomic.Int64
		wg   stdsync.WaitGroup
		mu   stdsync.Mutex
		err  error
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if e := fn(i); e != nil {
					mu.Lock()
					err = e
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return err
}

// BenchmarkRemoveMappingReaches10000Sessions times RemoveOrgMapping, made
// through one replica's syncer, until the last of 10,000 sessions (read
// through another replica's cached backend) no longer shows the role
// (ms-to-last-session). It also reports the removal call alone and when
// its last snapshot write returned (ms-last-write: every session written
// and every replica told; the rest of ms-to-last-session is the reader's
// polling round, 10,000 reads). GROUPGATE_BENCH_SESSIONS changes the
// number of sessions; GROUPGATE_BENCH_PHASES=1 logs each removal's
// timeline (phases); GROUPGATE_BENCH_CPUPROFILE=FILE writes a CPU profile
// of the timed removals only.
//
//	go test -run '^$' -bench . -benchtime 3x ./bench/propagation/
func BenchmarkRemoveMappingReaches10000Sessions(b *testing.B) {
	users := sessionCount(b)
	ctx := context.Background()
	st, err := postgres.Open(ctx, testenv.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	client, prefix := testenv.Redis(b)
	writerBackend, err := session.NewRedis(client, prefix)
	if err != nil {
		b.Fatal(err)
	}
	writer := session.NewCache(writerBackend)
	b.Cleanup(func() { _ = writer.Close() })
	readerBackend, _ := session.NewRedis(client, prefix)
	reader := session.NewCache(readerBackend)
	b.Cleanup(func() { _ = reader.Close() })
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := writer.WaitReady(wctx); err != nil {
		b.Fatal(err)
	}
	if err := reader.WaitReady(wctx); err != nil {
		b.Fatal(err)
	}
	ph := newPhases()
	syncer := sync.New(phaseStore{st, ph}, phaseSessions{writer, ph})

	org, err := st.CreateOrganization(ctx, groupgate.Organization{Name: "acme"})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, users)
	setup := time.Now()
	err = parallel(users, 16, func(i int) error {
		u, err := st.CreateUser(ctx, groupgate.User{UserName: fmt.Sprintf("user%05d", i), Active: true})
		if err != nil {
			return err
		}
		if _, err := st.UpdateGroupSet(ctx, u.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) {
			return groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceSCIM}}, nil
		}); err != nil {
			return err
		}
		id, err := session.NewID(u.ID)
		if err != nil {
			return err
		}
		now := time.Now()
		ids[i] = id
		return writer.Save(ctx, &session.Record{ID: id, UserID: u.ID, Memberships: groupgate.Memberships{Groups: []string{"eng"}},
			CreatedAt: now, ExpiresAt: now.Add(2 * time.Hour)})
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("setup of %d users with sessions: %v", users, time.Since(setup).Round(time.Millisecond))

	// allShow waits until every session's acme role satisfies want and
	// returns when the last one was first seen doing so.
	allShow := func(start time.Time, want func(groupgate.OrgRole) bool) (time.Duration, error) {
		pending := make([]bool, users)
		for i := range pending {
			pending[i] = true
		}
		var last atomic.Int64
		deadline := time.Now().Add(time.Minute)
		for left := users; left > 0; {
			err := parallel(users, 32, func(i int) error {
				if !pending[i] {
					return nil
				}
				rec, err := reader.Load(ctx, ids[i])
				if err != nil {
					return err
				}
				if want(rec.Memberships.OrgRoles[org.Name]) {
					pending[i] = false
					seen := int64(time.Since(start))
					for {
						cur := last.Load()
						if seen <= cur || last.CompareAndSwap(cur, seen) {
							break
						}
					}
				}
				return nil
			})
			if err != nil {
				return 0, err
			}
			left = 0
			for _, p := range pending {
				if p {
					left++
				}
			}
			if left > 0 && time.Now().After(deadline) {
				return 0, fmt.Errorf("%d sessions still stale after a minute", left)
			}
		}
		return time.Duration(last.Load()), nil
	}

	var total, call, lastWrite time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if _, err := syncer.AddOrgMapping(ctx, "bench", org.ID, "eng", groupgate.OrgRoleAdmin); err != nil {
			b.Fatal(err)
		}
		if _, err := allShow(time.Now(), func(r groupgate.OrgRole) bool { return r == groupgate.OrgRoleAdmin }); err != nil {
			b.Fatal(err)
		}
		stopProfile := func() {}
		if f := os.Getenv("GROUPGATE_BENCH_CPUPROFILE"); f != "" && i == b.N-1 {
			stopProfile = startProfile(b, f)
		}
		b.StartTimer()
		start := time.Now()
		ph.begin(start)
		if _, err := syncer.RemoveOrgMapping(ctx, "bench", org.ID, "eng"); err != nil {
			b.Fatal(err)
		}
		callTime := time.Since(start)
		call += callTime
		d, err := allShow(start, func(r groupgate.OrgRole) bool { return r == "" })
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		stopProfile()
		total += d
		lastWrite += time.Duration(ph.lastWrite.Load())
		for _, l := range ph.end() {
			b.Log(l)
		}
		if ph.print {
			b.Logf("removal call %v, last write %v, last session seen %v", callTime, time.Duration(ph.lastWrite.Load()), d)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-last-session")
	b.ReportMetric(float64(call.Milliseconds())/float64(b.N), "ms-remove-call")
	b.ReportMetric(float64(lastWrite.Milliseconds())/float64(b.N), "ms-last-write")
	b.ReportMetric(0, "ns/op")
}
