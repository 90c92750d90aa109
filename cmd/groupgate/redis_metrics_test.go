package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate/session/sessiontest"
)

// groupgate_redis_errors_total counts what an operator must hear of (a
// Redis that refuses connections, commands that fail) and not what is a
// normal answer (a missing key).
func TestRedisMetricsCountFailedDialsAndCommandsButNotMissingKeys(t *testing.T) {
	srv := sessiontest.StartRedisServer(t)
	m := newRedisMetrics()
	client := newRedisClient(&RedisConfig{Addrs: []string{srv.Addr()}}, m)
	defer client.Close()
	if err := m.register(prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	defer m.instrument(client, slog.New(slog.DiscardHandler))()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	count := func(op string) float64 { return counterValue(m.errors.WithLabelValues(op)) }

	if err := client.Get(ctx, "no-such-key").Err(); err != redis.Nil {
		t.Fatalf("GET of a missing key: %v", err)
	}
	if _, err := client.Pipelined(ctx, func(p redis.Pipeliner) error { p.Get(ctx, "no-such-key"); return nil }); err != redis.Nil {
		t.Fatalf("pipelined GET of a missing key: %v", err)
	}
	if count("dial") != 0 || count("command") != 0 {
		t.Fatalf("errors counted while Redis answers: dial %v, command %v", count("dial"), count("command"))
	}
	srv.Stop()
	if err := client.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered by a stopped server")
	}
	if count("dial") < 1 || count("command") != 1 {
		t.Fatalf("after one failed PING: dial %v (want ≥ 1), command %v (want 1)", count("dial"), count("command"))
	}
	if counterValue(m.changes) != 0 {
		t.Errorf("a standalone server counted %v master changes", counterValue(m.changes))
	}
}

// counterValue reads a counter's value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
