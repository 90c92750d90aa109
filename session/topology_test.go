package session_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/session/sessiontest"
)

// topologies are the Redis deployments besides a standalone server, each
// started privately and selected as serve selects it from redis.addrs and
// redis.master_name (session.NewUniversalClient).
var topologies = []struct {
	name  string
	start func(t *testing.T) (addrs []string, masterName string)
}{
	{"on a Redis Cluster of three masters with a replica each", func(t *testing.T) ([]string, string) {
		return sessiontest.StartRedisCluster(t).Addrs(), ""
	}},
	{"behind Redis Sentinel with a master, a replica and three sentinels", func(t *testing.T) ([]string, string) {
		s := sessiontest.StartRedisSentinel(t)
		return s.SentinelAddrs(), s.MasterName()
	}},
}

// TestRedisTopologiesConformance runs the whole conformance suite, for the
// Redis backend and for the local cache in front of it, and the cache's
// detection of lost invalidations, on a Cluster and behind Sentinel, as
// TestRedisConformance, TestCacheConformance and
// TestCacheNoticesLostInvalidations do on a standalone server. One deployment of each kind serves all subtests,
// each under a key prefix of its own.
func TestRedisTopologiesConformance(t *testing.T) {
	for _, tp := range topologies {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			addrs, masterName := tp.start(t)
			client := session.NewUniversalClient(addrs, masterName, "", "", 0)
			t.Cleanup(func() { _ = client.Close() })
			prefixed := func(t *testing.T) string {
				prefix := uniquePrefix()
				t.Cleanup(func() { deleteKeys(t, client, prefix) })
				return prefix
			}
			t.Run("redis backend", func(t *testing.T) {
				sessiontest.Run(t, func(t *testing.T, clock *sessiontest.Clock) session.Backend {
					b, err := session.NewRedis(client, prefixed(t), session.WithNow(clock.Now))
					if err != nil {
						t.Fatal(err)
					}
					if masterName != "" {
						// As serve sets it up behind Sentinel.
						b.GuardFailovers(addrs, masterName, "", "")
					}
					return b
				})
			})
			t.Run("local cache", func(t *testing.T) {
				sessiontest.Run(t, func(t *testing.T, clock *sessiontest.Clock) session.Backend {
					// A short ping: Close waits for the subscriber's
					// current receive, up to one ping interval.
					return newCache(t, client, prefixed(t), clock.Now, session.WithCachePing(100*time.Millisecond))
				})
			})
			t.Run("local cache losing an invalidation", func(t *testing.T) {
				for _, lost := range lostInvalidations {
					t.Run(lost.name+" empties the cache within about two pings", func(t *testing.T) {
						checkLostInvalidationNoticed(t, client, prefixed(t), lost)
					})
				}
			})
		})
	}
}

// uniquePrefix is a key prefix of one test; deleteKeys removes its keys
// from every master of a Cluster (SCAN only sees one node's keys).
func uniquePrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "ggtest:" + hex.EncodeToString(b[:]) + ":"
}

func deleteKeys(t testing.TB, c redis.UniversalClient, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	del := func(ctx context.Context, n *redis.Client) error {
		iter := n.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			n.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, del)
	} else {
		err = del(ctx, c.(*redis.Client))
	}
	if err != nil {
		t.Logf("delete keys under %s: %v", prefix, err)
	}
}

// TestGuardedSentinelBackendKeepsWritingWithoutItsReplica: the failover
// guard refuses an unconfirmed revoking write only while a failover is
// under way (cmd/groupgate's TestServeSurvivesARedisFailoverUnderAuthLoad);
// a master whose replica is merely down keeps ending sessions and
// rewriting roles, as Redis itself keeps accepting writes.
func TestGuardedSentinelBackendKeepsWritingWithoutItsReplica(t *testing.T) {
	ctx := context.Background()
	s := sessiontest.StartRedisSentinel(t)
	client := session.NewUniversalClient(s.SentinelAddrs(), s.MasterName(), "", "", 0)
	t.Cleanup(func() { _ = client.Close() })
	b, err := session.NewRedis(client, uniquePrefix())
	if err != nil {
		t.Fatal(err)
	}
	b.GuardFailovers(s.SentinelAddrs(), s.MasterName(), "", "")
	s.KillReplica()
	ids := []string{saveFor(t, b, "alice", groupgate.Memberships{}), saveFor(t, b, "alice", groupgate.Memberships{})}
	if err := b.Delete(ctx, ids[0]); err != nil {
		t.Fatalf("sign-out without a replica: %v", err)
	}
	gens, err := b.NextGenerations(ctx, []string{"alice"})
	if err != nil {
		t.Fatalf("generation without a replica: %v", err)
	}
	if ok, n, err := b.SetMembershipsIf(ctx, "alice", gens["alice"], groupgate.Memberships{Groups: []string{"eng"}}); err != nil || !ok || n != 1 {
		t.Fatalf("rewrite without a replica = %v, %d, %v; want applied to 1 session", ok, n, err)
	}
	if n, err := b.DeleteUserSessions(ctx, "alice"); err != nil || n != 1 {
		t.Fatalf("ending sessions without a replica = %d, %v; want 1", n, err)
	}
}
