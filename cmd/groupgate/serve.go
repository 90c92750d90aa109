package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
)

// buildLogger returns a slog logger per the log section; format "" uses
// fallback (serve defaults to JSON for log shippers, CLI commands to text).
func buildLogger(cfg LogConfig, w io.Writer, fallback string) *slog.Logger {
	var level slog.Level
	// LoadConfig accepted only known level names.
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.Format
	if format == "" {
		format = fallback
	}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(newRepeatLimiter(h, repeatWindow, time.Now))
}

// listen binds addr ("host:port"; port 0 picks a free one).
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// buildHTTPServer returns the server for h with hc's limits. The read and
// write timeouts are deadlines for the whole request and response, sized
// for groupgate's own routes; web's reverse proxy replaces them per
// request with http.ResponseController (http.proxy_read_timeout,
// proxy_write_timeout), so that proxying keeps streaming.
//
// HTTP/2 over cleartext (h2c, prior knowledge only: no Upgrade) is on
// beside HTTP/1.1, so that gRPC clients reach the Connect API directly;
// HTTP/2 over TLS stays available to a TLS listener.
func buildHTTPServer(h http.Handler, logger *slog.Logger, hc HTTPConfig) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		ReadHeaderTimeout: hc.ReadHeaderTimeout.D(),
		ReadTimeout:       hc.ReadTimeout.D(),
		WriteTimeout:      hc.WriteTimeout.D(),
		IdleTimeout:       hc.IdleTimeout.D(),
		MaxHeaderBytes:    int(hc.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// lateHandler answers 503 until its handler is set. The listener accepts
// before the wiring is done because dev's own IdP, served on the same
// listener, must answer the OIDC discovery that the wiring performs.
type lateHandler struct {
	h atomic.Pointer[http.Handler]
}

func (l *lateHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, "groupgate is starting", http.StatusServiceUnavailable)
}

func (m *Main) runServe(ctx context.Context) error {
	// Whatever happens, Addr must not wait forever.
	defer m.markReady()

	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	logger := buildLogger(cfg.Log, m.Stderr, "json")
	if cfg.Redis != nil {
		// go-redis's logger is process-wide; serve runs once per process.
		redis.SetLogger(redisLogger{logger: logger.With("component", "redis")})
	}
	if cfg.Tracing.Enabled() {
		// Like go-redis's logger, otel's error handler is process-wide:
		// the one global of OpenTelemetry that groupgate sets (tracing.go).
		otel.SetErrorHandler(otelErrors{logger: logger.With("component", "tracing")})
	}
	ln, err := listen(cfg.Listen)
	if err != nil {
		return err
	}
	metrics := &lateHandler{}
	metricsAddr := "off"
	if cfg.Metrics.Listen != "" {
		addr, err := m.serveMetrics(cfg.Metrics.Listen, metrics, cfg.HTTP, logger)
		if err != nil {
			_ = ln.Close()
			return err
		}
		metricsAddr = addr.String()
	}
	root := &lateHandler{}
	return m.serveOn(ctx, ln, root, cfg.HTTP, logger, func(ctx context.Context) error {
		a, err := m.buildApp(ctx, cfg, logger)
		if err != nil {
			return err
		}
		metrics.set(a.web.MetricsHandler())
		root.set(a.Handler())
		logger.Info("groupgate listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL,
			"store", cfg.Store.Driver, "redis", cfg.Redis != nil, "providers", a.providers, "upstream", cfg.Upstream,
			"metrics", metricsAddr, "metrics_on_main_listener", cfg.Metrics.OnMainListener)
		return nil
	})
}

// serveMetrics serves h at /metrics on its own listener at addr, for
// Prometheus, until Close; nothing else is served there. The main
// listener is the public one (in reverse-proxy mode, the application's
// host), so the metrics are kept off it unless metrics.on_main_listener.
func (m *Main) serveMetrics(addr string, h http.Handler, hc HTTPConfig, logger *slog.Logger) (net.Addr, error) {
	ln, err := listen(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := buildHTTPServer(mux, logger, hc)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	m.onClose(func() error {
		err := srv.Close()
		<-served
		return err
	})
	return ln.Addr(), nil
}

// serveOn serves h on ln, runs start (the wiring; h may answer 503 until
// it is done), reports the address to Addr, and then serves until ctx is
// cancelled, when it shuts down gracefully within ShutdownTimeout. If
// start fails, the server is closed and start's error returned.
func (m *Main) serveOn(ctx context.Context, ln net.Listener, h http.Handler, hc HTTPConfig, logger *slog.Logger, start func(context.Context) error) error {
	srv := buildHTTPServer(h, logger, hc)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	if err := start(ctx); err != nil {
		_ = srv.Close()
		<-served
		return err
	}
	m.setListening(ln.Addr())

	select {
	case err := <-served:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", "timeout", m.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down http server: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	logger.Info("stopped")
	return nil
}
