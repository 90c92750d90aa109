package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/postgres"
	"github.com/groupgate/groupgate/store/sqlite"
)

// migrator applies a backend's embedded migrations; on PostgreSQL under an
// advisory lock, so that replicas starting together do not race.
type migrator interface {
	Migrate(ctx context.Context) error
}

// buildStore opens the configured backend. It does not migrate.
// pgOpts apply to PostgreSQL only (serve's query tracer).
func buildStore(ctx context.Context, cfg StoreConfig, logger *slog.Logger, now func() time.Time, pgOpts ...postgres.Option) (store.Store, migrator, error) {
	logger = logger.With("store", cfg.Driver)
	switch cfg.Driver {
	case "sqlite":
		s, err := sqlite.Open(ctx, cfg.DSN, sqlite.WithLogger(logger), sqlite.WithNow(now))
		if err != nil {
			return nil, nil, fmt.Errorf("open sqlite store: %w", err)
		}
		return s, s, nil
	case "postgres":
		s, err := postgres.Open(ctx, cfg.DSN, append([]postgres.Option{postgres.WithLogger(logger), postgres.WithNow(now)}, pgOpts...)...)
		if err != nil {
			return nil, nil, fmt.Errorf("open postgres store: %w", err)
		}
		return s, s, nil
	default:
		// LoadConfig refuses other drivers; this guards direct callers.
		return nil, nil, fmt.Errorf("unknown store driver %q", cfg.Driver)
	}
}

// openStore builds the store, registers it for Close and applies pending
// migrations: every command that touches data needs the current schema.
func (m *Main) openStore(ctx context.Context, cfg Config, logger *slog.Logger, pgOpts ...postgres.Option) (store.Store, error) {
	st, mig, err := buildStore(ctx, cfg.Store, logger, m.Now, pgOpts...)
	if err != nil {
		return nil, err
	}
	m.onClose(st.Close)
	if err := mig.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate %s store: %w", cfg.Store.Driver, err)
	}
	return st, nil
}

func (m *Main) runMigrate(ctx context.Context) error {
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	logger := buildLogger(cfg.Log, m.Stderr, "text")
	if _, err := m.openStore(ctx, cfg, logger); err != nil {
		return err
	}
	_, err = fmt.Fprintf(m.Stderr, "groupgate migrate: %s store is up to date\n", cfg.Store.Driver)
	return err
}
