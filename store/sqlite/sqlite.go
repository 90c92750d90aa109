package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/internal/keyset"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

var _ store.Store = (*Store)(nil)

// busyTimeout bounds how long a write waits for another process holding
// the database's write lock (within this process writes queue in Go).
const busyTimeout = 10 * time.Second

// Option configures Open.
type Option func(*Store)

// WithNow sets the clock that stamps CreatedAt, UpdatedAt and the like.
func WithNow(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) { s.log = l }
}

// Store is a store.Store on one SQLite database file.
//
// Writes go through a pool of exactly one connection whose transactions
// start with BEGIN IMMEDIATE. One connection makes writers of this process
// queue in database/sql instead of spinning in SQLite's busy handler (which
// sleeps in growing steps and can starve a writer under contention);
// BEGIN IMMEDIATE plus busy_timeout still serializes against other
// processes on the same file (for example `groupgate migrate`), and it takes
// the write lock before the first read, so a read-modify-write such as
// UpdateGroupSet can never fail on a lock upgrade. Reads use a separate,
// query-only pool and see the last committed state (WAL snapshots).
type Store struct {
	wdb *sql.DB // single write connection
	rdb *sql.DB // readers; == wdb for in-memory databases
	tx  *sql.Tx // non-nil for the Store that InTx hands to its fn

	now    func() time.Time
	log    *slog.Logger
	closed *atomic.Bool
	// cursors serve the next page of a walk over a listing (scim.go).
	cursors *keyset.Cursors
}

// Open opens (creating if needed) the database named by dsn, such as
// "file:groupgate.db" or "file:/var/lib/groupgate/groupgate.db", and adds
// the pragmas the store relies on. It does not migrate; call Migrate.
// ":memory:" (or a URI with mode=memory) gives a private in-memory database
// on a single connection.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	s := &Store{now: time.Now, log: slog.New(slog.DiscardHandler), closed: new(atomic.Bool), cursors: keyset.New()}
	for _, o := range opts {
		o(s)
	}
	if dsn == "" {
		return nil, groupgate.Errorf(groupgate.Invalid, "sqlite: empty DSN")
	}
	common := []string{
		"_pragma=busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")",
		"_pragma=foreign_keys(1)",
	}
	// Every write transaction takes the write lock at BEGIN.
	writer := append(slices.Clone(common), "_txlock=immediate")
	if isMemory(dsn) {
		// Every connection to ":memory:" is its own database, so one
		// connection serves reads and writes, and it must never be
		// recycled.
		db, err := sql.Open("sqlite", withParams(dsn, writer...))
		if err != nil {
			return nil, groupgate.WrapError(groupgate.Unavailable, err, "open sqlite database")
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s.wdb, s.rdb = db, db
	} else {
		// synchronous=NORMAL in WAL mode keeps every committed transaction
		// across a crash of the process; only an OS crash or power loss
		// may lose the last commits, and it never corrupts the file.
		wdb, err := sql.Open("sqlite", withParams(dsn,
			append(writer, "_pragma=journal_mode(WAL)", "_pragma=synchronous(NORMAL)")...))
		if err != nil {
			return nil, groupgate.WrapError(groupgate.Unavailable, err, "open sqlite database")
		}
		wdb.SetMaxOpenConns(1)
		wdb.SetMaxIdleConns(1)
		wdb.SetConnMaxLifetime(0)
		// The write connection switches the file to WAL before any reader
		// opens it, so readers never race the journal-mode change.
		if err := wdb.PingContext(ctx); err != nil {
			_ = wdb.Close()
			return nil, s.wrap(ctx, err, "open sqlite database")
		}
		// query_only: a write that strays onto the read pool fails loudly
		// instead of racing the write connection.
		rdb, err := sql.Open("sqlite", withParams(dsn, append(common, "_query_only=1")...))
		if err != nil {
			_ = wdb.Close()
			return nil, groupgate.WrapError(groupgate.Unavailable, err, "open sqlite database")
		}
		rdb.SetMaxOpenConns(8)
		rdb.SetMaxIdleConns(8)
		s.wdb, s.rdb = wdb, rdb
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func isMemory(dsn string) bool {
	return dsn == ":memory:" || strings.HasPrefix(dsn, "file::memory:") || strings.Contains(dsn, "mode=memory")
}

func withParams(dsn string, params ...string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + strings.Join(params, "&")
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return groupgate.Errorf(groupgate.Unavailable, "sqlite store is closed")
	}
	var one int
	if err := s.reader().QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return s.wrap(ctx, err, "ping sqlite")
	}
	return nil
}

