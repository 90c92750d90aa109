package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/graph"
	"github.com/groupgate/groupgate/broker/oidc"
	"github.com/groupgate/groupgate/broker/saml"
	"github.com/groupgate/groupgate/claims"
	"github.com/groupgate/groupgate/idtoken"
	"github.com/groupgate/groupgate/internal/tracing"
	"github.com/groupgate/groupgate/scim"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
	"github.com/groupgate/groupgate/web"
	"github.com/groupgate/groupgate/web/admin"
)

// app is a wired groupgate: what serve runs and dev runs with demo data.
// Close is registered on Main, not here.
type app struct {
	store    store.Store
	sessions session.Backend
	syncer   *sync.Syncer
	web      *web.Server
	// providers are the login providers' names in configuration order.
	providers []string
}

// Handler is the root handler of the listener.
func (a *app) Handler() http.Handler { return a.web.Handler() }

// buildApp wires every package from cfg. It talks to the network: the
// store is opened and migrated, and every OIDC provider's discovery
// document and every SAML IdP's metadata URL is tried once. An IdP that
// does not answer does not stop it: that provider is retried in the
// background (see buildProviders).
func (m *Main) buildApp(ctx context.Context, cfg Config, logger *slog.Logger) (*app, error) {
	pub, err := parsePublicURL(cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	tp, err := m.buildTracing(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	st, err := m.openStore(ctx, cfg, logger, pgTracing(tp)...)
	if err != nil {
		return nil, err
	}
	reg := buildRegistry()
	if err := reg.Register(newOutboxCollector(st.OutboxStats, m.Now, logger.With("component", "metrics"))); err != nil {
		return nil, fmt.Errorf("register outbox metrics: %w", err)
	}
	backend, checks, err := m.buildSessionBackend(cfg, reg, logger, tp)
	if err != nil {
		return nil, err
	}
	checks = append([]web.Check{{Name: "store", Func: st.Ping}}, checks...)

	filter, err := claims.NewFilter(cfg.Groups.Include, cfg.Groups.Exclude)
	if err != nil {
		// LoadConfig compiled every pattern already; this guards direct callers.
		return nil, fmt.Errorf("group filter: %w", err)
	}
	syncer := sync.New(st, backend,
		sync.WithGroupFilter(filter.Allowed),
		sync.WithNow(m.Now),
		sync.WithLogger(logger.With("component", "sync")),
		sync.WithOutbox(sync.DefaultOutboxLease, sync.DefaultOutboxGrace),
		sync.WithTrustedEmailProviders(trustedEmailProviders(cfg.Providers)...))
	m.startOutbox(ctx, syncer, logger)

	var samlOpts []saml.Option
	if cfg.SCIM.Enabled {
		// An Entra assertion that overflowed its groups may log in when SCIM
		// pushed the user's groups; without SCIM it is refused.
		samlOpts = append(samlOpts, saml.WithSCIMGroups(syncer.HoldsSCIMGroups))
	}
	providers, err := m.buildProviders(ctx, cfg.Providers, pub, filter, backend, logger, oidcTracing(tp), samlOpts...)
	if err != nil {
		return nil, err
	}
	if err := registerProviderMetrics(reg, providers.states); err != nil {
		return nil, err
	}
	login, err := broker.NewLogin(backend, providers.redirect, broker.WithLogger(logger.With("component", "broker")), broker.WithNow(m.Now),
		broker.WithSessionIndexTTL(cfg.Session.TTL.D()), broker.WithCallbackTimeout(m.IdPCallbackTimeout))
	if err != nil {
		return nil, fmt.Errorf("login broker: %w", err)
	}
	cookies, err := session.NewStore(backend, []byte(cfg.Session.Secret),
		session.WithCookieName(cfg.Session.CookieName),
		session.WithTTL(cfg.Session.TTL.D()),
		session.WithSecureCookie(cfg.Session.SecureCookie),
		session.WithNow(m.Now),
		session.WithLogger(logger.With("component", "session")))
	if err != nil {
		return nil, fmt.Errorf("session cookie store: %w", err)
	}
	policy, err := web.NewRedirectPolicy(pub, cfg.AllowedRedirectHosts)
	if err != nil {
		return nil, fmt.Errorf("allowed_redirect_hosts: %w", err)
	}
	deps := web.Deps{
		Login:          login,
		Sessions:       cookies,
		Accounts:       syncer,
		Redirects:      policy,
		Health:         web.NewHealth(checks, web.WithHealthLogger(logger), web.WithDegradingChecks(providers.checks()...)),
		SessionBackend: backend,
		Users:          st,
	}
	// Spans around the login, sync and session steps; unchanged when off.
	deps = web.TraceDeps(deps, tp.TracerProvider())
	apiOpts, err := apiTracing(tp)
	if err != nil {
		return nil, err
	}
	opts := []web.Option{
		web.WithTracerProvider(tp.TracerProvider()),
		web.WithLogger(logger.With("component", "web")),
		web.WithNow(m.Now),
		web.WithRegistry(reg),
		web.WithMount(buildAPI(cfg, st, syncer, backend, cookies, m.Now, logger, apiOpts...)),
	}
	console, err := buildAdmin(cfg, pub, st, syncer, backend, cookies, m.Now, logger)
	if err != nil {
		return nil, err
	}
	opts = append(opts, web.WithMount(console))
	if len(providers.saml) > 0 {
		endpoints, err := web.NewSAMLEndpoints(web.SAMLConfig{PublicURL: pub, SessionTTL: cfg.Session.TTL.D()}, deps, providers.saml,
			web.WithSAMLLogger(logger.With("component", "saml")), web.WithSAMLNow(m.Now))
		if err != nil {
			return nil, fmt.Errorf("SAML endpoints: %w", err)
		}
		opts = append(opts, web.WithSAML(endpoints))
	}
	if cfg.SCIM.Enabled {
		s, err := buildSCIM(cfg, pub, st, syncer, m.Now, logger)
		if err != nil {
			return nil, err
		}
		opts = append(opts, web.WithMount(s))
	}
	if cfg.IdentityToken.Enabled {
		tokens, err := m.buildIdentityTokens(ctx, cfg, st, logger)
		if err != nil {
			return nil, err
		}
		opts = append(opts, web.WithIdentityTokens(tokens))
	}
	backchannel, err := buildBackchannel(cfg, login, st, backend, m.Now, logger)
	if err != nil {
		return nil, err
	}
	opts = append(opts, web.WithMount(backchannel))
	refresher, err := m.buildRefresher(ctx, cfg, providers.redirect, backend, syncer, reg, logger)
	if err != nil {
		return nil, err
	}
	if refresher != nil {
		opts = append(opts, web.WithSessionRefresh(refresher))
	}
	srv, err := buildWeb(cfg, pub, providers.names, deps, opts...)
	if err != nil {
		return nil, err
	}
	return &app{store: st, sessions: backend, syncer: syncer, web: srv, providers: providers.names}, nil
}

// buildIdentityTokens opens the signer of X-Auth-Request-Jwt: it reads
// (or, on the first start, creates) the key set in the store, then keeps
// it in step with the other replicas and rotates it until Close.
func (m *Main) buildIdentityTokens(ctx context.Context, cfg Config, st store.Store, logger *slog.Logger) (*idtoken.Issuer, error) {
	it := cfg.IdentityToken
	audience := it.Audience
	if len(audience) == 0 {
		audience = []string{cfg.PublicURL}
	}
	logger = logger.With("component", "idtoken")
	// session.secret is the same on every replica (cookies depend on it),
	// so every replica can open the keys another one sealed.
	tokens, err := idtoken.New(st, []byte(cfg.Session.Secret), idtoken.Config{
		Issuer:         cfg.PublicURL,
		Audience:       audience,
		Algorithm:      it.Algorithm,
		TTL:            it.TTL.D(),
		RotationPeriod: it.RotationPeriod.D(),
		PublishAhead:   it.PublishAhead.D(),
		MaxGroups:      it.MaxGroups,
		MaxRoles:       it.MaxRoles,
		MaxBytes:       int(it.MaxBytes),
	}, idtoken.WithNow(m.Now), idtoken.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("identity_token: %w", err)
	}
	if err := tokens.Sync(ctx); err != nil {
		return nil, fmt.Errorf("identity_token: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tokens.Run(ctx)
	}()
	m.onClose(func() error {
		cancel()
		<-done
		return nil
	})
	return tokens, nil
}

// Redis client limits for sessions. go-redis's defaults (5s dial tried 5
// times, 3s reads, 3 retries) would hold a forward-auth request for many
// seconds while Redis is down or hung; these make it fail closed with 503
// in about a second, and recover by themselves once Redis answers.
const (
	redisDialTimeout = 500 * time.Millisecond
	redisIOTimeout   = time.Second
	redisMaxRetries  = 1
)

// newRedisClient connects to the configured servers with the session
// limits above. One address is a standalone server, several a Cluster,
// and a master_name makes them Sentinels (go-redis's universal rule). rm,
// when not nil, learns the Sentinel master of each connection.
func newRedisClient(r *RedisConfig, rm *redisMetrics) redis.UniversalClient {
	// session.NewClient: a Cluster client that follows a failover.
	o := &redis.UniversalOptions{
		Addrs:         r.Addrs,
		MasterName:    r.MasterName,
		Username:      r.Username,
		Password:      r.Password,
		DB:            r.DB,
		DialTimeout:   redisDialTimeout,
		DialerRetries: 1,
		ReadTimeout:   redisIOTimeout,
		WriteTimeout:  redisIOTimeout,
		MaxRetries:    redisMaxRetries,
	}
	if r.MasterName != "" && rm != nil {
		// Behind Sentinel, the dialer learns which master each new
		// connection goes to (rm counts the changes).
		o.Dialer = rm.sentinelDialer(redisDialTimeout, r.Addrs)
	}
	return session.NewClient(o)
}

// defaultOutboxInterval is how often the outbox is replayed. Entries wait
// sync.DefaultOutboxGrace first, so a change whose push failed reaches its
// sessions within about ten seconds of Redis answering again.
const defaultOutboxInterval = 5 * time.Second

// startOutbox replays the syncer's outbox every OutboxInterval until ctx
// ends (serve's shutdown) or Close runs. Close waits for it, and it is
// registered after the store, so it stops before the store closes.
func (m *Main) startOutbox(ctx context.Context, syncer *sync.Syncer, logger *slog.Logger) {
	interval := m.OutboxInterval
	if interval <= 0 {
		interval = defaultOutboxInterval
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := syncer.RunOutbox(ctx, interval); err != nil {
			logger.ErrorContext(ctx, "outbox runner stopped", "err", err)
		}
	}()
	m.onClose(func() error {
		cancel()
		<-done
		return nil
	})
}

// buildSessionBackend returns Redis sessions when redis is configured
// (behind the local cache unless redis.local_cache.enabled is false), else
// in-process ones, and the readiness checks that go with them. The cache's
// counters join reg.
func (m *Main) buildSessionBackend(cfg Config, reg prometheus.Registerer, logger *slog.Logger, tp *tracing.Provider) (session.Backend, []web.Check, error) {
	logger = logger.With("component", "session")
	if cfg.Redis == nil {
		return session.NewMemory(session.WithNow(m.Now), session.WithLogger(logger)), nil, nil
	}
	r := cfg.Redis
	rm := newRedisMetrics()
	client := newRedisClient(r, rm)
	m.onClose(client.Close)
	if err := rm.register(reg); err != nil {
		return nil, nil, err
	}
	// Registered after the client, so the Cluster watcher stops first.
	stopMetrics := rm.instrument(client, logger)
	m.onClose(func() error { stopMetrics(); return nil })
	if err := traceRedis(client, tp); err != nil {
		return nil, nil, err
	}
	rs, err := session.NewRedis(client, r.KeyPrefix, session.WithNow(m.Now), session.WithLogger(logger))
	if err != nil {
		return nil, nil, fmt.Errorf("redis sessions: %w", err)
	}
	if r.RecordEncoding == "json" {
		rs.WithJSONRecords()
	}
	if r.MasterName != "" {
		// Behind Sentinel, revoking writes are confirmed so that a
		// failover cannot undo them (session/failover.go).
		rs.GuardFailovers(r.Addrs, r.MasterName, r.Username, r.Password)
	}
	// Without the local cache the replica still announces its writes
	// (WithoutLocalCopies): other replicas may keep copies.
	var backend session.Backend = session.NewCache(rs, session.WithoutLocalCopies())
	if r.LocalCache.Enabled {
		cache := session.NewCache(rs, session.WithCacheTTL(r.LocalCache.TTL.D()), session.WithCacheSize(r.LocalCache.Size))
		// Registered after the client, so it stops before the client closes.
		m.onClose(cache.Close)
		if err := registerCacheMetrics(reg, cache); err != nil {
			return nil, nil, err
		}
		backend = cache
	}
	// Not pinged here: an unreachable Redis makes /readyz fail and logins
	// answer 503, but the process starts, so that it recovers by itself.
	return backend, []web.Check{{Name: "redis", Func: backend.Ping}}, nil
}

// registerCacheMetrics exposes the local cache's hit and miss counts, its
// size, whether it is in use (its invalidation channel confirmed), and
// how often it found an invalidation lost.
func registerCacheMetrics(reg prometheus.Registerer, c *session.Cache) error {
	count := func(hits bool) func() float64 {
		return func() float64 {
			h, m := c.Stats()
			if hits {
				return float64(h)
			}
			return float64(m)
		}
	}
	ready := func() float64 {
		if c.Ready() {
			return 1
		}
		return 0
	}
	for _, col := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "groupgate", Name: "session_cache_hits_total",
			Help: "Session loads answered from the local cache."}, count(true)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "groupgate", Name: "session_cache_misses_total",
			Help: "Session loads that went to Redis (not cached, expired, or cache off)."}, count(false)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "groupgate", Name: "session_cache_entries",
			Help: "Sessions held in the local cache."}, func() float64 { return float64(c.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "groupgate", Name: "session_cache_ready",
			Help: "1 while the cache's invalidation subscription is confirmed and it may answer; 0 while every load reads Redis."}, ready),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "groupgate", Name: "session_cache_losses_total",
			Help: "Times an invalidation was found lost (a sequence number missing, or the counter reset) and the cache emptied."},
			func() float64 { return float64(c.Losses()) }),
	} {
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("register session cache metrics: %w", err)
		}
	}
	return nil
}

