package session_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
// Redis backend and for the local cache in front of it, on a Cluster and
// behind Sentinel, as TestRedisConformance and TestCacheConformance do on
// a standalone server. One deployment of each kind serves all subtests,
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