// Close closes the database; on the Store given to an InTx fn it does
// nothing.
func (s *Store) Close() error {
	if s.tx != nil {
		return nil
	}
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := s.wdb.Close()
	if s.rdb != s.wdb {
		err = errors.Join(err, s.rdb.Close())
	}
	if err != nil {
		return groupgate.WrapError(groupgate.Internal, err, "close sqlite database")
	}
	return nil
}

// Migrate applies the embedded migrations not yet recorded in
// schema_migrations, all in one write transaction, so that concurrent
// Migrate calls (even from two processes) apply each one exactly once.
func (s *Store) Migrate(ctx context.Context) error {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return groupgate.WrapError(groupgate.Internal, err, "list migrations")
	}
	sort.Strings(names)
	return s.write(ctx, func(q queryer) error {
		if _, err := q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at INTEGER NOT NULL)`); err != nil {
			return s.wrap(ctx, err, "create schema_migrations")
		}
		for _, path := range names {
			base := strings.TrimSuffix(strings.TrimPrefix(path, "migrations/"), ".sql")
			num, _, ok := strings.Cut(base, "_")
			version, err := strconv.Atoi(num)
			if !ok || err != nil {
				return groupgate.Errorf(groupgate.Internal, "migration %s: name must be NNNN_name.sql", path)
			}
			var n int
			if err := q.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", version).Scan(&n); err != nil {
				return s.wrap(ctx, err, "read schema_migrations")
			}
			if n > 0 {
				continue
			}
			body, err := migrationFS.ReadFile(path)
			if err != nil {
				return groupgate.WrapError(groupgate.Internal, err, "read migration %s", base)
			}
			if _, err := q.ExecContext(ctx, string(body)); err != nil {
				return s.wrap(ctx, err, "apply migration %s", base)
			}
			if step := afterMigration(version); step != nil {
				if err := step(ctx, s, q); err != nil {
					return fmt.Errorf("apply migration %s: %w", base, err)
				}
			}
			if _, err := q.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				version, base, micros(s.now())); err != nil {
				return s.wrap(ctx, err, "record migration %s", base)
			}
			s.log.InfoContext(ctx, "applied migration", "migration", base)
		}
		return nil
	})
}

// queryer is what *sql.DB and *sql.Tx have in common.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reader is where reads go: the caller's transaction, else the read pool.
func (s *Store) reader() queryer {
	if s.tx != nil {
		return s.tx
	}
	return s.rdb
}

// write runs fn in the caller's transaction, or in a new write
// transaction that commits when fn returns nil. fn's error is returned
// unchanged; a panic rolls back and propagates.
func (s *Store) write(ctx context.Context, fn func(q queryer) error) error {
	if s.tx != nil {
		return fn(s.tx)
	}
	if s.closed.Load() {
		return groupgate.Errorf(groupgate.Unavailable, "sqlite store is closed")
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(ctx, err, "begin transaction")
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return s.wrap(ctx, err, "commit transaction")
	}
	return nil
}

// snapshot runs fn with a Store whose reads share one read transaction
// (one WAL snapshot); inside a transaction it reuses that one.
func (s *Store) snapshot(ctx context.Context, fn func(r *Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	if s.closed.Load() {
		return groupgate.Errorf(groupgate.Unavailable, "sqlite store is closed")
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.wrap(ctx, err, "begin read transaction")
	}
	defer func() { _ = tx.Rollback() }()
	r := *s
	r.tx = tx
	return fn(&r)
}

// InTx runs fn with a Store bound to one write transaction. Called on such
// a Store it joins the transaction. fn must not use the outer Store for
// writes: the single write connection is held by the transaction.
func (s *Store) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	return s.write(ctx, func(q queryer) error {
		txs := *s
		txs.tx = q.(*sql.Tx)
		return fn(&txs)
	})
}

// wrap turns a driver error into a *groupgate.Error, by SQLite result code
// and never by message text. Constraint codes that can only come from
// refused input are Invalid; uniqueness is Conflict.
func (s *Store) wrap(ctx context.Context, err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	var ge *groupgate.Error
	if errors.As(err, &ge) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return groupgate.WrapError(groupgate.Unavailable, fmt.Errorf("%w: %w", cerr, err), "%s", msg)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return groupgate.WrapError(groupgate.Unavailable, err, "%s", msg)
	}
	if s.closed.Load() || errors.Is(err, sql.ErrConnDone) {
		return groupgate.WrapError(groupgate.Unavailable, err, "%s: store is closed", msg)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch code := se.Code(); code {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return groupgate.WrapError(groupgate.Conflict, err, "%s: already exists", msg)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return groupgate.WrapError(groupgate.Invalid, err, "%s: refers to a missing record", msg)
		case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
			return groupgate.WrapError(groupgate.Invalid, err, "%s: invalid value", msg)
		default:
			switch code & 0xff {
			case sqlite3.SQLITE_TOOBIG:
				// SQLite's equivalent of PostgreSQL's 54000: a string or
				// blob over SQLITE_LIMIT_LENGTH is bad input.
				return groupgate.WrapError(groupgate.Invalid, err, "%s: value too long", msg)
			case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
				sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY,
				sqlite3.SQLITE_INTERRUPT:
				return groupgate.WrapError(groupgate.Unavailable, err, "%s", msg)
			}
		}
	}
	return groupgate.WrapError(groupgate.Internal, err, "%s", msg)
}

// notFound maps sql.ErrNoRows to NotFound and everything else through wrap.
func (s *Store) notFound(ctx context.Context, err error, what string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return groupgate.Errorf(groupgate.NotFound, what+" not found", args...)
	}
	return s.wrap(ctx, err, "load "+what, args...)
}

// micros is how times are stored: microseconds since the epoch.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the inverse of micros, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// stamp is the store's clock at storage precision.
func (s *Store) stamp() time.Time { return fromMicros(micros(s.now())) }

// nullMicros stores a zero time as NULL.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(t), Valid: true}
}

func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}

// page turns ListOptions into LIMIT/OFFSET values (-1: no limit).
func page(opts store.ListOptions) (limit, offset int) {
	limit, offset = opts.Limit, opts.Offset
	if limit <= 0 {
		limit = -1
	}
	if offset < 0 {
		offset = 0
	}
	return limit, offset
}

// scanAll reads every row with scan; an empty result is an empty slice.
func scanAll[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// query runs a listing query and scans it, wrapping errors.
func query[T any](ctx context.Context, s *Store, scan func(*sql.Rows) (T, error), what, q string, args ...any) ([]T, error) {
	rows, err := s.reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(ctx, err, "list %s", what)
	}
	out, err := scanAll(rows, scan)
	if err != nil {
		return nil, s.wrap(ctx, err, "list %s", what)
	}
	return out, nil
}

// jsonText stores an empty JSON blob as NULL and refuses invalid JSON.
func jsonText(field string, raw []byte) (sql.NullString, error) {
	if len(raw) == 0 {
		return sql.NullString{}, nil
	}
	if !json.Valid(raw) {
		return sql.NullString{}, groupgate.Errorf(groupgate.Invalid, "%s is not valid JSON", field)
	}
	return sql.NullString{String: string(raw), Valid: true}, nil
}

func fromJSONText(n sql.NullString) []byte {
	if !n.Valid || n.String == "" {
		return nil
	}
	return []byte(n.String)
}
