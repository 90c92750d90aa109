package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/postgres"
	"github.com/jackc/pgx/v5"
)

// benchUserJSON is a user as Okta or Entra pushes it: core and enterprise
// attributes, a work and a home email.
func benchUserJSON(userName string, i int) []byte {
	body, err := json.Marshal(map[string]any{
		"schemas":     []string{URNUser, URNEnterpriseUser},
		"userName":    userName,
		"externalId":  "ext-" + userName,
		"displayName": "Bench " + userName,
		"name":        map[string]string{"givenName": "Given", "familyName": userName},
		"title":       fmt.Sprintf("title-%d", i%100),
		"active":      true,
		"emails": []map[string]any{
			{"value": userName + "@example.com", "type": "work", "primary": true},
			{"value": userName + "@home.example", "type": "home"},
		},
		URNEnterpriseUser: map[string]string{"employeeNumber": strconv.Itoa(i), "department": fmt.Sprintf("dept-%02d", i%50)},
	})
	if err != nil {
		panic(err) // a literal of strings cannot fail to encode
	}
	return body
}

// benchUserName is the userName of seeded user i: six digits, so that
// `userName sw "user-0042"` matches exactly 100 of 100,000.
func benchUserName(i int) string { return fmt.Sprintf("user-%06d", i) }

// benchSend sends one request through the handler with the SCIM bearer
// token, as an IdP does, and returns the recorded response.
func benchSend(srv http.Handler, method, target string, body []byte) *httptest.ResponseRecorder {
	var r *http.Request
	if body == nil {
		r = httptest.NewRequest(method, "http://sso.example.com"+target, nil)
	} else {
		r = httptest.NewRequest(method, "http://sso.example.com"+target, bytes.NewReader(body))
	}
	r.Header.Set("Authorization", "Bearer "+testToken)
	r.Header.Set("Content-Type", contentTypeSCIM)
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	return w
}

// benchExpect fails unless w has status want, and returns the decoded body.
func benchExpect(b *testing.B, w *httptest.ResponseRecorder, want int, what string) map[string]any {
	b.Helper()
	var out map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			b.Fatalf("%s: response is not JSON: %v", what, err)
		}
	}
	if w.Code != want {
		b.Fatalf("%s: status %d, want %d: %v", what, w.Code, want, out)
	}
	return out
}

// benchSeed is a store holding users seeded for the membership and filter
// benchmarks, shared by both so that a backend is seeded once.
type benchSeed struct {
	e   *env
	ids []string // ids[i] is the user named benchUserName(i)
	// analyze refreshes the planner's statistics after a seed, as
	// autovacuum would soon do in production; nil when the backend has
	// no need.
	analyze func(ctx context.Context) error
}

// benchBackend opens a store for the benchmarks and says how to refresh
// its statistics.
type benchBackend struct {
	name string
	open func(testing.TB) (storeT, func(context.Context) error)
}

func benchBackends() []benchBackend {
	return []benchBackend{
		{"sqlite", func(tb testing.TB) (storeT, func(context.Context) error) { return openSQLite(tb), nil }},
		{"postgres", openPostgresAnalyzed},
	}
}

// openPostgresAnalyzed is openPostgres that also returns a VACUUM ANALYZE
// of the database, as autovacuum soon runs after a bulk insert (PostgreSQL
// 13 and later): without statistics PostgreSQL plans a query over 100,000
// freshly inserted rows as if the table were small, and without the
// visibility map an index-only scan still reads every row.
func openPostgresAnalyzed(tb testing.TB) (storeT, func(context.Context) error) {
	tb.Helper()
	return openPostgresWith(tb)
}

// openPostgresWith is openPostgresAnalyzed with store options (a tracer).
func openPostgresWith(tb testing.TB, opts ...postgres.Option) (storeT, func(context.Context) error) {
	tb.Helper()
	ctx := context.Background()
	dsn := testenv.Postgres(tb)
	st, err := postgres.Open(ctx, dsn, opts...)
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return st, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return fmt.Errorf("connect to analyze: %w", err)
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
			return fmt.Errorf("analyze: %w", err)
		}
		return nil
	}
}

// ensure seeds users up to n, in transactions of chunk users, outside any
// benchmark timer. Each user is stored exactly as POST /Users would store
// it (same normalization and document), but without the syncer's
// per-request transaction and audit event, which the create benchmark
// measures instead.
func (s *benchSeed) ensure(b *testing.B, n, chunk int) {
	b.Helper()
	if len(s.ids) >= n {
		return
	}
	b.StopTimer()
	defer b.StartTimer()
	from := len(s.ids)
	start := time.Now()
	for lo := from; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		users := make([]groupgate.User, 0, hi-lo)
		for i := lo; i < hi; i++ {
			u, err := s.userFromJSON(benchUserJSON(benchUserName(i), i))
			if err != nil {
				b.Fatalf("build seed user %d: %v", i, err)
			}
			users = append(users, u)
		}
		ids := make([]string, 0, len(users))
		err := s.e.st.InTx(s.e.ctx, func(tx store.Store) error {
			for _, u := range users {
				created, err := tx.CreateUser(s.e.ctx, u)
				if err != nil {
					return fmt.Errorf("create %s: %w", u.UserName, err)
				}
				ids = append(ids, created.ID)
			}
			return nil
		})
		if err != nil {
			b.Fatalf("seed users %d..%d: %v", lo, hi, err)
		}
		s.ids = append(s.ids, ids...)
	}
	if s.analyze != nil {
		if err := s.analyze(s.e.ctx); err != nil {
			b.Fatalf("refresh statistics after seeding: %v", err)
		}
	}
	b.Logf("seeded users %d..%d in %v", from, n, time.Since(start).Round(time.Millisecond))
}

// userFromJSON turns a POST /Users body into the user the handler would
// create from it.
func (s *benchSeed) userFromJSON(body []byte) (groupgate.User, error) {
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return groupgate.User{}, fmt.Errorf("decode user: %w", err)
	}
	doc, nerr := normalize(s.e.srv.users, raw)
	if nerr != nil {
		return groupgate.User{}, nerr
	}
	u := groupgate.User{Active: true}
	if aerr := applyUserDocument(&u, doc); aerr != nil {
		return groupgate.User{}, aerr
	}
	return u, nil
}

// stmtCounter counts the round trips a store makes: each statement, and
// each pipelined batch once, so a benchmark can report them per operation.
type stmtCounter struct{ n atomic.Int64 }

func (c *stmtCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *stmtCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *stmtCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *stmtCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (c *stmtCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