// parsePublicURL parses public_url (LoadConfig checked its shape).
func parsePublicURL(raw string) (*url.URL, error) {
	pub, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("public_url: %w", err)
	}
	return pub, nil
}

// callbackURL is public_url joined with /callback/NAME, built the way
// web.Server.CallbackURL builds it; the connector needs it before the
// server exists.
func callbackURL(pub *url.URL, provider string) string {
	return joinPublic(pub, "/callback/"+url.PathEscape(provider))
}

// signedOutURL mirrors web.Server.SignedOutURL.
func signedOutURL(pub *url.URL) string { return joinPublic(pub, "/logged-out") }

func joinPublic(pub *url.URL, p string) string {
	u := *pub
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String()
}

// providerSet is the login providers.
type providerSet struct {
	// names are every provider's name in configuration order: the order of
	// the login page's picker.
	names []string
	// redirect are the OIDC connectors the login broker drives.
	redirect []broker.Connector
	// saml are the SAML connectors, served by web's SAML endpoints.
	saml []web.SAMLConnector
	// states are every provider, in order, as readiness and metrics see
	// them.
	states []providerState
}

// providerState is a provider opened through broker.Lazy, as readiness
// and metrics see it.
type providerState interface {
	Name() string
	Available() bool
	Err() error
	Failures() uint64
}

