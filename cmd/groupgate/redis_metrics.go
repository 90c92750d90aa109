package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// redisMetrics is a go-redis hook that counts what the session store's
// client meets: failed dials and commands (groupgate_redis_errors_total)
// and the masters it finds replaced (groupgate_redis_master_changes_total).
// Behind Sentinel a change is a new connection to another master than the
// last one (sentinelDialer); on a Cluster it is a slot range whose healthy
// master changed between two reads of the shards (watchSlots: a failover
// or a resharding). A standalone server never changes.
// docs/operations.md says what to do about them.
type redisMetrics struct {
	errors  *prometheus.CounterVec
	changes prometheus.Counter

	mu     stdsync.Mutex
	master string           // Sentinel: the master address last dialed
	slots  map[int64]string // Cluster: slot range start → master address
}

func newRedisMetrics() *redisMetrics {
	return &redisMetrics{
		slots: map[int64]string{},
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "groupgate", Name: "redis_errors_total",
			Help: "Redis dials (op=dial) and commands or pipelines (op=command) of the session store that failed; a missing key is not a failure."},
			[]string{"op"}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "groupgate", Name: "redis_master_changes_total",
			Help: "Times the session store's Redis client found a master replaced: a Sentinel failover it followed, or a Cluster slot range that moved to another master (failover or resharding)."}),
	}
}

func (m *redisMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.errors, m.changes} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register redis metrics: %w", err)
		}
	}
	// Both series exist from the start, so that rate() has a baseline.
	m.errors.WithLabelValues("dial")
	m.errors.WithLabelValues("command")
	return nil
}

// failed says whether a command's error is a failure of Redis or of the
// way to it: a missing key (redis.Nil) and a WATCHed transaction that
// lost its race are answers, and a caller that gave up is not Redis's
// fault.
func failed(err error) bool {
	return err != nil && !errors.Is(err, redis.Nil) && !errors.Is(err, redis.TxFailedErr) &&
		!errors.Is(err, context.Canceled)
}

// optional says whether cmd is one go-redis sends on a new connection and
// whose failure it ignores: CLIENT SETINFO (Redis 7.2+) and CLIENT
// MAINT_NOTIFICATIONS (Redis 8 and Redis Cloud). Older servers refuse them
// on every connection; that is no failure.
func optional(cmd redis.Cmder) bool {
	args := cmd.Args()
	if len(args) < 2 || !strings.EqualFold(cmd.Name(), "client") {
		return false
	}
	sub, _ := args[1].(string)
	return strings.EqualFold(sub, "setinfo") || strings.EqualFold(sub, "maint_notifications")
}

func (m *redisMetrics) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var dialed atomic.Pointer[string]
		c, err := next(context.WithValue(ctx, dialedKey{}, &dialed), network, addr)
		if err != nil {
			m.errors.WithLabelValues("dial").Inc()
		} else if master := dialed.Load(); master != nil {
			m.sentinelMaster(*master)
		}
		return c, err
	}
}

func (m *redisMetrics) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if failed(err) && !optional(cmd) {
			m.errors.WithLabelValues("command").Inc()
		}
		return err
	}
}

func (m *redisMetrics) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if failed(err) && slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return !optional(c) }) {
			m.errors.WithLabelValues("command").Inc()
		}
		return err
	}
}

// dialedKey carries, in a dial's context, where the Sentinel dialer
// writes the address it dialed last.
type dialedKey struct{}

// sentinelDialer is the dialer of a Sentinel client: under the context of
// a pool dial, which DialHook marks, go-redis asks the sentinels for the
// master (dialing them through it too) and then dials the master through
// it. The address dialed that is not one of the sentinels is the master's.
func (m *redisMetrics) sentinelDialer(timeout time.Duration, sentinels []string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if p, ok := ctx.Value(dialedKey{}).(*atomic.Pointer[string]); ok && err == nil && !slices.Contains(sentinels, addr) {
			p.Store(&addr)
		}
		return c, err
	}
}

// sentinelMaster notes the master a Sentinel client's pool dialed: any
// other than the one before is a failover followed.
func (m *redisMetrics) sentinelMaster(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.master != "" && m.master != addr {
		m.changes.Inc()
	}
	m.master = addr
}

// dialHook counts a Cluster node's failed dials only: its commands are
// counted once, by the cluster client's hook.
type dialHook struct{ m *redisMetrics }

func (h dialHook) DialHook(next redis.DialHook) redis.DialHook { return h.m.DialHook(next) }

func (dialHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (dialHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// clusterSlotsInterval is how often the Cluster's shards (CLUSTER SHARDS,
// Redis 7) are read for
// master changes: as often as the client itself re-reads it
// (session.ClusterStateReload), at the cost of one command per replica.
const clusterSlotsInterval = time.Second

// instrument adds the hooks to client; on a Cluster it also starts
// the slot-map watcher, which the returned stop ends.
func (m *redisMetrics) instrument(client redis.UniversalClient, logger *slog.Logger) (stop func()) {
	switch c := client.(type) {
	case *redis.ClusterClient:
		// The cluster's hooks see commands; each node's client dials.
		c.AddHook(m)
		c.OnNewNode(func(n *redis.Client) { n.AddHook(dialHook{m}) })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.watchSlots(ctx, c, logger)
		}()
		return func() { cancel(); <-done }
	default:
		client.AddHook(m)
		return func() {}
	}
}

// watchSlots reads the Cluster's shards every clusterSlotsInterval and
// counts a master change when a slot range's healthy master differs from
// the last reading.
func (m *redisMetrics) watchSlots(ctx context.Context, c *redis.ClusterClient, logger *slog.Logger) {
	t := time.NewTicker(clusterSlotsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, redisIOTimeout)
		shards, err := c.ClusterShards(rctx).Result()
		cancel()
		if err != nil {
			// Counted by the hook; a cluster that cannot answer has no
			// map to compare.
			continue
		}
		now := map[int64]string{}
		for _, sh := range shards {
			// A failed master stays listed as one until its replica is
			// promoted: only a healthy master owns the slots.
			i := slices.IndexFunc(sh.Nodes, func(n redis.Node) bool { return n.Role == "master" && n.Health == "online" })
			if i < 0 {
				continue
			}
			addr := net.JoinHostPort(sh.Nodes[i].IP, strconv.FormatInt(sh.Nodes[i].Port, 10))
			for _, r := range sh.Slots {
				now[r.Start] = addr
			}
		}
		m.mu.Lock()
		var moved []string
		for start, addr := range now {
			if old, ok := m.slots[start]; ok && old != addr {
				moved = append(moved, fmt.Sprintf("%d:%s→%s", start, old, addr))
			}
			// A range without a healthy master (between the failure and
			// the promotion) keeps the master it had, so that the
			// promotion still reads as a change.
			m.slots[start] = addr
		}
		if len(moved) > 0 {
			m.changes.Inc()
			sort.Strings(moved)
			logger.WarnContext(ctx, "redis cluster: slot ranges changed master", "ranges", strings.Join(moved, " "))
		}
		m.mu.Unlock()
	}
}
