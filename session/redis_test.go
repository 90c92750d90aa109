package session_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/session/sessiontest"
)

func newRedis(t testing.TB, now func() time.Time) (*session.Redis, redis.UniversalClient, string) {
	t.Helper()
	client, prefix := testenv.Redis(t)
	b, err := session.NewRedis(client, prefix, session.WithNow(now))
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	return b, client, prefix
}

func TestRedisConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T, clock *sessiontest.Clock) session.Backend {
		b, _, _ := newRedis(t, clock.Now)
		return b
	})
}

// hashTag returns the part of key Redis Cluster hashes: the content of the
// first {...} when non-empty, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

func TestRedisKeysOfOneUserShareAHashSlotAndHaveRealTTLs(t *testing.T) {
	ctx := context.Background()
	clock := sessiontest.NewClock(time.Now())
	b, client, prefix := newRedis(t, clock.Now)
	var want []string
	for _, ttl := range []time.Duration{time.Hour, 2 * time.Hour} {
		id, err := session.NewID("alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		now := clock.Now()
		if err := b.Save(ctx, &session.Record{ID: id, UserID: "alice@example.com", CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	keys, err := client.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("keys %v, want two sessions and one index", keys)
	}
	tag := hashTag(keys[0])
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("key %q lacks the prefix %q", k, prefix)
		}
		if hashTag(k) != tag || !strings.HasPrefix(tag, "u:") {
			t.Errorf("key %q hashes on %q, want the shared user tag %q", k, hashTag(k), tag)
		}
		if strings.Contains(k, "alice") {
			t.Errorf("key %q reveals the user ID", k)
		}
		ttl, err := client.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		maxTTL := time.Hour
		if strings.Contains(k, ":sessions") || strings.Contains(k, strings.Split(want[1], ".")[1]) {
			maxTTL = 2 * time.Hour
		}
		if ttl <= maxTTL-time.Minute || ttl > maxTTL {
			t.Errorf("key %q has TTL %v, want about %v", k, ttl, maxTTL)
		}
	}
}

func TestRedisPrunesExpiredIndexEntries(t *testing.T) {
	ctx := context.Background()
	clock := sessiontest.NewClock(time.Now())
	b, client, prefix := newRedis(t, clock.Now)
	save := func(ttl time.Duration) {
		t.Helper()
		id, err := session.NewID("alice")
		if err != nil {
			t.Fatal(err)
		}
		now := clock.Now()
		if err := b.Save(ctx, &session.Record{ID: id, UserID: "alice", CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
			t.Fatal(err)
		}
	}
	save(time.Minute)
	save(time.Minute)
	save(time.Hour)
	clock.Advance(time.Minute)
	if _, err := b.ListUserSessions(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	idx, err := client.Keys(ctx, prefix+"user:*").Result()
	if err != nil || len(idx) != 1 {
		t.Fatalf("index keys %v, %v; want one", idx, err)
	}
	if n, err := client.ZCard(ctx, idx[0]).Result(); err != nil || n != 1 {
		t.Fatalf("index holds %d entries (%v), want the 1 live one", n, err)
	}
}

func TestNewRedisRefusesBracesInThePrefix(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	for _, prefix := range []string{"gg{", "{gg}:", "gg}"} {
		if _, err := session.NewRedis(client, prefix); !groupgate.IsCode(err, groupgate.Invalid) {
			t.Errorf("NewRedis(%q) = %v, want Invalid", prefix, err)
		}
	}
	if _, err := session.NewRedis(nil, "gg:"); !groupgate.IsCode(err, groupgate.Invalid) {
		t.Errorf("NewRedis without a client = %v, want Invalid", err)
	}
}

// unreachableRedis returns a backend whose server port was just closed.
func unreachableRedis(t testing.TB) *session.Redis {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = client.Close() })
	b, err := session.NewRedis(client, "gg:")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRedisUnreachableIsUnavailableNeverEmpty(t *testing.T) {
	ctx := context.Background()
	b := unreachableRedis(t)
	id, err := session.NewID("alice")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name string
		call func() error
	}{
		{"loading a session", func() error { _, err := b.Load(ctx, id); return err }},
		{"saving a session", func() error {
			return b.Save(ctx, &session.Record{ID: id, UserID: "alice", ExpiresAt: now.Add(time.Hour)})
		}},
		{"deleting a session", func() error { return b.Delete(ctx, id) }},
		{"listing a user's sessions", func() error { _, err := b.ListUserSessions(ctx, "alice"); return err }},
		{"ending a user's sessions", func() error { _, err := b.DeleteUserSessions(ctx, "alice"); return err }},
		{"setting memberships", func() error { _, err := b.SetMemberships(ctx, "alice", groupgate.Memberships{}); return err }},
		{"storing an attempt", func() error { return b.PutAttempt(ctx, "k", []byte("v"), time.Minute) }},
		{"taking an attempt", func() error { _, err := b.TakeAttempt(ctx, "k"); return err }},
		{"checking a replay", func() error { _, err := b.Remember(ctx, "k", now.Add(time.Minute)); return err }},
		{"pinging", func() error { return b.Ping(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name+" fails as unavailable", func(t *testing.T) {
			t.Parallel()
			if err := tt.call(); !groupgate.IsCode(err, groupgate.Unavailable) {
				t.Fatalf("got %v, want code Unavailable", err)
			}
		})
	}
}

func TestNewUniversalClientPicksTheTopology(t *testing.T) {
	tests := []struct {
		name       string
		addrs      []string
		masterName string
		check      func(redis.UniversalClient) bool
	}{
		{"one address is a standalone server", []string{"127.0.0.1:6379"}, "", func(c redis.UniversalClient) bool {
			cl, ok := c.(*redis.Client)
			return ok && cl.Options().Addr == "127.0.0.1:6379"
		}},
		{"several addresses are a cluster that re-reads its slot map every second", []string{"10.0.0.1:6379", "10.0.0.2:6379"}, "", func(c redis.UniversalClient) bool {
			cl, ok := c.(*redis.ClusterClient)
			return ok && cl.Options().ClusterStateReloadInterval == session.ClusterStateReload
		}},
		{"a master name selects sentinel", []string{"10.0.0.1:26379", "10.0.0.2:26379"}, "mymaster", func(c redis.UniversalClient) bool {
			cl, ok := c.(*redis.Client)
			return ok && cl.Options().Addr == "FailoverClient"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := session.NewUniversalClient(tt.addrs, tt.masterName, "", "", 0)
			t.Cleanup(func() { _ = c.Close() })
			if !tt.check(c) {
				t.Fatalf("got %T", c)
			}
		})
	}
}