// checks are the providers' readiness checks, named idp:NAME. They
// degrade /readyz rather than fail it: a replica restart cannot bring an
// IdP back, and taking every replica out of rotation would lock out
// everyone already signed in (docs/decisions.md).
func (ps providerSet) checks() []web.Check {
	var checks []web.Check
	for _, s := range ps.states {
		checks = append(checks, web.Check{Name: "idp:" + s.Name(), Func: func(context.Context) error { return s.Err() }})
	}
	return checks
}

// lazyProvider is what buildProviders starts and closes.
type lazyProvider interface {
	providerState
	Start(ctx context.Context) error
	Close() error
}

// buildProviders makes one connector per configured provider, in order,
// and tries to open them all at once, each within broker's open timeout.
// A provider whose IdP does not answer (OIDC discovery, SAML metadata URL)
// does not stop serve: logins with it answer "unavailable" while broker.Lazy
// retries on m.IdPBackoff until it opens, until ctx ends or Close. Any
// other error (the IdP answered something no retry fixes, or a local
// file is wrong) fails the start, as before.
// oidcOpts apply to every OIDC connector (tracing's HTTP client).
func (m *Main) buildProviders(ctx context.Context, providers []ProviderConfig, pub *url.URL, filter *claims.Filter, backend session.Backend, logger *slog.Logger, oidcOpts []oidc.Option, samlOpts ...saml.Option) (providerSet, error) {
	var (
		set   providerSet
		lazy  []lazyProvider
		lopts = []broker.LazyOption{
			broker.WithBackoff(m.IdPBackoff), broker.WithLazyNow(m.Now),
			broker.WithLazyLogger(logger.With("component", "broker")),
		}
	)
	for _, p := range providers {
		switch p.Type {
		case "oidc":
			c := buildOIDC(p, pub, filter, logger, lopts, oidcOpts...)
			set.redirect = append(set.redirect, c)
			lazy = append(lazy, c)
		case "saml":
			c, err := m.buildSAML(p, pub, filter, backend, logger, lopts, samlOpts...)
			if err != nil {
				return providerSet{}, fmt.Errorf("provider %q: %w", p.Name, err)
			}
			set.saml = append(set.saml, c)
			lazy = append(lazy, c)
		default:
			// LoadConfig refuses other types; this guards direct callers.
			return providerSet{}, fmt.Errorf("provider %q: unknown provider type %q", p.Name, p.Type)
		}
		set.names = append(set.names, p.Name)
		set.states = append(set.states, lazy[len(lazy)-1])
	}
	// In parallel, so that several hung IdPs delay the start by one open
	// timeout, not one each.
	errs := make([]error, len(lazy))
	var wg stdsync.WaitGroup
	for i, l := range lazy {
		m.onClose(l.Close)
		wg.Go(func() {
			if err := l.Start(ctx); err != nil {
				errs[i] = fmt.Errorf("provider %q: %w", l.Name(), err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return providerSet{}, err
	}
	return set, nil
}

// registerProviderMetrics exports each provider's state: 1 while it can
// log in, 0 while its IdP's discovery or metadata does not answer, and
// the failed attempts to open it.
func registerProviderMetrics(reg prometheus.Registerer, states []providerState) error {
	for _, s := range states {
		labels := prometheus.Labels{"provider": s.Name()}
		for _, col := range []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "groupgate", Name: "idp_available", ConstLabels: labels,
				Help: "1 while sign-in with the provider works, 0 while its IdP's discovery document or metadata cannot be read (retried with backoff)."},
				func() float64 {
					if s.Available() {
						return 1
					}
					return 0
				}),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "groupgate", Name: "idp_open_failures_total", ConstLabels: labels,
				Help: "Failed attempts to read the provider's discovery document or metadata, at start and while retrying."},
				func() float64 { return float64(s.Failures()) }),
		} {
			if err := reg.Register(col); err != nil {
				return fmt.Errorf("register provider metrics: %w", err)
			}
		}
	}
	return nil
}

