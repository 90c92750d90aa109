package session_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
)

// BenchmarkLoad measures the forward-auth hot path: one Load per request,
// which for Redis is a single GET round trip.
func BenchmarkLoad(b *testing.B) {
	backends := []struct {
		name string
		new  func(b *testing.B) session.Backend
	}{
		{"memory", func(b *testing.B) session.Backend { return session.NewMemory() }},
		{"redis", func(b *testing.B) session.Backend {
			r, _, _ := newRedis(b, time.Now)
			return r
		}},
	}
	for _, bb := range backends {
		b.Run(bb.name, func(b *testing.B) {
			ctx := context.Background()
			backend := bb.new(b)
			id, err := session.NewID("alice")
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			rec := &session.Record{
				ID: id, UserID: "alice", Provider: "okta",
				Identity: groupgate.Identity{Provider: "okta", Subject: "s", Email: "alice@example.com", Groups: []string{"eng-a", "eng-b", "eng-c"}},
				Memberships: groupgate.Memberships{
					Groups:    []string{"eng-a", "eng-b", "eng-c"},
					OrgRoles:  map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin, "beta": groupgate.OrgRoleMember},
					RepoRoles: map[string]groupgate.RepoRole{"acme/api": groupgate.RepoRoleWrite},
				},
				CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			}
			if err := backend.Save(ctx, rec); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := backend.Load(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSetMembershipsIf measures the per-user cost of a large
// propagation on Redis: take a generation and rewrite the user's one live
// session, 8 users at a time as the syncer runs them.
func BenchmarkSetMembershipsIf(b *testing.B) {
	const users = 1000
	ctx := context.Background()
	r, _, _ := newRedis(b, time.Now)
	now := time.Now()
	for i := range users {
		u := fmt.Sprint("user", i)
		id, err := session.NewID(u)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Save(ctx, &session.Record{ID: id, UserID: u, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	m := groupgate.Memberships{Groups: []string{"eng"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember}}
	var next atomic.Int64
	b.SetParallelism(4) // with GOMAXPROCS=2: 8 writers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := fmt.Sprint("user", next.Add(1)%users)
			gens, err := r.NextGenerations(ctx, []string{u})
			if err != nil {
				b.Error(err)
				return
			}
			if applied, n, err := r.SetMembershipsIf(ctx, u, gens[u], m); err != nil || (applied && n != 1) {
				b.Errorf("SetMembershipsIf(%s) = %v, %d, %v", u, applied, n, err)
				return
			}
		}
	})
}

// BenchmarkSetMembershipsIfBatch measures the Redis side of a mapping
// removal reaching 10,000 users with one live session each, as the syncer
// sends it: generations taken for the whole set, then batches of 500 users
// written by 8 workers. It reports the wall time per 10,000 users and the
// CPU time per user of Redis (INFO cpu; on a private Redis, see redisCPU)
// and of this process, which a shared machine's load distorts far less
// than wall time.
//
//	go test -run '^$' -bench SetMembershipsIfBatch -benchtime 5x ./session/
func BenchmarkSetMembershipsIfBatch(b *testing.B) {
	const (
		users   = 10_000
		batch   = 500
		workers = 8
	)
	ctx := context.Background()
	r, client, _ := newRedis(b, time.Now)
	now := time.Now()
	ids := make([]string, users)
	for i := range users {
		ids[i] = fmt.Sprintf("user%05d", i)
		id, err := session.NewID(ids[i])
		if err != nil {
			b.Fatal(err)
		}
		rec := &session.Record{
			ID: id, UserID: ids[i], Provider: "okta",
			Identity:    groupgate.Identity{Provider: "okta", Subject: ids[i], Email: ids[i] + "@example.com", Groups: []string{"eng", "staff"}},
			Memberships: groupgate.Memberships{Groups: []string{"eng", "staff"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin}},
			CreatedAt:   now, ExpiresAt: now.Add(2 * time.Hour),
		}
		if err := r.Save(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	m := groupgate.Memberships{Groups: []string{"eng", "staff"}}
	var redisUsec, clientUsec float64
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		cpu, own := redisCPU(b, client), processCPU(b)
		b.StartTimer()
		gens, err := r.NextGenerations(ctx, ids)
		if err != nil {
			b.Fatal(err)
		}
		jobs := make(chan []session.SnapshotWrite)
		var wg stdsync.WaitGroup
		for range workers {
			wg.Go(func() {
				for writes := range jobs {
					out, err := r.SetMembershipsIfBatch(ctx, writes)
					if err != nil {
						b.Error(err)
						return
					}
					for i, res := range out {
						if res.Err != nil || !res.Applied || res.Sessions != 1 {
							b.Errorf("user %s: %+v, want applied to its one session", writes[i].UserID, res)
						}
					}
				}
			})
		}
		for part := range slices.Chunk(ids, batch) {
			writes := make([]session.SnapshotWrite, len(part))
			for i, u := range part {
				writes[i] = session.SnapshotWrite{UserID: u, Gen: gens[u], Memberships: m}
			}
			jobs <- writes
		}
		close(jobs)
		wg.Wait()
		b.StopTimer()
		redisUsec += redisCPU(b, client) - cpu
		clientUsec += processCPU(b) - own
		b.StartTimer()
	}
	b.ReportMetric(redisUsec/float64(b.N)/users, "redis-µs/user")
	b.ReportMetric(clientUsec/float64(b.N)/users, "client-µs/user")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/10000-users")
}

// processCPU is the CPU time, in µs, this process has used (user and
// system), garbage collection included.
func processCPU(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3
}

// redisCPU is the CPU time, in µs, the Redis server process has used
// (INFO cpu, user and system). It counts every client of that server:
// meaningful on a private one (GROUPGATE_FORCE_PRIVATE=1 scripts/test.sh).
func redisCPU(b *testing.B, client redis.UniversalClient) float64 {
	info, err := client.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			var sec float64
			if _, err := fmt.Sscan(v, &sec); err != nil {
				b.Fatalf("INFO cpu %s=%q: %v", k, v, err)
			}
			total += sec * 1e6
		}
	}
	return total
}
