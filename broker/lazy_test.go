package broker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
)

func TestBackoffDelayGrowsToTheCapAndJitterOnlyShortens(t *testing.T) {
	b := broker.Backoff{Initial: time.Second, Max: 10 * time.Second, Factor: 2, Jitter: 0.2}
	tests := []struct {
		name    string
		failure int
		r       float64
		want    time.Duration
	}{
		{"the first failure waits Initial", 1, 0, time.Second},
		{"the second waits twice as long", 2, 0, 2 * time.Second},
		{"the fourth waits eight times as long", 4, 0, 8 * time.Second},
		{"the fifth is capped at Max", 5, 0, 10 * time.Second},
		{"a long outage stays at Max without overflowing", 10_000, 0, 10 * time.Second},
		{"jitter shortens by up to Jitter", 1, 0.5, 900 * time.Millisecond},
		{"jitter at the cap stays below Max", 50, 0.999, 10*time.Second - time.Duration(0.2*0.999*float64(10*time.Second))},
		{"failure numbers below 1 count as the first", 0, 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.Delay(tt.failure, tt.r); got != tt.want {
				t.Fatalf("Delay(%d, %v) = %s, want %s", tt.failure, tt.r, got, tt.want)
			}
		})
	}
	t.Run("zero fields take the defaults", func(t *testing.T) {
		if got := (broker.Backoff{}).Delay(1, 0); got != broker.DefaultBackoff.Initial {
			t.Fatalf("got %s", got)
		}
	})
}

// fakeClock hands the retry loop's waits to the test, which fires them.
type fakeClock struct {
	waits chan time.Duration
	fire  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{waits: make(chan time.Duration, 100), fire: make(chan time.Time)}
}

func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	f.waits <- d
	return f.fire
}

// next receives the loop's next wait, failing after a real second.
func (f *fakeClock) next(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-f.waits:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("the retry loop did not wait again")
		return 0
	}
}

// stubIdP is an opener that fails with Unavailable until up is set.
type stubIdP struct {
	up    atomic.Bool
	opens atomic.Int32
}

func (s *stubIdP) open(context.Context) (broker.CallbackConnector, error) {
	s.opens.Add(1)
	if !s.up.Load() {
		return nil, groupgate.WrapError(groupgate.Unavailable, errors.New("dial tcp 127.0.0.1:1: connection refused"), "discovery failed")
	}
	return stubConnector{}, nil
}

type stubConnector struct{}

