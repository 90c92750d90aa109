package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/internal/keyset"
)

var _ store.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithNow sets the clock that stamps CreatedAt, UpdatedAt and AddedAt.
func WithNow(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// WithLogger sets the logger (migrations report what they apply).
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) { s.log = l }
}

// WithQueryTracer traces every statement of the pool (pgx's tracer hook;
// tracing.PgxTracer records spans). Default: none.
func WithQueryTracer(t pgx.QueryTracer) Option {
	return func(s *Store) { s.tracer = t }
}

// Store is a store.Store on a PostgreSQL connection pool. A Store handed to
// an InTx callback is bound to that transaction instead.
type Store struct {
	pool *pgxpool.Pool
	// tx is set on the Store an InTx callback receives; every statement
	// then runs inside it.
	tx  pgx.Tx
	now func() time.Time
	log *slog.Logger
	// tracer is set on the pool's connections when Open runs.
	tracer pgx.QueryTracer
	// cursors serve SCIM walks by keyset (store/internal/keyset); nil
	// inside InTx.
	cursors *keyset.Cursors
	// tokenGen counts token deletions (TokenGeneration); shared with
	// the Stores of InTx.
	tokenGen *atomic.Int64
	// deletedToken is set on an InTx Store when a token is deleted in
	// its transaction: the generation moves once it commits.
	deletedToken bool
}

// querier is what pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string) and checks that it answers. It does not migrate: call Migrate.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	s := &Store{now: time.Now, log: slog.New(slog.DiscardHandler), cursors: keyset.New(), tokenGen: &atomic.Int64{}}
	for _, o := range opts {
		o(s)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The cause may quote the DSN with its password: keep it out of
		// the message, the cause is for logs only.
		return nil, groupgate.WrapError(groupgate.Invalid, err, "parse PostgreSQL DSN")
	}
	// pgx defaults to max(4, NumCPU) connections, which on a small host
	// serializes the syncer's parallel reads (one round trip each) behind
	// four sockets. An explicit pool_max_conns in the DSN still wins.
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, 16)
	}
	if s.tracer != nil {
		cfg.ConnConfig.Tracer = s.tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, dbError(err, "open PostgreSQL pool")
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, dbError(err, "connect to PostgreSQL")
	}
	s.pool = pool
	return s, nil
}

// Close closes the pool; on a transaction-bound Store it does nothing.
func (s *Store) Close() error {
	if s.tx == nil {
		s.pool.Close()
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.tx != nil {
		if _, err := s.tx.Exec(ctx, "SELECT 1"); err != nil {
			return dbError(err, "ping PostgreSQL")
		}
		return nil
	}
	if err := s.pool.Ping(ctx); err != nil {
		return dbError(err, "ping PostgreSQL")
	}
	return nil
}

// InTx runs fn with a Store bound to one transaction. Called on such a
// Store it joins the transaction already open.
func (s *Store) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return dbError(err, "begin transaction")
	}
	// Rolls back when fn fails or panics; a no-op after Commit.
	defer rollback(ctx, tx)
	txs := &Store{pool: s.pool, tx: tx, now: s.now, log: s.log, tokenGen: s.tokenGen}
	if err := fn(txs); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return dbError(err, "commit transaction")
	}
	if txs.deletedToken {
		s.tokenGen.Add(1)
	}
	return nil
}

func rollback(ctx context.Context, tx pgx.Tx) {
	// The caller's context may be done already; the rollback must still
	// reach the server so that the connection goes back clean.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// q returns what statements run on: the transaction or the pool.
func (s *Store) q() querier {
	if s.tx != nil {
		return s.tx
	}
	return s.pool
}

// atomic runs fn in a transaction of its own, or, on a transaction-bound
// Store, in a savepoint: a failed statement then undoes only this call
// instead of aborting the caller's whole transaction, as it would in
// PostgreSQL otherwise. fn's error is returned unchanged.
func (s *Store) atomic(ctx context.Context, fn func(q querier) error) error {
	var (
		tx  pgx.Tx
		err error
	)
	if s.tx != nil {
		tx, err = s.tx.Begin(ctx)
	} else {
		tx, err = s.pool.Begin(ctx)
	}
	if err != nil {
		return dbError(err, "begin transaction")
	}
	defer rollback(ctx, tx)
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return dbError(err, "commit transaction")
	}
	return nil
}

