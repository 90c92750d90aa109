package web

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	stdsync "sync"
	"time"
)

// LoginLimits bound the login attempts a replica starts. Every start of a
// login (GET /login?provider=NAME, /saml/NAME/login) stores an attempt,
// with its return URL, for the attempt's lifetime before anyone has
// signed in; without a bound, a client can fill memory or Redis with
// them. The zero value of a field takes its default.
type LoginLimits struct {
	// PerClientBurst is how many logins one client address may start at
	// once (DefaultLoginPerClientBurst).
	PerClientBurst int
	// PerClientPerMinute is how fast that allowance refills
	// (DefaultLoginPerClientPerMinute).
	PerClientPerMinute float64
	// MaxLive caps the attempts this replica started within the last
	// AttemptTTL, whoever asked (DefaultLoginMaxLive). Attempts in Redis
	// are shared, so their total is at most MaxLive times the replicas.
	MaxLive int
	// AttemptTTL is how long a stored attempt lives
	// (broker.DefaultAttemptTTL, 10 minutes).
	AttemptTTL time.Duration
}

// Defaults of LoginLimits. A burst of 60 and 30 a minute let an office
// behind one NAT address sign in at the start of the day; one client can
// then hold at most 60 + 30×10 = 360 live attempts. 10,000 attempts of at
// most ~2.5 KiB each (the return URL is capped at redirectMaxLen) are
// about 25 MiB per replica.
const (
	DefaultLoginPerClientBurst     = 60
	DefaultLoginPerClientPerMinute = 30
	DefaultLoginMaxLive            = 10_000
	defaultLoginAttemptTTL         = 10 * time.Minute
)

// Reasons a login start is refused, the values of the "reason" label.
const (
	refusedClient = "client"
	refusedGlobal = "global"
)

func (l LoginLimits) withDefaults() LoginLimits {
	if l.PerClientBurst <= 0 {
		l.PerClientBurst = DefaultLoginPerClientBurst
	}
	if l.PerClientPerMinute <= 0 {
		l.PerClientPerMinute = DefaultLoginPerClientPerMinute
	}
	if l.MaxLive <= 0 {
		l.MaxLive = DefaultLoginMaxLive
	}
	if l.AttemptTTL <= 0 {
		l.AttemptTTL = defaultLoginAttemptTTL
	}
	return l
}

