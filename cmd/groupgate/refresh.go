package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/refresh"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/sync"
)

// RefreshConfig is providers[].refresh: keep the groups of an OIDC
// provider's sessions fresh with the refresh token (offline_access).
type RefreshConfig struct {
	Enabled bool `yaml:"enabled"`
	// MaxGroupAge is the oldest a session's groups may get; the refresh
	// runs at three quarters of it.
	MaxGroupAge Duration `yaml:"max_group_age"`
	// Grace is how long past max_group_age a session whose refreshes fail
	// for a passing reason (IdP unreachable) is kept before it is ended.
	// A refresh token the IdP refuses (invalid_grant) ends it at once.
	Grace Duration `yaml:"grace"`
}

func (r *RefreshConfig) setDefaults() {
	r.MaxGroupAge = Duration(time.Hour)
	r.Grace = Duration(15 * time.Minute)
}

// validateRefresh checks providers[].refresh of OIDC provider p and, when
// it is enabled, asks for offline_access, without which IdPs issue no
// refresh token.
func (d *decoder) validateRefresh(p *ProviderConfig, at string) {
	r := p.Refresh
	if !r.Enabled {
		return
	}
	if r.MaxGroupAge.D() < time.Second {
		d.problemf(at+".max_group_age", "must be at least 1s")
	}
	if r.Grace.D() < 0 {
		d.problemf(at+".grace", "must not be negative")
	}
	if !slices.Contains(p.Scopes, "offline_access") {
		p.Scopes = append(p.Scopes, "offline_access")
	}
}

// refreshInterval is how often a replica looks for sessions due for
// refresh: often enough against the shortest max_group_age, at most every
// refresh.DefaultInterval.
func refreshInterval(providers map[string]refresh.Provider) time.Duration {
	d := refresh.DefaultInterval
	for _, p := range providers {
		d = min(d, max(p.MaxGroupAge/20, 100*time.Millisecond))
	}
	return d
}

// buildRefresher returns the session refresher of the providers with
// refresh enabled, running until ctx ends or Close; nil when none has it.
// redirect are the OIDC connectors by name.
func (m *Main) buildRefresher(ctx context.Context, cfg Config, redirect []broker.Connector, backend session.Backend, syncer *sync.Syncer, reg prometheus.Registerer, logger *slog.Logger) (*refresh.Refresher, error) {
	providers := map[string]refresh.Provider{}
	for _, p := range cfg.Providers {
		if p.Type != "oidc" || !p.Refresh.Enabled {
			continue
		}
		var rc broker.RefreshConnector
		if i := slices.IndexFunc(redirect, func(c broker.Connector) bool { return c.Name() == p.Name }); i >= 0 {
			rc, _ = redirect[i].(broker.RefreshConnector)
		}
		if rc == nil {
			return nil, fmt.Errorf("provider %q: refresh is enabled but its connector cannot refresh", p.Name)
		}
		providers[p.Name] = refresh.Provider{Connector: rc, MaxGroupAge: p.Refresh.MaxGroupAge.D(), Grace: p.Refresh.Grace.D()}
	}
	if len(providers) == 0 {
		return nil, nil
	}
	// Beside the sessions: in Redis, shared by the replicas, or in this
	// process with in-process sessions.
	store := refresh.NewMemoryStore(m.Now)
	if cfg.Redis != nil {
		client := newRedisClient(cfg.Redis)
		m.onClose(client.Close)
		var err error
		if store, err = refresh.NewRedisStore(client, cfg.Redis.KeyPrefix); err != nil {
			return nil, fmt.Errorf("session refresh: %w", err)
		}
	}
	r, err := refresh.New(store, []byte(cfg.Session.Secret), backend, syncer, providers,
		refresh.WithNow(m.Now),
		refresh.WithLogger(logger.With("component", "refresh")),
		refresh.WithRegisterer(reg),
		refresh.WithInterval(refreshInterval(providers)))
	if err != nil {
		return nil, fmt.Errorf("session refresh: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	// Registered after the client, so it stops before the client closes.
	m.onClose(func() error {
		cancel()
		<-done
		return nil
	})
	return r, nil
}
