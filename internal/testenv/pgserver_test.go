package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The fault tests rely on an immediate stop losing no committed row and on
// the server taking connections again on the same port after it.
func TestPostgresServerKeepsCommittedRowsAcrossAnImmediateStop(t *testing.T) {
	s := StartPostgresServer(t)
	dsn := s.CreateDatabase("kept")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 100)"); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("a connection to a stopped server still answers")
	}
	s.Start()
	conn, err = pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 100 {
		t.Fatalf("after the restart: %d rows (%v), want 100", n, err)
	}
}
