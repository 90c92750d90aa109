package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// repeatWindow is how long a warning or error message is held back after
// it was written: a dependency that stays down (Redis, PostgreSQL, an IdP)
// fails every request, and one line per message per window, with a count
// of what was held back, says as much as thousands.
const repeatWindow = 10 * time.Second

// maxTrackedMessages bounds the limiter's memory; past it the table starts
// afresh (messages are constant strings, so it is rarely reached).
const maxTrackedMessages = 1024

// repeatLimiter is a slog.Handler that writes each distinct warning or
// error message at most once per window and adds to the next one written a
// "suppressed" count of those held back. Debug and info records pass as
// they are. Clones made by WithAttrs and WithGroup share one table.
type repeatLimiter struct {
	next   slog.Handler
	window time.Duration
	now    func() time.Time
	state  *repeatState
}

type repeatState struct {
	mu   sync.Mutex
	seen map[string]*repeatEntry
}

type repeatEntry struct {
	last       time.Time
	suppressed int
}

func newRepeatLimiter(next slog.Handler, window time.Duration, now func() time.Time) *repeatLimiter {
	return &repeatLimiter{next: next, window: window, now: now, state: &repeatState{seen: map[string]*repeatEntry{}}}
}

func (h *repeatLimiter) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *repeatLimiter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	key := r.Level.String() + "\x00" + r.Message
	now := h.now()
	h.state.mu.Lock()
	e := h.state.seen[key]
	if e != nil && now.Sub(e.last) < h.window {
		e.suppressed++
		h.state.mu.Unlock()
		return nil
	}
	held := 0
	if e != nil {
		held = e.suppressed
	}
	if len(h.state.seen) >= maxTrackedMessages {
		clear(h.state.seen)
	}
	h.state.seen[key] = &repeatEntry{last: now}
	h.state.mu.Unlock()
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", held))
	}
	return h.next.Handle(ctx, r)
}

func (h *repeatLimiter) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	return &c
}

func (h *repeatLimiter) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}

// redisLogger carries go-redis's own log lines (pool dial failures,
// Sentinel and Cluster notices) into slog, so that a JSON log stays JSON
// while Redis fails. go-redis prints to the standard logger otherwise.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	// The format is the stable part: it names the event, so the repeat
	// limiter groups by it; the values go in an attribute.
	l.logger.WarnContext(ctx, "redis client: "+strings.TrimPrefix(strings.TrimSpace(format), "redis: "),
		slog.String("detail", fmt.Sprintf(format, v...)))
}
