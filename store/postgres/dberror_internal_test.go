package postgres

import (
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/groupgate/groupgate"
)

// Every way the driver reports a database that went away must read as
// Unavailable (503, retry), never Internal (500): a PostgreSQL restart
// under load produces all of them (cmd/groupgate's
// TestServeRidesOutAPostgreSQLRestartUnderWriteLoad).
func TestALostDatabaseIsUnavailable(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"a connection the driver closed after an earlier failure", fmt.Errorf("begin: %w", pgconn.ErrConnClosed)},
		{"the server ending the connection mid-statement", io.ErrUnexpectedEOF},
		{"a refused dial", &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connection refused")}},
		{"an immediate shutdown", &pgconn.PgError{Code: "57P01"}},
		{"a server still recovering", &pgconn.PgError{Code: "57P03"}},
		{"a connection failure", &pgconn.PgError{Code: "08006"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := groupgate.ErrorCodeOf(dbError(tt.err, "begin transaction")); got != groupgate.Unavailable {
				t.Fatalf("code %v, want %v", got, groupgate.Unavailable)
			}
		})
	}
}
