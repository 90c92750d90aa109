package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/sync"
)

// LoginFlow is the redirect login pipeline; *broker.Login implements it.
type LoginFlow interface {
	// Begin starts a login at provider that returns to returnTo (already
	// validated). NotFound for an unknown provider, Invalid for one that
	// does not log in by redirect, Unavailable when the attempt cannot be
	// stored.
	Begin(ctx context.Context, provider, returnTo string) (broker.Started, error)
	// Finish completes the login that the IdP callback r belongs to.
	// Invalid for a callback of no live attempt of this browser,
	// Unauthenticated when the IdP refused or its answer does not verify,
	// Unavailable when the IdP or the attempt store cannot be reached.
	Finish(ctx context.Context, provider string, r *http.Request) (broker.Result, error)
	// LogoutURL is the IdP's end-session URL; ok is false when it has none.
	LogoutURL(ctx context.Context, provider, idTokenHint, postLogoutRedirect string) (string, bool, error)
}

// SessionStore keeps browser sessions; *session.Store implements it.
type SessionStore interface {
	// Start issues a new session (new ID) for rec and sets the cookie.
	Start(w http.ResponseWriter, r *http.Request, rec *session.Record) error
	// Current is the request's session: Unauthenticated without a live one,
	// Unavailable when the backend cannot be read.
	Current(r *http.Request) (*session.Record, error)
	// CurrentView is Current for a reader that changes nothing (/auth):
	// the record may be shared with other requests.
	CurrentView(r *http.Request) (*session.View, error)
	// End deletes the request's session and expires the cookie.
	End(w http.ResponseWriter, r *http.Request) error
	// CookieName is the session cookie's name, kept away from the upstream.
	CookieName() string
}

// AccountSyncer turns a login into a user with roles; *sync.Syncer
// implements it.
type AccountSyncer interface {
	// Login finds or creates the user of ident and returns their snapshot.
	// Forbidden for a deactivated user.
	Login(ctx context.Context, ident groupgate.Identity) (groupgate.User, groupgate.Memberships, error)
	// Resolve returns the user's effective roles with their sources.
	// NotFound when the user no longer exists.
	Resolve(ctx context.Context, userID string) (sync.Access, error)
	// SessionStarted follows the save of a session holding the snapshot
	// Login returned: it pushes the user's access again, to every live
	// session of theirs, the new one included, only if a change may have
	// been pushed between Login's read and the save.
	SessionStarted(ctx context.Context, userID string)
}

// Config holds the static settings of the HTTP surface, read from the
// configuration file; it holds no runtime state.
type Config struct {
	// PublicURL is public_url: the absolute URL browsers reach groupgate
	// at. Login, callback and signed-out URLs are built on it; a path in it
	// must be stripped by the front proxy (routes are served at the root).
	PublicURL *url.URL
	// Providers are the names of every identity provider, OIDC and SAML
	// alike, in the order the picker shows them; one provider skips the
	// picker. A name served by the SAML endpoints (WithSAML) logs in by
	// SAML, every other one through Deps.Login.
	Providers []string
	// DisplayNames are the names the provider picker shows, by provider
	// name (providers[].display_name); a provider without one shows its
	// name.
	DisplayNames map[string]string
	// SessionTTL is session.ttl: how long a login lasts.
	SessionTTL time.Duration
	// SecureCookies is session.secure_cookie, applied to the login binding
	// cookie too.
	SecureCookies bool
	// TrustedProxies may tell the original URL and client address; nil
	// trusts nobody.
	TrustedProxies *TrustedProxies
	// Upstream, when set, turns on reverse-proxy mode: every path that is
	// not groupgate's own goes there for signed-in users.
	Upstream *url.URL
	// MaxBodyBytes caps request bodies on groupgate's own routes (default
	// DefaultMaxBodyBytes). Proxied requests are not capped.
	MaxBodyBytes int64
	// LoginLimits bound the login attempts started per client address and
	// in total; zero fields take their defaults.
	LoginLimits LoginLimits
	// MetricsOnMainListener serves /metrics on Handler as well. Off by
	// default: in reverse-proxy mode the main listener is the
	// application's public host, and the metrics (login and refusal
	// counts, process details) are for the operator. MetricsHandler serves
	// them on a listener of their own.
	MetricsOnMainListener bool
	// ProxyReadTimeout and ProxyWriteTimeout are the deadlines of one
	// proxied request: reading its body from the client, and writing the
	// application's answer to it. They replace the listener's deadlines,
	// which are sized for groupgate's own routes, so that uploads and
	// streamed answers may take longer, but not forever. Zero: no
	// deadline.
	ProxyReadTimeout  time.Duration
	ProxyWriteTimeout time.Duration
	// Routes are requirements per upstream path prefix in reverse-proxy
	// mode (upstream_routes): a signed-in caller who lacks one gets 403.
	Routes []Route
}

