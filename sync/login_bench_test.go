package sync_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/postgres"
	"github.com/groupgate/groupgate/sync"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// countingStore counts the resolutions made through it: each reads the
// mappings of the resolved users' groups once (GetUserGrants for one
// user, MappingsForGroups for many), so these calls are the resolutions.
type countingStore struct {
	store.Store
	resolutions *atomic.Int64
}

func (c countingStore) MappingsForGroups(ctx context.Context, groups []string) ([]groupgate.OrgMapping, []groupgate.RepoMapping, error) {
	c.resolutions.Add(1)
	return c.Store.MappingsForGroups(ctx, groups)
}

func (c countingStore) GetUserGrants(ctx context.Context, userID string) (store.UserGrants, error) {
	c.resolutions.Add(1)
	return c.Store.GetUserGrants(ctx, userID)
}

func (c countingStore) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	return c.Store.InTx(ctx, func(tx store.Store) error { return fn(countingStore{tx, c.resolutions}) })
}

// tripCounter counts round trips: each PostgreSQL statement and each
// pipelined batch once (a pgx tracer), and each Redis command and each
// pipeline or MULTI once (a go-redis hook).
type tripCounter struct{ pg, redis atomic.Int64 }

func (c *tripCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.pg.Add(1)
	return ctx
}

func (c *tripCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *tripCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.pg.Add(1)
	return ctx
}

func (c *tripCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (c *tripCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (c *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.redis.Add(1)
		return next(ctx, cmd)
	}
}

func (c *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.redis.Add(1)
		return next(ctx, cmds)
	}
}

// BenchmarkLoginManyGroups is the login callback's work after the IdP
// exchange, as web's finish step does it: Syncer.Login (user, group set,
// resolution), the session write to Redis, and the Refresh that follows
// it. The user is in 1,000 groups of which 20 are mapped, among 100,000
// mappings (10,000 groups × 10) over 5,000 organizations and 5,000
// repositories. It reports p50/p99 of one login and the resolutions per
// login, and on PostgreSQL the round trips per login to each server.
// GROUPGATE_BENCH_LOGINS sets the number of timed logins (200).
//
//	go test -run '^$' -bench 'BenchmarkLoginManyGroups/postgres' -benchtime 1x ./sync/
func BenchmarkLoginManyGroups(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchLoginManyGroups(b, newStore(b), nil, nil) })
	b.Run("postgres", func(b *testing.B) {
		ctx := context.Background()
		dsn := testenv.Postgres(b)
		var trips tripCounter
		st, err := postgres.Open(ctx, dsn, postgres.WithQueryTracer(&trips))
		if err != nil {
			b.Fatalf("open postgres: %v", err)
		}
		b.Cleanup(func() { _ = st.Close() })
		if err := st.Migrate(ctx); err != nil {
			b.Fatalf("migrate: %v", err)
		}
		// Statistics as autovacuum would soon gather them: without them
		// PostgreSQL plans over 100,000 fresh rows as if the table were
		// empty, which no running database sees.
		benchLoginManyGroups(b, st, func() error {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return err
			}
			defer func() { _ = conn.Close(ctx) }()
			_, err = conn.Exec(ctx, "ANALYZE")
			return err
		}, &trips)
	})
}

func benchLoginManyGroups(b *testing.B, st store.Store, analyze func() error, trips *tripCounter) {
	ctx := context.Background()
	start := time.Now()
	mapped := seedMappings(b, st, 5000, 10000, 10)
	b.Logf("seeded 100,000 mappings in %v", time.Since(start).Round(time.Millisecond))
	if analyze != nil {
		if err := analyze(); err != nil {
			b.Fatalf("analyze: %v", err)
		}
	}
	groups := make([]string, 0, 1000)
	for i := range 20 {
		groups = append(groups, mapped[i*500])
	}
	for i := range 980 {
		groups = append(groups, fmt.Sprintf("unmapped-%04d", i))
	}
	client, prefix := testenv.Redis(b)
	if trips != nil {
		client.AddHook(trips)
	}
	backend, err := session.NewRedis(client, prefix)
	if err != nil {
		b.Fatal(err)
	}
	var resolutions atomic.Int64
	s := sync.New(countingStore{st, &resolutions}, backend)
	logins := 200
	if v := os.Getenv("GROUPGATE_BENCH_LOGINS"); v != "" {
		if _, err := fmt.Sscan(v, &logins); err != nil || logins < 1 {
			b.Fatalf("GROUPGATE_BENCH_LOGINS=%q: want a positive count", v)
		}
	}
	ident := groupgate.Identity{Provider: "bench", Subject: "big", Username: "big", Email: "big@example.com", Groups: groups, GroupsPresent: true}
	login := func() string {
		user, m, err := s.Login(ctx, ident)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Groups) != 1000 || len(m.OrgRoles) == 0 || len(m.RepoRoles) == 0 {
			b.Fatalf("login resolved %d groups, %d orgs, %d repos", len(m.Groups), len(m.OrgRoles), len(m.RepoRoles))
		}
		id, err := session.NewID(user.ID)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		rec := &session.Record{ID: id, UserID: user.ID, Provider: "bench", Identity: ident, Memberships: m, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := backend.Save(ctx, rec); err != nil {
			b.Fatal(err)
		}
		// As web's finish step: a push ordered after the session write
		// when one may be needed.
		s.SessionStarted(ctx, user.ID)
		return id
	}
	// The first login creates the user and warms the name cache. Each
	// timed login finds the previous one's session live (a second device)
	// and ends it after the timer: every push rewrites each live session
	// of the user, so a user piling up hundreds of sessions would measure
	// something else (docs/decisions.md, the per-user snapshot spike).
	prev := login()
	for b.Loop() {
		resolutions.Store(0)
		var pgTrips, redisTrips int64
		times := make([]time.Duration, logins)
		for i := range times {
			var pg0, redis0 int64
			if trips != nil {
				pg0, redis0 = trips.pg.Load(), trips.redis.Load()
			}
			t0 := time.Now()
			id := login()
			times[i] = time.Since(t0)
			if trips != nil {
				pgTrips += trips.pg.Load() - pg0
				redisTrips += trips.redis.Load() - redis0
			}
			if err := backend.Delete(ctx, prev); err != nil {
				b.Fatal(err)
			}
			prev = id
		}
		slices.Sort(times)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(times[len(times)/2]), "p50-ms")
		b.ReportMetric(ms(times[len(times)*99/100]), "p99-ms")
		b.ReportMetric(ms(times[len(times)-1]), "max-ms")
		b.ReportMetric(float64(resolutions.Load())/float64(logins), "resolutions/login")
		if trips != nil {
			b.ReportMetric(float64(pgTrips)/float64(logins), "pg-trips/login")
			b.ReportMetric(float64(redisTrips)/float64(logins), "redis-trips/login")
		}
	}
}