// buildSAML returns a SAML connector that reads the IdP's metadata when
// started. Login attempts and the assertion replay cache live in the
// session backend, so that every replica shares them.
func (m *Main) buildSAML(p ProviderConfig, pub *url.URL, filter *claims.Filter, backend session.Backend, logger *slog.Logger, lopts []broker.LazyOption, extra ...saml.Option) (*saml.Lazy, error) {
	if p.SPCertFile == "" {
		// An ephemeral key would differ between replicas and restarts, and
		// IdPs that encrypt assertions to it would break.
		return nil, fmt.Errorf("a SAML provider needs sp_cert_file and sp_key_file, the SP's certificate and key in PEM " +
			"(e.g. openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=groupgate -keyout sp.key -out sp.crt)")
	}
	keys, err := tls.LoadX509KeyPair(p.SPCertFile, p.SPKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load SP key pair: %w", err)
	}
	urls := web.SAMLProviderURLs(pub, p.Name)
	gopts, err := samlGraph(p, logger)
	if err != nil {
		return nil, err
	}
	return saml.NewLazy(saml.Config{
		IDPMetadataFile:                   p.IDPMetadataFile,
		IDPMetadataURL:                    p.IDPMetadataURL,
		IDPMetadataXML:                    p.IDPMetadataXML,
		EntityID:                          p.SPEntityID,
		ACSURL:                            urls.ACS,
		SLOURL:                            urls.SLO,
		KeyPair:                           keys,
		SignAuthnRequests:                 true,
		AllowIDPInitiated:                 p.AllowIDPInitiated,
		RequireSignedResponseAndAssertion: p.RequireSignedResponseAndAssertion,
		ClockSkew:                         p.ClockSkew.D(),
		GroupsAttribute:                   p.GroupsAttribute,
		GroupsDelimiter:                   p.GroupsDelimiter,
		UsernameAttribute:                 p.UsernameAttribute,
		EmailAttribute:                    p.EmailAttribute,
		NameAttribute:                     p.DisplayNameAttribute,
		Filter:                            filter,
	}, p.Name, backend, backend, lopts, append(append([]saml.Option{saml.WithNow(m.Now), saml.WithLogger(logger)}, extra...), gopts...)...), nil
}