// DefaultMaxBodyBytes is the body limit of groupgate's own routes.
const DefaultMaxBodyBytes = 1 << 20

// Deps are the services the server calls. NewServer requires Login,
// Sessions, Accounts and Redirects; NewSAMLEndpoints requires Sessions,
// Accounts, Redirects, SessionBackend and Users.
type Deps struct {
	Login     LoginFlow
	Sessions  SessionStore
	Accounts  AccountSyncer
	Redirects *RedirectPolicy
	// Health answers /healthz and /readyz; nil means no readiness checks.
	Health *Health
	// SessionBackend reaches sessions without the browser's cookie, which
	// the IdP's cross-site SAML POSTs do not carry; session.Backend
	// implements it. Used by the SAML endpoints only.
	SessionBackend SessionBackend
	// Users finds the user of a provider's subject (store.UserStore), so
	// that an IdP's logout request can end that user's sessions. Used by
	// the SAML endpoints only.
	Users UserLookup
}

// Mounter registers its own routes; the Connect API (*API) and SCIM
// handlers implement it.
type Mounter interface {
	Mount(mux *http.ServeMux)
}

// MountFunc adapts a function to Mounter.
type MountFunc func(mux *http.ServeMux)

// Mount calls f.
func (f MountFunc) Mount(mux *http.ServeMux) { f(mux) }

