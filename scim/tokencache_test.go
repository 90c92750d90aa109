package scim

import (
	"context"
	"crypto/sha256"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store/postgres"
)

// movableClock is a clock the test moves.
type movableClock struct {
	mu stdsync.Mutex
	t  time.Time
}

func (c *movableClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *movableClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// twoReplicas opens two PostgreSQL stores on one database and a SCIM
// server on the first, whose clock the test moves.
func twoReplicas(t *testing.T) (*env, *postgres.Store, *movableClock) {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	var stores []*postgres.Store
	for i := range 2 {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if i == 0 {
			if err := st.Migrate(ctx); err != nil {
				t.Fatalf("migrate: %v", err)
			}
		}
		stores = append(stores, st)
	}
	clock := &movableClock{t: time.Now()}
	return newEnvOn(t, stores[0], WithNow(clock.now)), stores[1], clock
}

func (e *env) scimTokenID() string {
	e.t.Helper()
	ts, err := e.st.ListTokens(e.ctx, groupgate.TokenSCIM, "")
	if err != nil || len(ts) != 1 {
		e.t.Fatalf("list SCIM tokens: %v, %v", ts, err)
	}
	return ts[0].ID
}

func TestRevokedSCIMTokenIsRefusedAtOnceOnThisReplica(t *testing.T) {
	e, _, _ := twoReplicas(t)
	e.must(200, "GET", "/scim/v2/Users", "")
	if err := e.sy.DeleteSCIMToken(e.ctx, "admin", e.scimTokenID()); err != nil {
		t.Fatal(err)
	}
	e.must(401, "GET", "/scim/v2/Users", "")
}

func TestRevokedSCIMTokenIsRefusedOnOtherReplicasWithinTheCacheBound(t *testing.T) {
	e, other, clock := twoReplicas(t)
	e.must(200, "GET", "/scim/v2/Users", "")
	if err := other.DeleteToken(e.ctx, e.scimTokenID()); err != nil {
		t.Fatal(err)
	}
	// This replica verified the token a moment ago and has not looked
	// since: it may still take it, for less than tokenCacheTTL.
	clock.add(tokenCacheTTL / 2)
	e.must(200, "GET", "/scim/v2/Users", "")
	clock.add(tokenCacheTTL / 2)
	e.must(401, "GET", "/scim/v2/Users", "")
}

func TestExpiredSCIMTokenIsRefusedEvenWhenCached(t *testing.T) {
	e, _, clock := twoReplicas(t)
	secret := "expiring-secret"
	sum := sha256.Sum256([]byte(secret))
	if _, err := e.st.CreateToken(e.ctx, groupgate.Token{Kind: groupgate.TokenSCIM, Name: "short", Hash: sum[:],
		ExpiresAt: clock.now().Add(tokenCacheTTL / 2)}); err != nil {
		t.Fatal(err)
	}
	bearer := func() int {
		code, _, _ := e.do("GET", "/scim/v2/Users", "", "Authorization", "Bearer "+secret)
		return code
	}
	if got := bearer(); got != 200 {
		t.Fatalf("before expiry: status %d, want 200", got)
	}
	clock.add(tokenCacheTTL / 2)
	if got := bearer(); got != 401 {
		t.Fatalf("at expiry, token cached: status %d, want 401", got)
	}
}
