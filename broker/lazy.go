package broker

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/groupgate/groupgate"
)

// Backoff is the schedule of retries while a provider cannot be opened:
// Initial after the first failure, multiplied by Factor after each further
// one, never more than Max, each delay shortened by a random fraction of
// up to Jitter (0.2: anywhere in (80%, 100%] of the nominal delay), so
// that the replicas of a rolling restart do not hit a recovering IdP in
// lockstep. Jitter only shortens: a delay never exceeds Max.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	Factor  float64
	Jitter  float64
}

// DefaultBackoff retries after about 1, 2, 4, 8, 16, 32 s and then every
// minute: a provider that answers again is picked up within a minute, and
// an IdP that is down gets about one discovery request a minute per
// replica.
var DefaultBackoff = Backoff{Initial: time.Second, Max: time.Minute, Factor: 2, Jitter: 0.2}

// DefaultOpenTimeout bounds one attempt to open a provider, so that an
// IdP that accepts connections but never answers holds neither serve's
// start nor the retry loop for the HTTP client's whole timeout.
const DefaultOpenTimeout = 10 * time.Second

// withDefaults fills zero fields from DefaultBackoff.
func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoff.Initial
	}
	if b.Max <= 0 {
		b.Max = max(DefaultBackoff.Max, b.Initial)
	}
	if b.Factor < 1 {
		b.Factor = DefaultBackoff.Factor
	}
	if b.Jitter < 0 || b.Jitter > 1 {
		b.Jitter = DefaultBackoff.Jitter
	}
	return b
}

// Delay is the wait after the failure numbered failure (1 for the first),
// with r in [0, 1) drawing the jitter.
func (b Backoff) Delay(failure int, r float64) time.Duration {
	b = b.withDefaults()
	d := float64(b.Max)
	if failure < 1 {
		failure = 1
	}
	// Initial*Factor^(n-1), computed in floats so that a long outage
	// cannot overflow before the cap applies.
	if n := float64(b.Initial) * math.Pow(b.Factor, float64(failure-1)); n < d {
		d = n
	}
	return time.Duration(d * (1 - b.Jitter*r))
}

// Opener opens the real connector, reading the IdP's discovery document
// or metadata. An error with code Unavailable means the IdP did not answer
// usably and is worth retrying; any other error is a configuration error.
type Opener[T any] func(ctx context.Context) (T, error)

