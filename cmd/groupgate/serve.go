package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate/web"
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
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// buildRedis returns a client for standalone, Sentinel (master_name set) or
// Cluster (several addresses) Redis. It does not connect yet.
func buildRedis(cfg *RedisConfig) redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:      cfg.Addrs,
		MasterName: cfg.MasterName,
		Username:   cfg.Username,
		Password:   cfg.Password,
		DB:         cfg.DB,
	})
}

// buildHandler mounts the routes that exist so far.
func buildHandler(health *web.Health) http.Handler {
	mux := http.NewServeMux()
	health.Mount(mux)
	return mux
}

// buildHTTPServer binds cfg.Listen. Timeouts bound slow clients; the
// write timeout is left to handlers because the reverse proxy streams.
func buildHTTPServer(listen string, h http.Handler, logger *slog.Logger) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", listen, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return srv, ln, nil
}

func (m *Main) runServe(ctx context.Context) error {
	// Whatever happens, Addr must not wait forever.
	defer m.markReady()

	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	logger := buildLogger(cfg.Log, m.Stderr, "json")

	st, err := m.openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	checks := []web.Check{{Name: "store", Func: st.Ping}}
	if cfg.Redis != nil {
		rdb := buildRedis(cfg.Redis)
		m.onClose(rdb.Close)
		checks = append(checks, web.Check{Name: "redis", Func: func(ctx context.Context) error {
			return rdb.Ping(ctx).Err()
		}})
	}
	health := web.NewHealth(checks, web.WithHealthLogger(logger))

	srv, ln, err := buildHTTPServer(cfg.Listen, buildHandler(health), logger)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	m.setListening(ln.Addr())
	logger.Info("groupgate listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "store", cfg.Store.Driver)

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