// newGraphClient is a provider's Microsoft Graph client for group overage.
func newGraphClient(g *GraphConfig, logger *slog.Logger) (*graph.Client, error) {
	return graph.New(graph.Config{BaseURL: g.URL, MaxGroups: g.MaxGroups, Timeout: g.Timeout.D()},
		graph.WithLogger(logger.With("component", "graph")))
}

// samlGraph returns the option that resolves a SAML provider's group
// overage through Graph with its application credential, if configured.
func samlGraph(p ProviderConfig, logger *slog.Logger) ([]saml.Option, error) {
	if p.Graph == nil {
		return nil, nil
	}
	gc, err := newGraphClient(p.Graph, logger)
	if err != nil {
		return nil, fmt.Errorf("provider %q graph: %w", p.Name, err)
	}
	ts := gc.TokenSource(graph.ClientCredentials{TenantID: p.Graph.TenantID, ClientID: p.Graph.ClientID,
		ClientSecret: p.Graph.ClientSecret, TokenURL: p.Graph.TokenURL})
	return []saml.Option{saml.WithGraph(gc, ts)}, nil
}

// buildOIDC returns an OIDC connector that runs discovery when started.
func buildOIDC(p ProviderConfig, pub *url.URL, filter *claims.Filter, logger *slog.Logger, lopts []broker.LazyOption, extra ...oidc.Option) *broker.LazyConnector {
	cfg := oidc.Config{
		Issuer:        p.Issuer,
		ClientID:      p.ClientID,
		ClientSecret:  p.ClientSecret,
		Scopes:        p.Scopes,
		RedirectURL:   callbackURL(pub, p.Name),
		GroupsClaim:   p.GroupsClaim,
		UsernameClaim: p.UsernameClaim,
		EmailClaim:    p.EmailClaim,
		GroupsFrom:    p.GroupsFrom,
		Filter:        filter,
	}
	opts := slices.Clone(extra)
	if p.Graph != nil {
		gc, err := newGraphClient(p.Graph, logger)
		if err != nil {
			// validateGraph checked the URL; this guards direct callers.
			return broker.NewLazyConnector(p.Name, "oidc", func(context.Context) (broker.CallbackConnector, error) {
				return nil, err
			}, lopts...)
		}
		opts = append(opts, oidc.WithGraph(gc))
	}
	return broker.NewLazyConnector(p.Name, "oidc", func(ctx context.Context) (broker.CallbackConnector, error) {
		return cfg.Open(ctx, p.Name, logger, opts...)
	}, lopts...)
}