func (stubConnector) Name() string { return "corp" }
func (stubConnector) Type() string { return "oidc" }
func (stubConnector) LoginURL(_ context.Context, a broker.Attempt) (string, error) {
	return "https://idp.example/authorize?state=" + a.State(), nil
}
func (stubConnector) HandleCallback(context.Context, *http.Request, broker.Attempt) (groupgate.Identity, broker.Tokens, error) {
	return groupgate.Identity{Provider: "corp", Subject: "s"}, broker.Tokens{}, nil
}
func (stubConnector) LogoutURL(context.Context, string, string) (string, bool, error) {
	return "https://idp.example/logout", true, nil
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLazyConnectorRetriesOnTheBackoffScheduleAndPicksTheProviderUp(t *testing.T) {
	clock, idp, logs := newFakeClock(), &stubIdP{}, &logBuffer{}
	backoff := broker.Backoff{Initial: time.Second, Max: 4 * time.Second, Factor: 2, Jitter: 0.2}
	c := broker.NewLazyConnector("corp", "oidc", idp.open,
		broker.WithBackoff(backoff), broker.WithAfter(clock.After), broker.WithJitterSource(func() float64 { return 0.5 }),
		broker.WithLazyLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	attempt := broker.NewAttempt("corp", "/", time.Now(), time.Minute)

	if err := c.Start(ctx); err != nil {
		t.Fatalf("Start with the IdP down = %v, want nil (retry in the background)", err)
	}
	t.Run("while the IdP is down a login is Unavailable and names the provider", func(t *testing.T) {
		_, err := c.LoginURL(ctx, attempt)
		if !groupgate.IsCode(err, groupgate.Unavailable) || !strings.Contains(groupgate.ErrorMessageOf(err), "Sign-in with corp is unavailable") {
			t.Fatalf("LoginURL = %v", err)
		}
		if strings.Contains(groupgate.ErrorMessageOf(err), "127.0.0.1") {
			t.Fatalf("the safe message leaks the cause: %q", groupgate.ErrorMessageOf(err))
		}
		if _, ok, err := c.LogoutURL(ctx, "", ""); ok || err != nil {
			t.Fatalf("LogoutURL = %v, %v; want no IdP logout and no error", ok, err)
		}
		if c.Available() || c.Err() == nil {
			t.Fatal("reported available")
		}
	})
	t.Run("retries wait 1s, 2s, 4s, 4s (capped), each shortened by the jitter", func(t *testing.T) {
		want := []time.Duration{900 * time.Millisecond, 1800 * time.Millisecond, 3600 * time.Millisecond, 3600 * time.Millisecond}
		for i, w := range want {
			if got := clock.next(t); got != w {
				t.Fatalf("wait %d = %s, want %s", i+1, got, w)
			}
			if i == len(want)-1 {
				idp.up.Store(true)
			}
			clock.fire <- time.Time{}
		}
	})
	t.Run("the provider is picked up once the IdP answers", func(t *testing.T) {
		deadline := time.Now().Add(5 * time.Second)
		for !c.Available() {
			if time.Now().After(deadline) {
				t.Fatal("not available after the IdP answered")
			}
			time.Sleep(time.Millisecond)
		}
		u, err := c.LoginURL(ctx, attempt)
		if err != nil || !strings.HasPrefix(u, "https://idp.example/authorize") {
			t.Fatalf("LoginURL = %q, %v", u, err)
		}
		if u, ok, err := c.LogoutURL(ctx, "", ""); !ok || err != nil || u == "" {
			t.Fatalf("LogoutURL = %q, %v, %v", u, ok, err)
		}
		if got := c.Failures(); got != 4 {
			t.Fatalf("Failures = %d, want 4 (the start and three retries)", got)
		}
		if got := idp.opens.Load(); got != 5 {
			t.Fatalf("opened %d times, want 5", got)
		}
	})
	t.Run("each state change is logged once, not every retry", func(t *testing.T) {
		// The line follows the switch; give the loop its moment.
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(logs.String(), "available again") && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		out := logs.String()
		if n := strings.Count(out, "identity provider unavailable"); n != 1 {
			t.Errorf("%d 'unavailable' lines, want 1:\n%s", n, out)
		}
		if n := strings.Count(out, "identity provider available again"); n != 1 {
			t.Errorf("%d 'available again' lines, want 1:\n%s", n, out)
		}
		if strings.Contains(out, "still unavailable") {
			t.Errorf("a retry was logged at info level:\n%s", out)
		}
	})
	t.Run("no retry is scheduled once open", func(t *testing.T) {
		select {
		case d := <-clock.waits:
			t.Fatalf("another wait of %s", d)
		case <-time.After(50 * time.Millisecond):
		}
	})
}

func TestLazyStartOpensAtOnceWhenTheIdPAnswers(t *testing.T) {
	idp := &stubIdP{}
	idp.up.Store(true)
	c := broker.NewLazyConnector("corp", "oidc", idp.open, broker.WithAfter(newFakeClock().After), broker.WithLazyLogger(slog.New(slog.DiscardHandler)))
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !c.Available() || c.Failures() != 0 {
		t.Fatalf("available %v, failures %d", c.Available(), c.Failures())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLazyStartReturnsAConfigurationError(t *testing.T) {
	clock := newFakeClock()
	c := broker.NewLazyConnector("corp", "oidc", func(context.Context) (broker.CallbackConnector, error) {
		return nil, errors.New("issuer does not match the discovery document")
	}, broker.WithAfter(clock.After), broker.WithLazyLogger(slog.New(slog.DiscardHandler)))
	if err := c.Start(context.Background()); err == nil || groupgate.IsCode(err, groupgate.Unavailable) {
		t.Fatalf("Start = %v, want the configuration error", err)
	}
	select {
	case d := <-clock.waits:
		t.Fatalf("a retry was scheduled (%s) for an error no IdP can fix", d)
	case <-time.After(50 * time.Millisecond):
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLazyRetryStopsOnCloseAndOnShutdown(t *testing.T) {
	for _, stop := range []string{"Close", "cancelled context"} {
		t.Run(stop, func(t *testing.T) {
			clock, idp := newFakeClock(), &stubIdP{}
			c := broker.NewLazyConnector("corp", "oidc", idp.open, broker.WithAfter(clock.After), broker.WithLazyLogger(slog.New(slog.DiscardHandler)))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			clock.next(t)
			closed := make(chan error, 1)
			if stop == "Close" {
				go func() { closed <- c.Close() }()
			} else {
				cancel()
				go func() { closed <- c.Close() }()
			}
			select {
			case err := <-closed:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not return: the retry loop did not stop")
			}
			if got := idp.opens.Load(); got != 1 {
				t.Fatalf("opened %d times after stopping, want only the first attempt", got)
			}
		})
	}
}

func TestLazyStartGivesUpOnAHungIdPWithinTheOpenTimeout(t *testing.T) {
	clock := newFakeClock()
	c := broker.NewLazyConnector("corp", "oidc", func(ctx context.Context) (broker.CallbackConnector, error) {
		<-ctx.Done() // accepts the connection, never answers
		return nil, groupgate.WrapError(groupgate.Unavailable, ctx.Err(), "discovery failed")
	}, broker.WithOpenTimeout(50*time.Millisecond), broker.WithAfter(clock.After), broker.WithLazyLogger(slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { _ = c.Close() })
	start := time.Now()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Start took %s with a 50ms open timeout", d)
	}
	if c.Available() {
		t.Fatal("available")
	}
	clock.next(t) // and a retry is scheduled
}
