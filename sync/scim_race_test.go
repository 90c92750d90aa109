package sync_test

import (
	"context"
	"fmt"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store/postgres"
	"github.com/groupgate/groupgate/sync"
)

// Two replicas provision the same person at once under match_key email,
// under two userNames: whether the email is new or an SSO user has it
// (adoption), exactly one create succeeds and the other is a Conflict.
// Emails are not unique in the table, so only the email key's lock keeps
// both from finding no provisioned user and both writing.
func TestConcurrentSCIMCreatesOfOneEmailOnTwoReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	var syncers []*sync.Syncer
	var first *postgres.Store
	for i := range 2 {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("open PostgreSQL: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if i == 0 {
			if err := st.Migrate(ctx); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			first = st
		}
		syncers = append(syncers, sync.New(st, newRecorder(), sync.WithPushRetry(3, time.Millisecond)))
	}
	for _, adopt := range []bool{false, true} {
		for round := range 15 {
			email := fmt.Sprintf("person-%v-%d@example.com", adopt, round)
			if adopt {
				if _, err := first.CreateUser(ctx, groupgate.User{UserName: fmt.Sprintf("sso-%d", round), Email: email, Active: true}); err != nil {
					t.Fatal(err)
				}
			}
			errs := make([]error, 2)
			start := make(chan struct{})
			var wg stdsync.WaitGroup
			for i, sy := range syncers {
				wg.Go(func() {
					u := groupgate.User{UserName: fmt.Sprintf("scim-%v-%d-%d", adopt, round, i), Email: email, Active: true, SCIM: []byte(`{}`)}
					<-start
					_, errs[i] = sy.SCIMCreateUser(ctx, "scim:t", u, sync.MatchEmail)
				})
			}
			close(start)
			wg.Wait()
			ok, conflict := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case groupgate.IsCode(err, groupgate.Conflict):
					conflict++
				default:
					t.Fatalf("adopt=%v round %d: %v", adopt, round, err)
				}
			}
			if ok != 1 || conflict != 1 {
				t.Fatalf("adopt=%v round %d: %d creates succeeded and %d conflicted (%v), want 1 and 1", adopt, round, ok, conflict, errs)
			}
		}
	}
}
