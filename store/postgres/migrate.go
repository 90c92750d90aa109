package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLockKey is the pg_advisory_lock key every groupgate replica
// takes while migrating, so that replicas starting together apply each
// migration once. (The bytes spell "ggmigrat".)
const migrationLockKey int64 = 0x67676d6967726174

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads migrations/NNNN_name.sql in version order.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		file := e.Name()
		num, name, ok := strings.Cut(strings.TrimSuffix(file, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || name == "" {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", file)
		}
		body, err := fs.ReadFile(migrationFS, path.Join("migrations", file))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", file, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("two migrations with version %d", ms[i].version)
		}
	}
	return ms, nil
}

// Migrate applies the embedded migrations that the database lacks. It holds
// a session advisory lock on one connection for the whole run, so that
// replicas starting at once wait for each other instead of racing; each
// migration commits in its own transaction with its schema_migrations row.
func (s *Store) Migrate(ctx context.Context) error {
	if s.tx != nil {
		return invalid("migrate inside a transaction")
	}
	ms, err := loadMigrations()
	if err != nil {
		return dbError(err, "load migrations")
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return dbError(err, "acquire connection for migrations")
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		// A cancelled wait may leave the lock request in an unknown
		// state: do not give the connection back to the pool.
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
		return dbError(err, "take migration lock")
	}
	defer unlockMigrations(ctx, conn)

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL
	)`); err != nil {
		return dbError(err, "create schema_migrations")
	}
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return dbError(err, "read schema_migrations")
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return dbError(err, "read schema_migrations")
	}
	for _, m := range ms {
		if slices.Contains(applied, m.version) {
			continue
		}
		if err := s.apply(ctx, conn, m); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) apply(ctx context.Context, conn *pgxpool.Conn, m migration) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return dbError(err, "begin migration %04d_%s", m.version, m.name)
	}
	defer rollback(ctx, tx)
	// No arguments: pgx sends it with the simple protocol, which accepts
	// several statements.
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return dbError(err, "apply migration %04d_%s", m.version, m.name)
	}
	if step := afterMigration(m.version); step != nil {
		if err := step(ctx, tx); err != nil {
			return fmt.Errorf("apply migration %04d_%s: %w", m.version, m.name, err)
		}
	}
	if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
		m.version, m.name, s.stamp()); err != nil {
		return dbError(err, "record migration %04d_%s", m.version, m.name)
	}
	if err := tx.Commit(ctx); err != nil {
		return dbError(err, "commit migration %04d_%s", m.version, m.name)
	}
	s.log.InfoContext(ctx, "applied migration", slog.Int("version", m.version), slog.String("name", m.name))
	return nil
}

func unlockMigrations(ctx context.Context, conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", migrationLockKey); err != nil {
		// Closing the session is the other way to release a session lock.
		_ = conn.Conn().Close(ctx)
	}
}