// buildAPI is the Connect API: bearer tokens, and the browser session
// cookie (CSRF-checked) for the admin UI.
func buildAPI(cfg Config, st store.Store, syncer *sync.Syncer, backend session.Backend, cookies *session.Store, now func() time.Time, logger *slog.Logger, extra ...api.Option) *api.API {
	return api.New(st, syncer, append([]api.Option{
		api.WithAdmins(cfg.Admins),
		api.WithSessions(backend),
		api.WithCookieAuth(api.SessionCookieAuth(cookies)),
		api.WithBodyLimit(int64(cfg.API.BodyLimit)),
		api.WithTokenPolicy(api.TokenPolicy{
			SessionMaxLifetime: cfg.API.Tokens.SessionMaxLifetime.D(),
			DefaultLifetime:    cfg.API.Tokens.DefaultLifetime.D(),
			MaxLifetime:        cfg.API.Tokens.MaxLifetime.D(),
			MaxPerUser:         cfg.API.Tokens.MaxPerUser,
		}),
		api.WithNow(now),
		api.WithLogger(logger.With("component", "api"))}, extra...)...)
}

// buildAdmin is the /admin/ console, signed in by the browser session. Its
// form tokens are keyed by a key derived from session.secret, so that every
// replica accepts every other one's forms without another secret to
// configure.
func buildAdmin(cfg Config, pub *url.URL, st store.Store, syncer *sync.Syncer, backend session.Backend, cookies *session.Store, now func() time.Time, logger *slog.Logger) (*admin.Console, error) {
	mac := hmac.New(sha256.New, []byte(cfg.Session.Secret))
	mac.Write([]byte("groupgate admin console form key"))
	lifetime := cfg.API.Tokens.SessionMaxLifetime.D()
	if lifetime <= 0 {
		lifetime = api.DefaultTokenPolicy().SessionMaxLifetime
	}
	c, err := admin.New(admin.Config{
		PublicURL:       pub,
		Admins:          sync.NewAdmins(cfg.Admins),
		CSRFKey:         mac.Sum(nil),
		TokenLifetime:   lifetime,
		TokenMaxPerUser: cfg.API.Tokens.MaxPerUser,
		SCIMEnabled:     cfg.SCIM.Enabled,
	}, st, syncer, cookies, backend, admin.WithLogger(logger.With("component", "admin")), admin.WithNow(now))
	if err != nil {
		return nil, fmt.Errorf("admin console: %w", err)
	}
	return c, nil
}