// write runs a single-statement change: directly on the pool (the statement
// is atomic by itself), or in a savepoint inside a transaction.
func (s *Store) write(ctx context.Context, fn func(q querier) error) error {
	if s.tx == nil {
		return fn(s.pool)
	}
	return s.atomic(ctx, fn)
}

// stamp returns the store's clock in UTC at the precision PostgreSQL keeps.
func (s *Store) stamp() time.Time {
	return norm(s.now())
}

// norm returns t in UTC truncated to microseconds, as it reads back; pgx
// sends timestamps as whole microseconds, truncating.
func norm(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return norm(t)
}

// fromNullTime maps NULL to the zero time.
func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// nullJSON maps an empty JSON blob to NULL and sends the rest as text so
// that the json column keeps it byte for byte.
func nullJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// page turns ListOptions into LIMIT and OFFSET arguments; a NULL limit is
// no limit.
func page(opts store.ListOptions) (limit any, offset int) {
	if opts.Limit > 0 {
		limit = opts.Limit
	}
	return limit, max(opts.Offset, 0)
}

// PostgreSQL error codes we classify (Appendix A of the manual).
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeNotNullViolation    = "23502"
	codeCheckViolation      = "23514"
	codeInvalidText         = "22P02" // e.g. malformed JSON
	codeBadEncoding         = "22021" // e.g. a NUL byte in text
	codeStringTooLong       = "22001"
	codeUntranslatable      = "22P05" // e.g. \u0000 in a jsonb value
	codeProgramLimit        = "54000" // e.g. an index row over its maximum size
	codeSerialization       = "40001"
	codeDeadlock            = "40P01"
	codeTooManyConnections  = "53300"
	codeAdminShutdown       = "57P01"
	codeCrashShutdown       = "57P02"
	codeCannotConnectNow    = "57P03"
)

// dbError classifies a driver error into a *groupgate.Error whose message is
// safe to show; the driver error stays as the cause. Classification uses
// SQLSTATE codes and error types, never error text.
func dbError(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := shortMessage(fmt.Sprintf(format, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return groupgate.WrapError(groupgate.NotFound, err, "%s: not found", msg)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeUniqueViolation:
			return groupgate.WrapError(groupgate.Conflict, err, "%s: already exists", msg)
		case codeForeignKeyViolation:
			return groupgate.WrapError(groupgate.Invalid, err, "%s: refers to something that does not exist", msg)
		case codeNotNullViolation, codeCheckViolation, codeInvalidText, codeBadEncoding, codeStringTooLong,
			codeUntranslatable:
			return groupgate.WrapError(groupgate.Invalid, err, "%s: invalid value", msg)
		case codeProgramLimit:
			// A value too big for an index (over 8191 bytes, or the
			// B-tree's third of a page) is bad input, not a server
			// fault: callers bound names first, this is the backstop.
			return groupgate.WrapError(groupgate.Invalid, err, "%s: value too long", msg)
		case codeSerialization, codeDeadlock, codeTooManyConnections,
			codeAdminShutdown, codeCrashShutdown, codeCannotConnectNow:
			return groupgate.WrapError(groupgate.Unavailable, err, "%s: database busy or unavailable", msg)
		}
		// Class 08: connection exception.
		if len(pgErr.Code) == 5 && pgErr.Code[:2] == "08" {
			return groupgate.WrapError(groupgate.Unavailable, err, "%s: database unavailable", msg)
		}
		return groupgate.WrapError(groupgate.Internal, err, "%s", msg)
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		// A pooled connection that an earlier failure closed (the server
		// went away under it) is handed out once more before the pool drops it.
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return groupgate.WrapError(groupgate.Unavailable, err, "%s: database unavailable", msg)
	}
	return groupgate.WrapError(groupgate.Internal, err, "%s", msg)
}

// shortMessage cuts a message that quotes a huge value (a name of a
// megabyte refused for its size) so that the error shown stays readable.
func shortMessage(msg string) string {
	const max = 200
	if len(msg) <= max {
		return msg
	}
	cut := msg[:max]
	for len(cut) > 0 && !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	return cut + "…"
}

// hasCode reports whether err is a PostgreSQL error with SQLSTATE code.
func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// notFound is the error for a missing row.
func notFound(format string, args ...any) error {
	return groupgate.Errorf(groupgate.NotFound, format, args...)
}

// invalid is the error for input the store refuses before the database.
func invalid(format string, args ...any) error {
	return groupgate.Errorf(groupgate.Invalid, format, args...)
}
