package main

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestOutboxMetricsReportDepthAndOldestAge(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	logger := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name  string
		stats func(context.Context) (int, time.Time, error)
		want  map[string]float64
	}{
		{"an empty outbox", func(context.Context) (int, time.Time, error) { return 0, time.Time{}, nil },
			map[string]float64{"groupgate_outbox_pending": 0, "groupgate_outbox_oldest_age_seconds": 0, "groupgate_outbox_stats_up": 1}},
		{"entries waiting since 90 s", func(context.Context) (int, time.Time, error) { return 3, now.Add(-90 * time.Second), nil },
			map[string]float64{"groupgate_outbox_pending": 3, "groupgate_outbox_oldest_age_seconds": 90, "groupgate_outbox_stats_up": 1}},
		{"an unreadable store reports only that", func(context.Context) (int, time.Time, error) { return 0, time.Time{}, errors.New("down") },
			map[string]float64{"groupgate_outbox_stats_up": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(newOutboxCollector(tc.stats, clock, logger))
			families, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, f := range families {
				got[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("metrics %v, want %v", got, tc.want)
			}
		})
	}
}
