package session_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/session/sessiontest"
)

func newCache(t testing.TB, client redis.UniversalClient, prefix string, now func() time.Time, opts ...session.CacheOption) *session.Cache {
	t.Helper()
	r, err := session.NewRedis(client, prefix, session.WithNow(now))
	if err != nil {
		t.Fatal(err)
	}
	c := session.NewCache(r, opts...)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("cache never subscribed: %v", err)
	}
	return c
}

func TestCacheConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T, clock *sessiontest.Clock) session.Backend {
		client, prefix := testenv.Redis(t)
		return newCache(t, client, prefix, clock.Now)
	})
}

func saveFor(t *testing.T, b session.Backend, userID string, m groupgate.Memberships) string {
	t.Helper()
	id, err := session.NewID(userID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := b.Save(context.Background(), &session.Record{ID: id, UserID: userID, Memberships: m, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestCacheAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	admin := groupgate.Memberships{Groups: []string{"eng"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin}}
	member := groupgate.Memberships{Groups: []string{}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember}}

	t.Run("a rewrite through one replica reaches the other's cache at once", func(t *testing.T) {
		client, prefix := testenv.Redis(t)
		a := newCache(t, client, prefix, time.Now, session.WithCacheTTL(10*time.Second))
		b := newCache(t, client, prefix, time.Now, session.WithCacheTTL(10*time.Second))
		id := saveFor(t, a, "alice", admin)
		// The save's own invalidation may reach b after its first load.
		for deadline := time.Now().Add(time.Second); ; {
			if _, err := b.Load(ctx, id); err != nil {
				t.Fatal(err)
			}
			if hits, _ := b.Stats(); hits >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("replica b never answered from memory")
			}
		}
		if n, err := a.SetMemberships(ctx, "alice", member); err != nil || n != 1 {
			t.Fatalf("SetMemberships = %d, %v", n, err)
		}
		deadline := time.Now().Add(time.Second)
		for {
			rec, err := b.Load(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Memberships.OrgRoles["acme"] == groupgate.OrgRoleMember {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica b still serves acme=%s a second after the rewrite", rec.Memberships.OrgRoles["acme"])
			}
			time.Sleep(time.Millisecond)
		}
	})

	t.Run("a generation-checked rewrite through one replica reaches the other's cache, a skipped one changes nothing", func(t *testing.T) {
		client, prefix := testenv.Redis(t)
		a := newCache(t, client, prefix, time.Now, session.WithCacheTTL(10*time.Second))
		b := newCache(t, client, prefix, time.Now, session.WithCacheTTL(10*time.Second))
		id := saveFor(t, a, "alice", admin)
		older, err := a.NextGenerations(ctx, []string{"alice"})
		if err != nil {
			t.Fatal(err)
		}
		newer, err := b.NextGenerations(ctx, []string{"alice"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Load(ctx, id); err != nil {
			t.Fatal(err)
		}
		if applied, n, err := b.SetMembershipsIf(ctx, "alice", newer["alice"], member); err != nil || !applied || n != 1 {
			t.Fatalf("newer SetMembershipsIf = %v, %d, %v; want applied to 1", applied, n, err)
		}
		if applied, _, err := a.SetMembershipsIf(ctx, "alice", older["alice"], admin); err != nil || applied {
			t.Fatalf("older SetMembershipsIf = %v, %v; want skipped without error", applied, err)
		}
		for _, c := range []*session.Cache{a, b} {
			deadline := time.Now().Add(time.Second)
			for {
				rec, err := c.Load(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if rec.Memberships.OrgRoles["acme"] == groupgate.OrgRoleMember {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("a replica still serves acme=%s a second after the rewrite", rec.Memberships.OrgRoles["acme"])
				}
				time.Sleep(time.Millisecond)
			}
		}
	})

	t.Run("a batch rewrite through one replica reaches the other's cache at once for every user in it", func(t *testing.T) {
		client, prefix := testenv.Redis(t)
		a := newCache(t, client, prefix, time.Now, session.WithCacheTTL(10*time.Second))
		b := newCache(t, client, prefix, time.Now, session.WithCacheTTL(10*time.Second))
		users := []string{"alice", "bob"}
		ids := map[string]string{}
		for _, u := range users {
			ids[u] = saveFor(t, a, u, admin)
		}
		// Warm b until it answers both from memory (the saves' own
		// invalidations may arrive after the first loads).
		for deadline := time.Now().Add(time.Second); ; {
			for _, u := range users {
				if _, err := b.Load(ctx, ids[u]); err != nil {
					t.Fatal(err)
				}
			}
			if hits, _ := b.Stats(); hits >= 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("replica b never answered from memory")
			}
		}
		gens, err := a.NextGenerations(ctx, users)
		if err != nil {
			t.Fatal(err)
		}
		out, err := a.SetMembershipsIfBatch(ctx, []session.SnapshotWrite{
			{UserID: "alice", Gen: gens["alice"], Memberships: member},
			{UserID: "bob", Gen: gens["bob"], Memberships: member},
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range out {
			if r.Err != nil || !r.Applied || r.Sessions != 1 {
				t.Fatalf("result %d = %+v, want applied to 1 session", i, r)
			}
		}
		for _, u := range users {
			deadline := time.Now().Add(time.Second)
			for {
				rec, err := b.Load(ctx, ids[u])
				if err != nil {
					t.Fatal(err)
				}
				if rec.Memberships.OrgRoles["acme"] == groupgate.OrgRoleMember {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("replica b still serves %s acme=%s a second after the batch", u, rec.Memberships.OrgRoles["acme"])
				}
				time.Sleep(time.Millisecond)
			}
		}
	})

	t.Run("ending a user's sessions on one replica ends them on the other", func(t *testing.T) {
		client, prefix := testenv.Redis(t)
		a := newCache(t, client, prefix, time.Now, session.WithCacheTTL(10*time.Second))
		b := newCache(t, client, prefix, time.Now, session.WithCacheTTL(10*time.Second))
		id := saveFor(t, a, "alice", admin)
		if _, err := b.Load(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := a.DeleteUserSessions(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Second)
		for {
			_, err := b.Load(ctx, id)
			if groupgate.IsCode(err, groupgate.NotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica b still loads the ended session: %v", err)
			}
			time.Sleep(time.Millisecond)
		}
	})

	t.Run("a loaded record is a copy that callers may change", func(t *testing.T) {
		client, prefix := testenv.Redis(t)
		a := newCache(t, client, prefix, time.Now)
		id := saveFor(t, a, "alice", admin)
		rec, _ := a.Load(ctx, id)
		rec.Memberships.OrgRoles["acme"] = groupgate.OrgRoleMember
		again, err := a.Load(ctx, id)
		if err != nil || again.Memberships.OrgRoles["acme"] != groupgate.OrgRoleAdmin {
			t.Fatalf("second load = %+v, %v; the cache leaked a shared map", again, err)
		}
	})

	t.Run("entries expire after the TTL and the size stays bounded", func(t *testing.T) {
		client, prefix := testenv.Redis(t)
		clock := sessiontest.NewClock(time.Now())
		a := newCache(t, client, prefix, clock.Now, session.WithCacheTTL(time.Second), session.WithCacheSize(3))
		var ids []string
		for i := range 5 {
			ids = append(ids, saveFor(t, a, "user"+string(rune('a'+i)), admin))
		}
		for _, id := range ids {
			if _, err := a.Load(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if n := a.Len(); n > 3 {
			t.Errorf("cache holds %d sessions, bound is 3", n)
		}
		// The saves announce themselves asynchronously, and a Load that
		// races an invalidation is rightly not cached: load until the entry
		// is served from memory, then let it expire.
		for deadline := time.Now().Add(5 * time.Second); ; {
			hits, _ := a.Stats()
			_, _ = a.Load(ctx, ids[4])
			if after, _ := a.Stats(); after > hits {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a fresh entry was never served from memory")
			}
		}
		_, before := a.Stats()
		clock.Advance(2 * time.Second)
		_, _ = a.Load(ctx, ids[4])
		if _, after := a.Stats(); after-before != 1 {
			t.Errorf("%d Redis reads for an expired entry, want 1", after-before)
		}
	})
}

// TestCacheIsBypassedWhileRedisIsDown stops a private Redis: the cache must
// turn off and Load must fail (Unavailable) rather than answer from
// memory, and come back by itself when Redis returns.
func TestCacheIsBypassedWhileRedisIsDown(t *testing.T) {
	srv := sessiontest.StartRedisServer(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = client.Close() })
	c := newCache(t, client, "gg:", time.Now, session.WithCacheTTL(10*time.Second), session.WithCachePing(50*time.Millisecond))
	ctx := context.Background()
	id := saveFor(t, c, "alice", groupgate.Memberships{Groups: []string{"eng"}})
	if _, err := c.Load(ctx, id); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	deadline := time.Now().Add(2 * time.Second)
	for c.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the cache still counts as subscribed 2s after Redis died")
		}
		time.Sleep(time.Millisecond)
	}
	for range 20 {
		if _, err := c.Load(ctx, id); !groupgate.IsCode(err, groupgate.Unavailable) {
			t.Fatalf("Load with Redis down = %v, want Unavailable (never the cached record)", err)
		}
	}

	srv.Start()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.WaitReady(wctx); err != nil {
		t.Fatalf("cache did not come back after Redis restarted: %v", err)
	}
	// go-redis's pool retries dialing in the background about once a
	// second after failed dials, so the first reads may still fail.
	for {
		rec, err := c.Load(ctx, id)
		if err == nil {
			if rec.UserID != "alice" {
				t.Fatalf("Load after restart = %+v", rec)
			}
			break
		}
		if !groupgate.IsCode(err, groupgate.Unavailable) || wctx.Err() != nil {
			t.Fatalf("Load after restart = %v; the session should have survived (appendfsync always)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The invalidation counter: writes through a Cache take their message's
// sequence number from it, and every subscriber compares the numbers it
// received with it (session/cache.go). It has the channel's name, so that
// on a Cluster it lives on the node the subscribers listen on.
func counterKey(prefix string) string { return prefix + "invalidate" }

// warmUntilHit loads id through c until c answers it from memory.
func warmUntilHit(t *testing.T, c *session.Cache, id string) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(5 * time.Second); ; {
		hits, _ := c.Stats()
		if _, err := c.Load(ctx, id); err != nil {
			t.Fatal(err)
		}
		if after, _ := c.Stats(); after > hits {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache never answered from memory")
		}
		time.Sleep(time.Millisecond)
	}
}

// awaitRole loads id through c until it shows role in acme, failing after
// within.
func awaitRole(t *testing.T, c *session.Cache, id string, role groupgate.OrgRole, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	for {
		rec, err := c.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Memberships.OrgRoles["acme"] == role {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache still serves acme=%s %v after the change", rec.Memberships.OrgRoles["acme"], within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lostInvalidation is one way an invalidation can be lost silently,
// played on the counter and the channel under prefix; other is a cache on
// them through which writes are announced normally.
type lostInvalidation struct {
	name string
	lose func(t *testing.T, client redis.UniversalClient, prefix string, other *session.Cache)
}

var lostInvalidations = []lostInvalidation{
	{"a number taken from the counter whose message never arrives (the last one sent)", func(t *testing.T, client redis.UniversalClient, prefix string, _ *session.Cache) {
		if err := client.Incr(context.Background(), counterKey(prefix)).Err(); err != nil {
			t.Fatal(err)
		}
	}},
	{"a gap in the numbers on the channel", func(t *testing.T, client redis.UniversalClient, prefix string, other *session.Cache) {
		if err := client.Incr(context.Background(), counterKey(prefix)).Err(); err != nil {
			t.Fatal(err)
		}
		// The next write is announced normally, one number past the lost
		// one.
		saveFor(t, other, "bob", groupgate.Memberships{})
	}},
	{"the counter reset to nothing (a Redis restart without persistence, an eviction)", func(t *testing.T, client redis.UniversalClient, prefix string, _ *session.Cache) {
		if err := client.Del(context.Background(), counterKey(prefix)).Err(); err != nil {
			t.Fatal(err)
		}
	}},
	{"the counter going back (a failover to a replica that lagged), then a write", func(t *testing.T, client redis.UniversalClient, prefix string, other *session.Cache) {
		ctx := context.Background()
		n, err := client.Get(ctx, counterKey(prefix)).Int64()
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Set(ctx, counterKey(prefix), n-2, 0).Err(); err != nil {
			t.Fatal(err)
		}
		saveFor(t, other, "bob", groupgate.Memberships{})
	}},
	{"a number on the channel repeated (a failover to a replica that lagged, its counter raised again before a ping)", func(t *testing.T, client redis.UniversalClient, prefix string, _ *session.Cache) {
		// Every number the counter gave out is received: only the repeat
		// tells.
		ctx := context.Background()
		n, err := client.Incr(ctx, counterKey(prefix)).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, seq := range []int64{n, n - 1} {
			if err := client.Publish(ctx, counterKey(prefix), strconv.FormatInt(seq, 10)+":AAAAAAAAAAAAAAAAAAAAAA").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}},
}

// checkLostInvalidationNoticed: entries live until invalidated (the TTL is
// a long backstop), so a message lost without any error must be noticed
// from the sequence numbers, and the cache emptied, within about two ping
// intervals. It changes alice's record behind the caches' back (the plain
// Redis backend, which announces nothing), then plays lost.
func checkLostInvalidationNoticed(t *testing.T, client redis.UniversalClient, prefix string, lost lostInvalidation) {
	ctx := context.Background()
	admin := groupgate.Memberships{Groups: []string{"eng"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin}}
	member := groupgate.Memberships{Groups: []string{}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember}}
	// Long enough that a loaded machine answers every ping in time (a
	// missed one also empties the cache, which would hide what is tested).
	const ping = 200 * time.Millisecond
	a := newCache(t, client, prefix, time.Now, session.WithCacheTTL(time.Minute), session.WithCachePing(ping))
	b := newCache(t, client, prefix, time.Now, session.WithCacheTTL(time.Minute), session.WithCachePing(ping))
	plain, err := session.NewRedis(client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	id := saveFor(t, a, "alice", admin)
	saveFor(t, a, "carol", admin) // so that b has received numbers
	for attempt := 1; ; attempt++ {
		warmUntilHit(t, b, id)
		if n, err := plain.SetMemberships(ctx, "alice", member); err != nil || n != 1 {
			t.Fatalf("SetMemberships = %d, %v", n, err)
		}
		// Nothing told b: it still serves the old role, unless a ping
		// missed on a loaded machine emptied its cache meanwhile; then
		// set the scene again, announced, and retry.
		rec, err := b.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Memberships.OrgRoles["acme"] == groupgate.OrgRoleAdmin {
			break
		}
		if attempt == 5 {
			t.Fatalf("Load before the loss = %+v five times; want the cached admin role", rec.Memberships)
		}
		if _, err := a.SetMemberships(ctx, "alice", admin); err != nil {
			t.Fatal(err)
		}
		awaitRole(t, b, id, groupgate.OrgRoleAdmin, 30*ping)
	}
	lost.lose(t, client, prefix, a)
	// Far below the TTL (and the 10 s that a TTL was capped at before the
	// numbers), so that only detection can make the change show in time;
	// about two pings are expected, the rest is for a loaded machine.
	awaitRole(t, b, id, groupgate.OrgRoleMember, 30*ping)
}

func TestCacheNoticesLostInvalidations(t *testing.T) {
	for _, lost := range lostInvalidations {
		t.Run(lost.name+" empties the cache within about two pings", func(t *testing.T) {
			client, prefix := testenv.Redis(t)
			checkLostInvalidationNoticed(t, client, prefix, lost)
		})
	}
}

// TestCacheKeepsEntriesWhileNothingIsLost: with every message delivered,
// the cache must not empty itself (each false alarm costs a Redis read per
// session), and entries outlive many ping intervals.
func TestCacheKeepsEntriesWhileNothingIsLost(t *testing.T) {
	ctx := context.Background()
	admin := groupgate.Memberships{Groups: []string{"eng"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin}}
	client, prefix := testenv.Redis(t)
	// Long enough that a loaded machine answers every ping in time (a
	// missed one empties the cache too).
	const ping = 200 * time.Millisecond
	a := newCache(t, client, prefix, time.Now, session.WithCachePing(ping))
	b := newCache(t, client, prefix, time.Now, session.WithCachePing(ping))
	id := saveFor(t, a, "alice", admin)
	warmUntilHit(t, b, id)
	// Writes for other users through both replicas, interleaved with
	// ticks of the counter check.
	deadline := time.Now().Add(12 * ping)
	for i := 0; time.Now().Before(deadline); i++ {
		w := a
		if i%2 == 1 {
			w = b
		}
		saveFor(t, w, "user"+strconv.Itoa(i%7), admin)
		if i%3 == 0 {
			users := []string{"user1", "user2"}
			gens, err := w.NextGenerations(ctx, users)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.SetMembershipsIfBatch(ctx, []session.SnapshotWrite{
				{UserID: "user1", Gen: gens["user1"], Memberships: admin},
				{UserID: "user2", Gen: gens["user2"], Memberships: admin},
			}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(ping / 10)
	}
	time.Sleep(3 * ping) // the last numbers are checked a tick later
	for _, c := range []*session.Cache{a, b} {
		if n := c.Losses(); n != 0 {
			t.Errorf("a replica emptied its cache %d times with no message lost", n)
		}
	}
	_, before := b.Stats()
	if _, err := b.Load(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, after := b.Stats(); after != before {
		t.Errorf("alice's entry was dropped though nothing changed her (%d Redis reads)", after-before)
	}
}

// BenchmarkCacheMemoryPerSession measures the heap one cached session
// takes (record, entry, per-user index), to size local_cache.size:
//
//	go test -run '^$' -bench BenchmarkCacheMemoryPerSession -benchtime 1x ./session/
func BenchmarkCacheMemoryPerSession(b *testing.B) {
	const sessions = 10_000
	groups := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "group-with-a-typical-name-" + strconv.Itoa(i)
		}
		return out
	}
	shapes := []struct {
		name    string
		groups  int
		idToken int // bytes of a raw ID token kept for logout
	}{
		{"2 groups, 1 org role, no ID token", 2, 0},
		{"2 groups, 1 org role, 1 KiB ID token", 2, 1024},
		{"50 groups, 1 org role, 1 KiB ID token", 50, 1024},
	}
	for _, sh := range shapes {
		b.Run(sh.name, func(b *testing.B) {
			ctx := context.Background()
			client, prefix := testenv.Redis(b)
			plain, err := session.NewRedis(client, prefix)
			if err != nil {
				b.Fatal(err)
			}
			m := groupgate.Memberships{Groups: groups(sh.groups), OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin}}
			ids := make([]string, sessions)
			now := time.Now()
			for i := range ids {
				user := "user-" + strconv.Itoa(i) + "@example.com"
				ids[i], err = session.NewID(user)
				if err != nil {
					b.Fatal(err)
				}
				rec := &session.Record{ID: ids[i], UserID: user, Provider: "oidc", Identity: groupgate.Identity{Username: user, Email: user},
					IDToken: string(make([]byte, sh.idToken)), Memberships: m, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
				if err := plain.Save(ctx, rec); err != nil {
					b.Fatal(err)
				}
			}
			var perSession float64
			for b.Loop() {
				c := newCache(b, client, prefix, time.Now)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for _, id := range ids {
					if _, err := c.Load(ctx, id); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if c.Len() != sessions {
					b.Fatalf("%d sessions cached, want %d", c.Len(), sessions)
				}
				perSession = float64(after.HeapAlloc-before.HeapAlloc) / sessions
				_ = c.Close()
			}
			b.ReportMetric(perSession, "B/session")
		})
	}
}

// A replica configured without the local cache still announces its
// writes: replicas that keep copies would otherwise serve what it revoked
// until their TTL, a minute by default.
func TestAReplicaWithoutLocalCopiesStillAnnouncesItsWrites(t *testing.T) {
	ctx := context.Background()
	admin := groupgate.Memberships{Groups: []string{"eng"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin}}
	member := groupgate.Memberships{Groups: []string{}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember}}
	client, prefix := testenv.Redis(t)
	r, err := session.NewRedis(client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	plain := session.NewCache(r, session.WithoutLocalCopies())
	t.Cleanup(func() { _ = plain.Close() })
	cached := newCache(t, client, prefix, time.Now)

	id := saveFor(t, plain, "alice", admin)
	warmUntilHit(t, cached, id)
	if n, err := plain.SetMemberships(ctx, "alice", member); err != nil || n != 1 {
		t.Fatalf("SetMemberships = %d, %v", n, err)
	}
	awaitRole(t, cached, id, groupgate.OrgRoleMember, time.Second)
	// The counter of the announcements expires by itself once writes stop.
	if ttl, err := client.TTL(ctx, counterKey(prefix)).Result(); err != nil || ttl <= 0 {
		t.Fatalf("invalidation counter TTL = %v, %v; want one", ttl, err)
	}

	for range 3 {
		if _, err := plain.Load(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if hits, _ := plain.Stats(); hits != 0 || plain.Len() != 0 {
		t.Fatalf("the replica without local copies answered %d loads from memory and holds %d entries", hits, plain.Len())
	}
}