// Option sets an optional dependency of NewServer.
type Option func(*Server)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// WithNow sets the clock that judges session expiry (default time.Now).
func WithNow(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithRegistry sets the Prometheus registry the server's metrics are
// registered on and MetricsHandler serves. Default: a private registry, never
// the global one.
func WithRegistry(reg *prometheus.Registry) Option { return func(s *Server) { s.registry = reg } }

// WithMount adds routes of another package (the Connect API, SCIM, the
// admin UI) to the server's mux, behind the logging and panic-recovery
// middleware. Routes it registers take precedence over reverse-proxy mode.
func WithMount(m Mounter) Option { return func(s *Server) { s.mounts = append(s.mounts, m) } }

// WithSAML adds the SAML providers: their /saml/NAME/ routes are mounted,
// /login starts their logins, /logout sends their sessions through SAML
// Single Logout, and their logins count in the server's login metrics.
// Each of their names must be listed in Config.Providers. The endpoints
// belong to this one server.
func WithSAML(e *SAMLEndpoints) Option { return func(s *Server) { s.saml = e } }

// WithUpstreamTransport sets the transport of reverse-proxy mode (default
// http.DefaultTransport).
func WithUpstreamTransport(t http.RoundTripper) Option {
	return func(s *Server) { s.transport = t }
}

// Server is the browser and proxy HTTP surface: login, callback, logout,
// forward-auth, whoami, reverse proxy, health and metrics. It is safe for
// concurrent use.
type Server struct {
	cfg      Config
	deps     Deps
	now      func() time.Time
	logger   *slog.Logger
	registry *prometheus.Registry
	metrics  *metrics
	// authSeries is read-only after NewServer.
	authSeries map[string]authSeries
	mounts     []Mounter
	saml       *SAMLEndpoints
	transport  http.RoundTripper
	proxy      *httputil.ReverseProxy
	limiter    *loginLimiter
	handler    http.Handler
	// tokens signs X-Auth-Request-Jwt; nil: the header is not sent.
	tokens IdentityTokens
	// tracer records request spans (tracing.go); nil: tracing is off.
	tracer trace.TracerProvider
	// refresh keeps OIDC refresh tokens (WithSessionRefresh); nil: none.
	refresh SessionRefresher
}

// NewServer builds the HTTP surface. cmd/groupgate wires it as:
//
//	login, _ := broker.NewLogin(backend, oidcConnectors, broker.WithLogger(l))
//	store, _ := session.NewStore(backend, secret, session.WithTTL(ttl), ...)
//	deps := web.Deps{Login: login, Sessions: store, Accounts: syncer,
//		Redirects: policy, Health: health,
//		SessionBackend: backend, Users: st} // the last two for SAML
//	// Only when SAML providers are configured; each *saml.Connector is
//	// opened with the URLs of web.SAMLProviderURLs(pub, name).
//	samlEP, _ := web.NewSAMLEndpoints(web.SAMLConfig{PublicURL: pub,
//		SessionTTL: ttl}, deps, samlConnectors, web.WithSAMLLogger(l),
//		web.WithSAMLNow(now))
//	srv, err := web.NewServer(web.Config{PublicURL: pub,
//		Providers: allNamesInConfigOrder, // OIDC and SAML together
//		SessionTTL: ttl, SecureCookies: secure, TrustedProxies: tp, Upstream: up},
//		deps, web.WithLogger(l), web.WithRegistry(reg), web.WithMount(api),
//		web.WithSAML(samlEP))
//	http.Server{Handler: srv.Handler()}
//
// Each OIDC provider's redirect URL is CallbackURL(name), and its allowed
// post-logout redirect URI is SignedOutURL().
func NewServer(cfg Config, deps Deps, opts ...Option) (*Server, error) {
	s := &Server{
		cfg:       cfg,
		deps:      deps,
		now:       time.Now,
		logger:    slog.New(slog.DiscardHandler),
		transport: http.DefaultTransport,
	}
	for _, o := range opts {
		o(s)
	}
	var problems []string
	if cfg.PublicURL == nil || !cfg.PublicURL.IsAbs() || cfg.PublicURL.Host == "" {
		problems = append(problems, "public URL must be an absolute URL")
	}
	if cfg.SessionTTL <= 0 {
		problems = append(problems, "session TTL must be positive")
	}
	if cfg.Upstream != nil && (!cfg.Upstream.IsAbs() || cfg.Upstream.Host == "") {
		problems = append(problems, "upstream must be an absolute URL")
	}
	if deps.Login == nil || deps.Sessions == nil || deps.Accounts == nil || deps.Redirects == nil {
		problems = append(problems, "login flow, session store, account syncer and redirect policy are required")
	}
	problems = append(problems, s.checkProviders()...)
	problems = append(problems, checkRoutes(cfg)...)
	if len(problems) > 0 {
		return nil, groupgate.Errorf(groupgate.Invalid, "web server: %s", strings.Join(problems, "; "))
	}
	if s.cfg.MaxBodyBytes <= 0 {
		s.cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if s.deps.Health == nil {
		s.deps.Health = NewHealth(nil)
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	s.limiter = newLoginLimiter(cfg.LoginLimits)
	m, err := newMetrics(s.registry, func() float64 { return float64(s.limiter.live(s.now())) })
	if err != nil {
		return nil, fmt.Errorf("web server: %w", err)
	}
	s.metrics = m
	s.authSeries = newAuthSeries(m)
	if s.saml != nil {
		s.saml.logins = m.logins
	}
	if cfg.Upstream != nil {
		s.proxy = s.newReverseProxy()
	}
	s.handler = s.routes()
	return s, nil
}

// checkProviders refuses a provider list the picker would show wrongly: a
// name twice, or a SAML provider missing from it.
func (s *Server) checkProviders() []string {
	var problems []string
	seen := map[string]bool{}
	for _, name := range s.cfg.Providers {
		if seen[name] {
			problems = append(problems, "provider "+name+" is listed twice")
		}
		seen[name] = true
	}
	if s.saml != nil {
		for _, name := range s.saml.names() {
			if !seen[name] {
				problems = append(problems, "SAML provider "+name+" is not in the provider list")
			}
		}
	}
	return problems
}

// isSAML reports whether provider logs in through the SAML endpoints.
func (s *Server) isSAML(provider string) bool {
	return s.saml != nil && s.saml.conns[provider] != nil
}

// Handler returns the root handler of the listener.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler serves the registry's metrics in the Prometheus text
// format, for a metrics listener of its own (metrics.listen).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler(s.registry) }

// CallbackURL is the OIDC redirect URI of provider, to register at the IdP.
func (s *Server) CallbackURL(provider string) string {
	return s.publicPath("/callback/" + url.PathEscape(provider))
}

// SignedOutURL is where the IdP sends the browser after RP-initiated
// logout (post_logout_redirect_uri), to register at the IdP.
func (s *Server) SignedOutURL() string { return s.publicPath("/logged-out") }

// publicPath is public_url joined with an absolute path.
func (s *Server) publicPath(p string) string {
	u := *s.cfg.PublicURL
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String()
}

// loginURL is the absolute /login URL that returns to rd after login:
// absolute, since forward-auth answers go to browsers on another host.
func (s *Server) loginURL(rd string) string {
	return s.publicPath("/login") + "?rd=" + url.QueryEscape(s.deps.Redirects.Validate(rd))
}

// routes assembles the mux and the middleware chains:
//
//   - baseChain (panic recovery, request scope, request log) wraps the
//     whole mux, mounted routes and the proxy included;
//   - pageChain (security headers, body limit) guards HTML pages;
//   - apiChain (no-store, nosniff, body limit) guards JSON;
//   - authChain (no-store, nosniff) guards the forward-auth endpoint,
//     which reads no body;
//   - limitLogins, inside baseChain, bounds the login starts (/login with
//     a provider, /saml/NAME/login) per client address and in total.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	pageChain := chain(securityHeaders, limitBody(s.cfg.MaxBodyBytes))
	apiChain := chain(noStore, limitBody(s.cfg.MaxBodyBytes))

	mux.Handle("/login", pageChain(allow(s.handleLogin, http.MethodGet)))
	mux.Handle("/callback/{provider}", pageChain(allow(s.handleCallback, http.MethodGet)))
	csrf := http.NewCrossOriginProtection()
	if err := csrf.AddTrustedOrigin(s.origin()); err != nil {
		s.logger.Warn("public URL is not a trusted origin for logout", "error", err)
	}
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, groupgate.Errorf(groupgate.Forbidden, "cross-site sign-out request refused"))
	}))
	mux.Handle("/logout", pageChain(csrf.Handler(allow(s.handleLogout, http.MethodGet, http.MethodPost))))
	mux.Handle("/logged-out", pageChain(allow(s.handleSignedOut, http.MethodGet)))
	// /auth never reads a body: no body limit to set up on every request.
	authChain := noStore
	mux.Handle("/auth", authChain(http.HandlerFunc(s.handleAuth)))
	mux.Handle("/whoami", apiChain(allow(s.handleWhoami, http.MethodGet)))
	if s.tokens != nil {
		mux.Handle(JWKSPath, s.tokens.JWKSHandler())
	}
	if s.cfg.MetricsOnMainListener {
		mux.Handle("GET /metrics", s.MetricsHandler())
	}
	s.deps.Health.Mount(mux)
	if s.saml != nil {
		s.saml.mount(mux)
	}
	// Every other path under groupgate's own prefixes is groupgate's to
	// answer: nothing there may reach the application (a callback's code,
	// an IdP's post, a binding cookie).
	notFound := pageChain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, groupgate.Errorf(groupgate.NotFound, "page not found"))
	}))
	mux.Handle("/callback/", notFound)
	if s.saml != nil {
		mux.Handle("/saml/", notFound)
	}
	for _, m := range s.mounts {
		m.Mount(mux)
	}
	if s.proxy != nil {
		mux.Handle("/", s.proxyDeadlines(http.HandlerFunc(s.handleProxy)))
	} else {
		mux.Handle("/", notFound)
	}
	return s.traceRequests(chain(s.recoverPanics, s.logRequests)(s.nameRoute(s.limitLogins(mux))))
}

