package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type logLine map[string]any

func logLines(t *testing.T, b *bytes.Buffer) []logLine {
	t.Helper()
	var out []logLine
	for line := range strings.Lines(b.String()) {
		var l logLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("not a JSON log line (%v): %q", err, line)
		}
		out = append(out, l)
	}
	b.Reset()
	return out
}

func TestRepeatedWarningsAreWrittenOncePerWindowWithACount(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	logger := slog.New(newRepeatLimiter(slog.NewJSONHandler(&buf, nil), 10*time.Second, func() time.Time { return now }))
	component := logger.With("component", "session")

	for i := range 100 {
		logger.Warn("redis down", "attempt", i)
		component.Warn("redis down", "attempt", i) // a clone shares the table
		logger.Info("request", "n", i)
	}
	lines := logLines(t, &buf)
	var warns, infos int
	for _, l := range lines {
		switch l["level"] {
		case "WARN":
			warns++
			if l["attempt"] != float64(0) {
				t.Errorf("the warning written is %v, want the first", l)
			}
		case "INFO":
			infos++
		}
	}
	if warns != 1 || infos != 100 {
		t.Fatalf("wrote %d warnings and %d infos, want 1 and 100", warns, infos)
	}

	logger.Error("redis down") // another level is another message
	logger.Warn("store down")  // another message is not held back
	if got := len(logLines(t, &buf)); got != 2 {
		t.Fatalf("another level and another message wrote %d lines, want 2", got)
	}

	now = now.Add(11 * time.Second)
	logger.Warn("redis down", "attempt", 200)
	lines = logLines(t, &buf)
	if len(lines) != 1 || lines[0]["suppressed"] != float64(199) || lines[0]["attempt"] != float64(200) {
		t.Fatalf("after the window: %v, want one line with attempt 200 and suppressed 199", lines)
	}
}

func TestRedisClientLinesBecomeStructuredWarnings(t *testing.T) {
	var buf bytes.Buffer
	l := redisLogger{logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	l.Printf(context.Background(), "redis: %s: connection pool: failed to dial after %d attempts: %v", "127.0.0.1:1", 5, "connection refused")
	lines := logLines(t, &buf)
	if len(lines) != 1 {
		t.Fatalf("got %d lines", len(lines))
	}
	if lines[0]["level"] != "WARN" || !strings.HasPrefix(lines[0]["msg"].(string), "redis client: ") ||
		lines[0]["detail"] != "redis: 127.0.0.1:1: connection pool: failed to dial after 5 attempts: connection refused" {
		t.Fatalf("line %v", lines[0])
	}
}
