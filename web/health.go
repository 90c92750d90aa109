package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

// DefaultCheckTimeout bounds the whole readiness probe: a load balancer
// polls it every few seconds, so a hung dependency must not hang the probe.
const DefaultCheckTimeout = 2 * time.Second

// Check is one named readiness dependency, for example the store's Ping or
// Redis's PING.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Health answers liveness (/healthz) and readiness (/readyz).
type Health struct {
	checks []Check
	// degrading are the checks of WithDegradingChecks.
	degrading []Check
	timeout   time.Duration
	logger    *slog.Logger
}

// HealthOption configures a Health.
type HealthOption func(*Health)

// WithCheckTimeout sets the time all readiness checks together may take.
func WithCheckTimeout(d time.Duration) HealthOption {
	return func(h *Health) { h.timeout = d }
}

// WithHealthLogger logs failed checks, with their causes, which the
// response body never carries.
func WithHealthLogger(l *slog.Logger) HealthOption {
	return func(h *Health) { h.logger = l }
}

// WithDegradingChecks adds checks of dependencies that a replica restart
// cannot fix, such as an identity provider: a failed one is named under
// "degraded" in the /readyz body (status "degraded") and not logged here
// (its owner logs each change of state), but readiness still answers 200.
// Taking every replica out of rotation for one IdP would lock out everyone
// already signed in, and bring none of them back.
func WithDegradingChecks(checks ...Check) HealthOption {
	return func(h *Health) { h.degrading = append(h.degrading, checks...) }
}

// NewHealth returns a Health that runs checks, in order, on /readyz.
func NewHealth(checks []Check, opts ...HealthOption) *Health {
	h := &Health{
		checks:  append([]Check(nil), checks...),
		timeout: DefaultCheckTimeout,
		logger:  slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Mount registers /healthz and /readyz on mux.
func (h *Health) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", h.Live)
	mux.HandleFunc("GET /readyz", h.Ready)
}

// Live always answers 200: the process is up and serving HTTP. It checks no
// dependency on purpose, so that an orchestrator does not restart every
// replica when the database blips.
func (h *Health) Live(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// readyBody is the /readyz response. It names failed checks and nothing
// else: causes may hold hostnames or DSNs, so they go to the log only.
type readyBody struct {
	Status   string   `json:"status"`
	Failed   []string `json:"failed,omitempty"`
	Degraded []string `json:"degraded,omitempty"`
}

// Ready runs every check under one deadline and answers 200 when all pass,
// else 503 naming the ones that failed. Failed degrading checks are named
// under "degraded" and leave the answer 200.
func (h *Health) Ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()

	all := append(append([]Check(nil), h.checks...), h.degrading...)
	results := make([]chan error, len(all))
	for i, c := range all {
		results[i] = make(chan error, 1)
		go func() { results[i] <- runCheck(ctx, c.Func) }()
	}

	body := readyBody{Status: "ok"}
	for i, c := range all {
		var err error
		select {
		case err = <-results[i]:
		case <-ctx.Done():
			// A check that ignores its context must not hold the probe; one
			// that finished just in time still counts.
			select {
			case err = <-results[i]:
			default:
				err = ctx.Err()
			}
		}
		switch {
		case err == nil:
		case i >= len(h.checks):
			body.Degraded = append(body.Degraded, c.Name)
		default:
			h.logger.LogAttrs(ctx, slog.LevelWarn, "readiness check failed",
				slog.String("check", c.Name), slog.Any("error", err))
			body.Failed = append(body.Failed, c.Name)
		}
	}

	status := http.StatusOK
	if len(body.Degraded) > 0 {
		body.Status = "degraded"
	}
	if len(body.Failed) > 0 {
		body.Status = "unavailable"
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// runCheck turns a panicking check into a failure instead of a crashed
// probe goroutine.
func runCheck(ctx context.Context, f func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errPanicked
		}
	}()
	return f(ctx)
}

type checkError string

func (e checkError) Error() string { return string(e) }

const errPanicked = checkError("check panicked")