// loginLimiter is a token bucket per client address and a count of the
// attempts started within the attempt lifetime on this replica. Its memory
// is bounded: the global ring holds at most MaxLive times, and a client
// has a bucket only after one of its attempts was admitted and until the
// bucket would be full again, so there are never more buckets than
// MaxLive. It is safe for concurrent use.
type loginLimiter struct {
	limits LoginLimits
	// rate is tokens per nanosecond; refill is how long an empty bucket
	// takes to fill, after which it is forgotten.
	rate   float64
	refill time.Duration

	mu      stdsync.Mutex
	clients map[netip.Prefix]*bucket
	// started is a ring of admission times, oldest at head: one per
	// attempt that may still be live.
	started   []time.Time
	head, n   int
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLoginLimiter(l LoginLimits) *loginLimiter {
	l = l.withDefaults()
	rate := l.PerClientPerMinute / float64(time.Minute)
	return &loginLimiter{
		limits:  l,
		rate:    rate,
		refill:  time.Duration(math.Ceil(float64(l.PerClientBurst) / rate)),
		clients: map[netip.Prefix]*bucket{},
		started: make([]time.Time, l.MaxLive),
	}
}

// clientKey is the address a limit applies to: an IPv4 address, or the
// /64 of an IPv6 one, since a single host commonly holds a whole /64. An
// unknown address (a Unix socket peer) shares one bucket.
func clientKey(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}

// admit takes one attempt for client at now. When it refuses, it says why
// and how long until a retry could succeed.
func (l *loginLimiter) admit(client netip.Prefix, now time.Time) (ok bool, reason string, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()

	l.expireLocked(now)

	b := l.clients[client]
	tokens := float64(l.limits.PerClientBurst)
	if b != nil {
		// max: a clock set back refills nothing rather than draining.
		tokens = min(tokens, b.tokens+float64(max(0, now.Sub(b.at)))*l.rate)
	}
	if tokens < 1 {
		return false, refusedClient, time.Duration((1 - tokens) / l.rate)
	}
	if l.n == len(l.started) {
		return false, refusedGlobal, l.started[l.head].Add(l.limits.AttemptTTL).Sub(now)
	}
	if b == nil {
		if len(l.clients) >= l.limits.MaxLive {
			l.sweepLocked(now, true)
		}
		if len(l.clients) >= l.limits.MaxLive {
			// Unreachable while refill ≤ AttemptTTL; a guard otherwise.
			return false, refusedGlobal, l.refill
		}
		b = &bucket{}
		l.clients[client] = b
	}
	b.tokens, b.at = tokens-1, now
	l.started[(l.head+l.n)%len(l.started)] = now
	l.n++
	l.sweepLocked(now, false)
	return true, "", 0
}

// sweepLocked forgets buckets that have refilled, at most once per refill
// period unless forced, so that the map only holds clients seen lately.
func (l *loginLimiter) sweepLocked(now time.Time, force bool) {
	if !force && now.Sub(l.lastSweep) < l.refill {
		return
	}
	l.lastSweep = now
	for k, b := range l.clients {
		if now.Sub(b.at) >= l.refill {
			delete(l.clients, k)
		}
	}
}

// live is the number of attempts admitted within the attempt lifetime
// before now, for the gauge.
func (l *loginLimiter) live(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked(now)
	return l.n
}

// expireLocked drops admissions older than the attempt lifetime: those
// attempts have expired in the store.
func (l *loginLimiter) expireLocked(now time.Time) {
	for l.n > 0 && !now.Before(l.started[l.head].Add(l.limits.AttemptTTL)) {
		l.head = (l.head + 1) % len(l.started)
		l.n--
	}
}

// isLoginStart reports whether r is routed to a handler that stores a
// login attempt: /login naming a provider (or with only one configured,
// which skips the picker), and the SAML login start. The route is asked
// of the mux itself, so a path spelled another way cannot slip past. The
// cheap prefix test keeps the lookup off the hot /auth path.
func (s *Server) isLoginStart(mux *http.ServeMux, r *http.Request) bool {
	p := r.URL.Path
	if p != "/login" && !strings.HasPrefix(p, "/saml/") {
		return false
	}
	_, pattern := mux.Handler(r)
	if _, rest, ok := strings.Cut(pattern, " "); ok {
		pattern = rest // drop the method
	}
	switch {
	case pattern == "/login":
		return len(s.cfg.Providers) == 1 || hasQueryKey(r.URL.RawQuery, "provider")
	case strings.HasPrefix(pattern, "/saml/{") && strings.HasSuffix(pattern, "}/login"):
		return true
	}
	return false
}

// hasQueryKey reports whether the query names key, whatever its value. It
// errs on the side of yes (an empty value, a pair url.ParseQuery would
// drop), which only charges a start that stores nothing; and it unescapes
// keys alone, so that a long rd costs nothing before the limit.
func hasQueryKey(rawQuery, key string) bool {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, _, _ := strings.Cut(pair, "=")
		if k == key {
			return true
		}
		if strings.ContainsAny(k, "%+") {
			if u, err := url.QueryUnescape(k); err == nil && u == key {
				return true
			}
		}
	}
	return false
}

// limitLogins refuses a login start beyond the LoginLimits with 429 and
// Retry-After (RFC 6585 §4), as an HTML page since a browser asked.
// Nothing is stored for a refused start.
func (s *Server) limitLogins(mux *http.ServeMux) http.Handler {
	pages, err := tooManyPages()
	if err != nil {
		// The templates are embedded and parsed at init: a bug, not input.
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.isLoginStart(mux, r) {
			mux.ServeHTTP(w, r)
			return
		}
		ip := ClientIP(r, s.cfg.TrustedProxies)
		ok, reason, retry := s.limiter.admit(clientKey(ip), s.now())
		if ok {
			mux.ServeHTTP(w, r)
			return
		}
		s.metrics.loginRefused.WithLabelValues(reason).Inc()
		s.logger.DebugContext(r.Context(), "login start refused", "reason", reason, "client", ip.String(), "retry_after", retry)
		securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Retry-After", strconv.FormatInt(max(1, int64(math.Ceil(retry.Seconds()))), 10))
			h.Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusTooManyRequests)
			if r.Method != http.MethodHead {
				_, _ = w.Write(pages[reason])
			}
		})).ServeHTTP(w, r)
	})
}

// tooManyPages renders the 429 pages once, so that a flood of refused
// starts costs no template work.
func tooManyPages() (map[string][]byte, error) {
	out := map[string][]byte{}
	for reason, msg := range map[string]string{
		refusedClient: "Too many sign-in attempts came from your network. Wait a little, then try again.",
		refusedGlobal: "Too many sign-ins are in progress right now. Wait a little, then try again.",
	} {
		var buf bytes.Buffer
		data := pageData{Title: "Too many sign-in attempts", Message: msg, Status: http.StatusTooManyRequests}
		if err := pages["error"].ExecuteTemplate(&buf, "layout", data); err != nil {
			return nil, fmt.Errorf("render the 429 page: %w", err)
		}
		out[reason] = buf.Bytes()
	}
	return out, nil
}
