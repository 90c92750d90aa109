package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/groupgate/groupgate"

	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/storetest"
)

// TestConformance runs the store contract suite on a fresh database file
// per subtest.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(tb testing.TB) store.Store { return openTemp(tb) })
}

// Migration 0005: API tokens created through the API before tokens had to
// expire get an expiry; the operator's CLI tokens keep none.
func TestMigrationGivesAPICreatedTokensAnExpiry(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "file:"+filepath.Join(t.TempDir(), "gg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, groupgate.User{UserName: "alice", Email: "alice@example.com", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	viaAPI, err := s.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, UserID: u.ID, Hash: []byte("api")})
	if err != nil {
		t.Fatal(err)
	}
	viaCLI, err := s.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, UserID: u.ID, Hash: []byte("cli")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, groupgate.AuditEvent{Actor: "user:" + u.ID, Action: "token.create", TargetType: "token", TargetID: viaAPI.ID, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wdb.ExecContext(ctx, "DELETE FROM schema_migrations WHERE version = 5"); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	got, err := s.ListTokens(ctx, groupgate.TokenAPI, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range got {
		switch tok.ID {
		case viaAPI.ID:
			if d := time.Until(tok.ExpiresAt); d < 29*24*time.Hour || d > 31*24*time.Hour {
				t.Errorf("API-created token expires %v, want in 30 days", tok.ExpiresAt)
			}
		case viaCLI.ID:
			if !tok.ExpiresAt.IsZero() {
				t.Errorf("CLI token got an expiry %v", tok.ExpiresAt)
			}
		}
	}
}