// origin is public_url's scheme and host.
func (s *Server) origin() string { return s.cfg.PublicURL.Scheme + "://" + s.cfg.PublicURL.Host }

// chain composes middleware; the first one is the outermost.
func chain(mw ...func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		for i := len(mw) - 1; i >= 0; i-- {
			h = mw[i](h)
		}
		return h
	}
}

// allow answers 405 to other methods; GET allows HEAD.
func allow(h http.HandlerFunc, methods ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range methods {
			if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
				h(w, r)
				return
			}
		}
		w.Header().Set("Allow", strings.Join(methods, ", "))
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	})
}

// securityHeaders are for groupgate's own HTML pages: no scripts, no
// framing, no referrer (callback URLs carry codes), no caching.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// noStore keeps identity answers out of every cache.
func noStore(next http.Handler) http.Handler {
	// Every answer shares these two values (no allocation per request);
	// each is capped at one element, so that an Add to either header
	// reallocates instead of writing into the shared array.
	v := []string{"no-store", "nosniff"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Cache-Control"] = v[0:1:1]
		h["X-Content-Type-Options"] = v[1:2:2]
		next.ServeHTTP(w, r)
	})
}

func limitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}

// requestScope is the one typed value a request carries in its context:
// what middleware and handlers learn about the request, never a
// dependency.
type requestScope struct {
	// session is the caller's live session once loaded; sessionErr why
	// there is none (Unauthenticated, or Unavailable: fail closed).
	session       *session.Record
	sessionErr    error
	sessionLoaded bool
	// view is the session /auth read, shared with other requests (see
	// currentView); set apart from session so that no handler that
	// changes its record is handed a shared one.
	view *session.View
	// idToken is the signed identity token of a proxied request, set
	// before the proxy's Rewrite adds it.
	idToken string
}

