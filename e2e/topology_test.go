package e2e

import (
	"testing"

	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/session/sessiontest"
)

// TestChangesReachAnotherReplicaOnClusterAndSentinel runs the two-replica
// propagation test (TestChangesOnOneReplicaReachAnotherWithinASecond) on a
// private Redis Cluster and behind a private Sentinel, with the client
// built from redis.addrs and redis.master_name as serve builds it: the
// snapshot writes, the generation counters and the local caches'
// invalidation channel must work on both as on one server.
func TestChangesReachAnotherReplicaOnClusterAndSentinel(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) (addrs []string, masterName string)
	}{
		{"on a Redis Cluster", func(t *testing.T) ([]string, string) {
			return sessiontest.StartRedisCluster(t).Addrs(), ""
		}},
		{"behind Redis Sentinel", func(t *testing.T) ([]string, string) {
			s := sessiontest.StartRedisSentinel(t)
			return s.SentinelAddrs(), s.MasterName()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addrs, masterName := tt.start(t)
			client := session.NewUniversalClient(addrs, masterName, "", "", 0)
			t.Cleanup(func() { _ = client.Close() })
			changesReachAnotherReplica(t, client, "gg:")
		})
	}
}