// buildSCIM is the SCIM 2.0 endpoint at /scim/v2/, writing through the
// syncer so that deactivations end sessions and group pushes move roles.
func buildSCIM(cfg Config, pub *url.URL, st store.Store, syncer *sync.Syncer, now func() time.Time, logger *slog.Logger) (web.Mounter, error) {
	sst, ok := st.(scim.Store)
	if !ok {
		return nil, fmt.Errorf("scim.enabled: the %s store cannot serve SCIM", cfg.Store.Driver)
	}
	match := sync.MatchEmail
	if cfg.SCIM.MatchKey == "username" {
		match = sync.MatchUserName
	}
	srv := scim.NewServer(sst, syncer,
		scim.WithNow(now),
		scim.WithLogger(logger.With("component", "scim")),
		scim.WithMaxBodyBytes(int64(cfg.SCIM.BodyLimit)),
		scim.WithMatchKey(match),
		scim.WithBaseURL(joinPublic(pub, "/scim/v2")))
	return web.MountFunc(func(mux *http.ServeMux) { mux.Handle("/scim/v2/", srv) }), nil
}

// buildWeb assembles the HTTP surface; opts carry the other packages'
// routes, the logger, clock and metrics registry.
func buildWeb(cfg Config, pub *url.URL, providers []string, deps web.Deps, opts ...web.Option) (*web.Server, error) {
	trusted, err := web.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	wcfg := web.Config{
		PublicURL:      pub,
		Providers:      providers,
		SessionTTL:     cfg.Session.TTL.D(),
		SecureCookies:  cfg.Session.SecureCookie,
		TrustedProxies: trusted,
		// metrics.listen serves them apart; see runServe.
		MetricsOnMainListener: cfg.Metrics.OnMainListener,
		ProxyReadTimeout:      cfg.HTTP.ProxyReadTimeout.D(),
		ProxyWriteTimeout:     cfg.HTTP.ProxyWriteTimeout.D(),
		LoginLimits: web.LoginLimits{
			PerClientBurst:     cfg.LoginLimits.PerClientBurst,
			PerClientPerMinute: float64(cfg.LoginLimits.PerClientPerMinute),
			MaxLive:            cfg.LoginLimits.MaxLiveAttempts,
			// OIDC and SAML attempts both live this long.
			AttemptTTL: broker.DefaultAttemptTTL,
		},
	}
	for _, p := range cfg.Providers {
		if p.DisplayName != "" {
			if wcfg.DisplayNames == nil {
				wcfg.DisplayNames = map[string]string{}
			}
			wcfg.DisplayNames[p.Name] = p.DisplayName
		}
	}
	if cfg.Upstream != "" {
		if wcfg.Upstream, err = url.Parse(cfg.Upstream); err != nil {
			return nil, fmt.Errorf("upstream: %w", err)
		}
	}
	for i, r := range cfg.UpstreamRoutes {
		req, err := sync.ParseRequirement(r.Org, r.Repo, r.Group, r.MinRole)
		if err != nil {
			// LoadConfig checked every route; this guards direct callers.
			return nil, fmt.Errorf("upstream_routes[%d]: %w", i, err)
		}
		wcfg.Routes = append(wcfg.Routes, web.Route{PathPrefix: r.PathPrefix, Require: req})
	}
	srv, err := web.NewServer(wcfg, deps, opts...)
	if err != nil {
		return nil, fmt.Errorf("http server: %w", err)
	}
	return srv, nil
}

// buildBackchannel is the OIDC back-channel logout receiver
// (/backchannel-logout/NAME) of every OIDC provider.
func buildBackchannel(cfg Config, login *broker.Login, users web.UserLookup, backend session.Backend, now func() time.Time, logger *slog.Logger) (*web.BackchannelLogout, error) {
	trusted, err := web.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	var oidcNames []string
	for _, p := range cfg.Providers {
		if p.Type == "oidc" {
			oidcNames = append(oidcNames, p.Name)
		}
	}
	b, err := web.NewBackchannelLogout(web.BackchannelConfig{Providers: oidcNames, TrustedProxies: trusted}, login, users, backend,
		web.WithBackchannelLogger(logger.With("component", "backchannel")), web.WithBackchannelNow(now))
	if err != nil {
		return nil, fmt.Errorf("back-channel logout: %w", err)
	}
	return b, nil
}

// buildRegistry is a private Prometheus registry with the Go runtime and
// process collectors, so /metrics also shows memory and file descriptors.
func buildRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// trustedEmailProviders names the providers configured with trust_email.
func trustedEmailProviders(ps []ProviderConfig) []string {
	var names []string
	for _, p := range ps {
		if p.TrustEmail {
			names = append(names, p.Name)
		}
	}
	return names
}
