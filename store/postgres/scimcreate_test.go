package postgres

import (
	"context"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store"
)

// Two replicas (two pools) create users with one email under match_key
// email at the same moment: the email key's lock lets exactly one insert.
func TestCreatesOfOneEmailOnTwoReplicasNeverBothInsert(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	a := openOn(t, dsn, true)
	b := openOn(t, dsn, false)
	for round := range 30 {
		email := "same-" + string(rune('a'+round%26)) + hex.EncodeToString([]byte{byte(round)}) + "@example.com"
		var created atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, st := range []*Store{a, b} {
			wg.Go(func() {
				u := groupgate.User{ID: store.NewID(), UserName: email + "-" + string(rune('0'+i)), Email: email, Active: true}
				ev := groupgate.AuditEvent{Actor: "scim:test", Action: "scim.user.create", TargetType: "user", TargetID: u.ID}
				<-start
				_, ok, err := st.CreateUserUnmatched(ctx, u, true, ev)
				if err != nil {
					t.Errorf("round %d: %v", round, err)
				}
				if ok {
					created.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := created.Load(); got != 1 {
			t.Fatalf("round %d: %d users created with email %s, want 1", round, got, email)
		}
	}
}