// Lazy holds a connector that may not be open yet: Start tries to open
// it once, and while that fails with Unavailable, a background loop tries
// again on the Backoff schedule until it succeeds or Close. Until then Get
// answers Unavailable with a message safe to show, so the rest of
// groupgate (sessions, /auth, the API, SCIM, the other providers) runs
// while one IdP is down, and the provider is picked up without a restart
// once its IdP answers. It is safe for concurrent use.
type Lazy[T any] struct {
	name    string
	open    Opener[T]
	backoff Backoff
	timeout time.Duration
	after   func(time.Duration) <-chan time.Time
	rand    func() float64
	now     func() time.Time
	logger  *slog.Logger

	conn     atomic.Pointer[T]
	lastErr  atomic.Pointer[error]
	failures atomic.Uint64

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// LazyOption sets an optional dependency of NewLazy.
type LazyOption func(*lazyOptions)

type lazyOptions struct {
	backoff Backoff
	timeout time.Duration
	after   func(time.Duration) <-chan time.Time
	rand    func() float64
	now     func() time.Time
	logger  *slog.Logger
}

// WithBackoff sets the retry schedule (DefaultBackoff; zero fields take
// its values).
func WithBackoff(b Backoff) LazyOption { return func(o *lazyOptions) { o.backoff = b } }

// WithOpenTimeout bounds each attempt to open (DefaultOpenTimeout).
func WithOpenTimeout(d time.Duration) LazyOption { return func(o *lazyOptions) { o.timeout = d } }

// WithAfter sets what the retry loop waits with (time.After); tests
// inject a clock that fires when they say.
func WithAfter(after func(time.Duration) <-chan time.Time) LazyOption {
	return func(o *lazyOptions) { o.after = after }
}

// WithJitterSource sets the source of the jitter, values in [0, 1)
// (math/rand/v2's Float64).
func WithJitterSource(r func() float64) LazyOption { return func(o *lazyOptions) { o.rand = r } }

// WithLazyNow sets the clock of the logged outage durations (time.Now).
func WithLazyNow(now func() time.Time) LazyOption { return func(o *lazyOptions) { o.now = now } }

// WithLazyLogger sets the logger (slog.Default()).
func WithLazyLogger(l *slog.Logger) LazyOption { return func(o *lazyOptions) { o.logger = l } }

// NewLazy returns the not yet opened provider name, opened by open.
func NewLazy[T any](name string, open Opener[T], opts ...LazyOption) *Lazy[T] {
	o := lazyOptions{
		backoff: DefaultBackoff,
		timeout: DefaultOpenTimeout,
		after:   time.After,
		rand:    rand.Float64,
		now:     time.Now,
		logger:  slog.Default(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	l := &Lazy[T]{
		name: name, open: open, backoff: o.backoff.withDefaults(), timeout: o.timeout,
		after: o.after, rand: o.rand, now: o.now, logger: o.logger,
		done: make(chan struct{}),
	}
	err := error(groupgate.Errorf(groupgate.Unavailable, "Sign-in with %s is starting; try again in a moment", name))
	l.lastErr.Store(&err)
	return l
}

// Start makes the first attempt to open, bounded by the open timeout, and
// returns nil once it succeeded or when it failed with Unavailable: then
// the retry loop runs until the provider opens, ctx ends (serve's
// shutdown) or Close. Any other error (the configuration cannot work
// whatever the IdP does) is returned, and nothing keeps running.
func (l *Lazy[T]) Start(ctx context.Context) error {
	l.mu.Lock()
	if l.started || l.closed {
		l.mu.Unlock()
		return fmt.Errorf("provider %q: already started or closed", l.name)
	}
	l.started = true
	loopCtx, cancel := context.WithCancel(ctx)
	l.cancel = cancel
	l.mu.Unlock()

	err := l.attempt(loopCtx)
	switch {
	case err == nil:
		l.logger.InfoContext(ctx, "identity provider available", "provider", l.name)
		close(l.done)
		return nil
	case !groupgate.IsCode(err, groupgate.Unavailable):
		cancel()
		close(l.done)
		return err
	}
	since := l.now()
	l.logger.WarnContext(ctx, "identity provider unavailable; sign-in with it is off until it answers, other providers and signed-in users are not affected",
		"provider", l.name, "error", err)
	go l.retry(loopCtx, since)
	return nil
}

// attempt opens once and records the outcome.
func (l *Lazy[T]) attempt(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	c, err := l.open(actx)
	if err != nil {
		l.failures.Add(1)
		l.setErr(err)
		return err
	}
	l.conn.Store(&c)
	l.lastErr.Store(nil)
	return nil
}

// setErr keeps the error that Get returns: the cause for logs, and a
// message that names the provider and nothing of the IdP's answer.
func (l *Lazy[T]) setErr(cause error) {
	err := error(groupgate.WrapError(groupgate.Unavailable, cause,
		"Sign-in with %s is unavailable right now: groupgate cannot reach that identity provider. Try again in a few minutes, or choose another way to sign in", l.name))
	l.lastErr.Store(&err)
}

// retry tries again on the backoff schedule until the provider opens or
// ctx ends. It logs only the transition back to available; each failed
// attempt is counted (Failures) and logged at debug level.
func (l *Lazy[T]) retry(ctx context.Context, since time.Time) {
	defer close(l.done)
	for n := 1; ; n++ {
		d := l.backoff.Delay(n, l.rand())
		select {
		case <-ctx.Done():
			return
		case <-l.after(d):
		}
		if ctx.Err() != nil {
			return
		}
		err := l.attempt(ctx)
		if err == nil {
			l.logger.InfoContext(ctx, "identity provider available again; sign-in with it is back on",
				"provider", l.name, "attempts", n+1, "unavailable_for", l.now().Sub(since).Round(time.Second).String())
			return
		}
		if ctx.Err() != nil {
			return
		}
		l.logger.DebugContext(ctx, "identity provider still unavailable", "provider", l.name, "attempt", n+1, "error", err)
	}
}

// Get returns the open connector, or an Unavailable *groupgate.Error whose
// message says that sign-in with this provider is unavailable right now.
func (l *Lazy[T]) Get() (T, error) {
	if c := l.conn.Load(); c != nil {
		return *c, nil
	}
	var zero T
	if e := l.lastErr.Load(); e != nil {
		return zero, *e
	}
	return zero, groupgate.Errorf(groupgate.Unavailable, "Sign-in with %s is unavailable right now", l.name)
}

// Name is the provider's configured name, known before it opens.
func (l *Lazy[T]) Name() string { return l.name }

// Available reports whether the provider is open.
func (l *Lazy[T]) Available() bool { return l.conn.Load() != nil }

// Err is nil once the provider is open, else why it is not (for
// readiness bodies and logs).
func (l *Lazy[T]) Err() error {
	_, err := l.Get()
	return err
}

// Failures counts the failed attempts to open since NewLazy.
func (l *Lazy[T]) Failures() uint64 { return l.failures.Load() }

// Close stops the retry loop, waits for it, and closes the connector when
// it is open and has a Close method (a SAML connector's metadata
// refresher). It is safe to call more than once.
func (l *Lazy[T]) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	started, cancel := l.started, l.cancel
	l.mu.Unlock()
	if !started {
		return nil
	}
	cancel()
	<-l.done
	if c := l.conn.Load(); c != nil {
		if closer, ok := any(*c).(interface{ Close() error }); ok {
			return closer.Close()
		}
	}
	return nil
}

// LazyConnector is a redirect-login (OIDC) provider opened through Lazy:
// it logs in by delegating to the real connector once that is open, and
// answers Unavailable before. Its lifecycle (Start, Close, Available, Err,
// Failures) is Lazy's.
type LazyConnector struct {
	*Lazy[CallbackConnector]
	typ string
}

var (
	_ CallbackConnector = (*LazyConnector)(nil)
	_ LogoutConnector   = (*LazyConnector)(nil)
)

// NewLazyConnector returns provider name of protocol typ ("oidc"), opened
// by open; call Start.
func NewLazyConnector(name, typ string, open Opener[CallbackConnector], opts ...LazyOption) *LazyConnector {
	return &LazyConnector{Lazy: NewLazy(name, open, opts...), typ: typ}
}

// Type is the configured protocol.
func (c *LazyConnector) Type() string { return c.typ }

// LoginURL delegates; Unavailable while the provider is not open.
func (c *LazyConnector) LoginURL(ctx context.Context, a Attempt) (string, error) {
	conn, err := c.Get()
	if err != nil {
		return "", err
	}
	return conn.LoginURL(ctx, a)
}

// HandleCallback delegates; Unavailable while the provider is not open
// (a callback can only follow a LoginURL, so that means a replica that has
// not reached the IdP yet).
func (c *LazyConnector) HandleCallback(ctx context.Context, r *http.Request, a Attempt) (groupgate.Identity, Tokens, error) {
	conn, err := c.Get()
	if err != nil {
		return groupgate.Identity{}, Tokens{}, err
	}
	return conn.HandleCallback(ctx, r, a)
}

// LogoutURL delegates when the provider is open and can end sessions;
// while it is not, ok is false: groupgate's own session still ends, and
// the IdP's outlives it, as with an IdP without an end-session endpoint.
func (c *LazyConnector) LogoutURL(ctx context.Context, idTokenHint, postLogoutRedirect string) (string, bool, error) {
	conn, err := c.Get()
	if err != nil {
		return "", false, nil
	}
	lc, ok := conn.(LogoutConnector)
	if !ok {
		return "", false, nil
	}
	return lc.LogoutURL(ctx, idTokenHint, postLogoutRedirect)
}