type scopeKey struct{}

// scopeContext is the request's context with its scope in it: what
// context.WithValue(parent, scopeKey{}, &sc) answers, in the same
// allocation as the scope and the status writer. Everything but Value is
// the parent's, so cancellation and deadlines are untouched.
type scopeContext struct {
	context.Context
	sc requestScope
	sw statusWriter
}

func (c *scopeContext) Value(key any) any {
	if key == (scopeKey{}) {
		return &c.sc
	}
	return c.Context.Value(key)
}

// scopeOf returns the request's scope; a fresh one outside baseChain.
func scopeOf(r *http.Request) *requestScope {
	if sc, ok := r.Context().Value(scopeKey{}).(*requestScope); ok {
		return sc
	}
	return &requestScope{}
}

// currentSession loads the caller's session once per request. A session
// past its expiry by our clock counts as absent even if the backend still
// returned it.
func (s *Server) currentSession(r *http.Request) (*session.Record, error) {
	sc := scopeOf(r)
	if !sc.sessionLoaded {
		sc.sessionLoaded = true
		rec, err := s.deps.Sessions.Current(r)
		if err == nil && !s.now().Before(rec.ExpiresAt) {
			rec, err = nil, groupgate.Errorf(groupgate.Unauthenticated, "session expired")
		}
		sc.session, sc.sessionErr = rec, err
	}
	return sc.session, sc.sessionErr
}

// currentView is the caller's session for /auth, read once per request
// like currentSession, but possibly shared with other requests: the
// caller must not change it.
func (s *Server) currentView(r *http.Request) (*session.View, error) {
	v, err := s.deps.Sessions.CurrentView(r)
	if err == nil && !s.now().Before(v.Record().ExpiresAt) {
		v, err = nil, groupgate.Errorf(groupgate.Unauthenticated, "session expired")
	}
	scopeOf(r).view = v
	return v, err
}

// statusWriter remembers the status for the request log. Unwrap lets
// http.ResponseController (the reverse proxy's flushes) reach the real
// writer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// quietPaths are polled constantly (probes, scrapes, forward-auth on every
// asset); they log at debug level unless they fail.
var quietPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/auth": true}

// logRequests puts the request scope in the context and logs each request:
// method, path without the query (callbacks carry codes), status, duration,
// client and user. Never headers, cookies or tokens.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// The scope, the status writer and the context that carries the
		// scope live as long as the request: one allocation for all three.
		sctx := &scopeContext{Context: r.Context(), sw: statusWriter{ResponseWriter: w}}
		sc, sw := &sctx.sc, &sctx.sw
		next.ServeHTTP(sw, r.WithContext(sctx))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		level := slog.LevelInfo
		if quietPaths[r.URL.Path] && status < 500 {
			level = slog.LevelDebug
		}
		if !s.logger.Enabled(r.Context(), level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)),
			slog.String("client", ClientIP(r, s.cfg.TrustedProxies).String()),
		}
		if sc.session != nil {
			attrs = append(attrs, slog.String("user_id", sc.session.UserID))
		} else if sc.view != nil {
			attrs = append(attrs, slog.String("user_id", sc.view.Record().UserID))
		}
		attrs = s.traceAttrs(r.Context(), attrs)
		s.logger.LogAttrs(r.Context(), level, "http request", attrs...)
	})
}

// recoverPanics turns a handler panic into a 500 instead of a dropped
// connection, except http.ErrAbortHandler, which means "drop it".
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(p)
			}
			s.logger.ErrorContext(r.Context(), "handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(p))
			http.Error(w, "internal error", http.StatusInternalServerError)
		}()
		next.ServeHTTP(w, r)
	})
}

// redirect answers code with Location target as given; http.Redirect
// would clean and rewrite relative targets.
func redirect(w http.ResponseWriter, target string, code int) {
	w.Header().Set("Location", target)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
}
