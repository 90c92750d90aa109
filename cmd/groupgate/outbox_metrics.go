package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// outboxCollector exports the sync outbox's depth and the age of its
// oldest entry, read from the store at scrape time. Entries pile up while
// Redis cannot take session rewrites; an old entry means a change that has
// not reached live sessions yet (docs/operations.md).
type outboxCollector struct {
	stats   func(context.Context) (int, time.Time, error)
	now     func() time.Time
	logger  *slog.Logger
	pending *prometheus.Desc
	age     *prometheus.Desc
	up      *prometheus.Desc
}

func newOutboxCollector(stats func(context.Context) (int, time.Time, error), now func() time.Time, logger *slog.Logger) *outboxCollector {
	return &outboxCollector{
		stats:  stats,
		now:    now,
		logger: logger,
		pending: prometheus.NewDesc("groupgate_outbox_pending",
			"Access changes whose session rewrites are not acknowledged yet.", nil, nil),
		age: prometheus.NewDesc("groupgate_outbox_oldest_age_seconds",
			"Age of the oldest pending outbox entry; 0 when there is none.", nil, nil),
		up: prometheus.NewDesc("groupgate_outbox_stats_up",
			"1 when the outbox could be read from the store at this scrape.", nil, nil),
	}
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.age
	ch <- c.up
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	// A scrape must not hang on a store that does not answer.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, oldest, err := c.stats(ctx)
	if err != nil {
		c.logger.WarnContext(ctx, "outbox metrics: store unreadable", "error", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(0, c.now().Sub(oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age)
}
