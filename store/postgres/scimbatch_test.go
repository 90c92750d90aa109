package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store"
)

func batchOf(names ...string) ([]groupgate.User, []groupgate.AuditEvent) {
	var users []groupgate.User
	var evs []groupgate.AuditEvent
	for _, n := range names {
		u := groupgate.User{ID: store.NewID(), UserName: n, Email: n + "@example.com", Active: true}
		users = append(users, u)
		evs = append(evs, groupgate.AuditEvent{Actor: "scim:test", Action: "scim.user.create", TargetType: "user", TargetID: u.ID})
	}
	return users, evs
}

// The batch commits the users before the first it would not insert, and
// nothing from that one on, events included.
func TestCreateUsersUnmatchedCommitsThePrefixBeforeARefusal(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	if _, err := st.CreateUser(ctx, groupgate.User{UserName: "taken"}); err != nil {
		t.Fatalf("create taken: %v", err)
	}
	for _, c := range []struct {
		name    string
		users   []string
		byEmail bool
		want    int
	}{
		{"a userName taken before", []string{"a1", "a2", "TAKEN", "a4"}, true, 2},
		{"a userName taken earlier in the batch", []string{"b1", "b2", "B1", "b4"}, false, 2},
		{"an email key taken earlier in the batch", []string{"c1", "c2", "c3"}, true, 1},
		{"one email key twice without byEmail", []string{"d1", "d2", "d3"}, false, 3},
		{"all new", []string{"e1", "e2", "e3", "e4"}, true, 4},
		{"the first refused", []string{"taken", "f2"}, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			users, evs := batchOf(c.users...)
			if c.name == "an email key taken earlier in the batch" || c.name == "one email key twice without byEmail" {
				for i := range users {
					users[i].Email = c.name[:3] + "@Example.com"
				}
			}
			got, err := st.CreateUsersUnmatched(ctx, users, c.byEmail, evs)
			if err != nil {
				t.Fatalf("CreateUsersUnmatched: %v", err)
			}
			if len(got) != c.want {
				t.Fatalf("created %d, want %d", len(got), c.want)
			}
			for i, u := range users {
				stored, gerr := st.GetUser(ctx, u.ID)
				if i < c.want {
					if gerr != nil || stored.UserName != u.UserName || got[i].ID != u.ID || got[i].Version != 1 || got[i].CreatedAt.IsZero() {
						t.Errorf("user %d: stored %+v, %v; returned %+v", i, stored, gerr, got[i])
					}
				} else if !groupgate.IsCode(gerr, groupgate.NotFound) {
					t.Errorf("user %d (%s) after the refusal was written: %v", i, u.UserName, gerr)
				}
				events, err := st.SearchAudit(ctx, store.AuditFilter{TargetID: u.ID}, 10)
				if err != nil {
					t.Fatalf("search audit: %v", err)
				}
				if want := map[bool]int{true: 1, false: 0}[i < c.want]; len(events) != want {
					t.Errorf("user %d: %d audit events, want %d", i, len(events), want)
				}
			}
		})
	}
}

// Two replicas send batches with the same email keys in opposite orders
// at once: the locks are taken in key order, so neither fails with a
// deadlock, and each email is created once.
func TestBatchesOfCrossedEmailsOnTwoReplicasNeitherDeadlockNorDuplicate(t *testing.T) {
	const perBatch = 40
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	replicas := []*Store{openOn(t, dsn, true), openOn(t, dsn, false)}
	for round := range 10 {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for r, st := range replicas {
			wg.Go(func() {
				var names []string
				for i := range perBatch {
					names = append(names, fmt.Sprintf("r%d-%d-%d", round, r, i))
				}
				users, evs := batchOf(names...)
				for i := range users {
					k := i
					if r == 1 {
						k = perBatch - 1 - i
					}
					users[i].Email = fmt.Sprintf("m%d-%d@example.com", round, k)
				}
				<-start
				if _, err := st.CreateUsersUnmatched(ctx, users, true, evs); err != nil {
					t.Errorf("round %d, replica %d: %v", round, r, err)
				}
			})
		}
		close(start)
		wg.Wait()
		for k := range perBatch {
			email := fmt.Sprintf("m%d-%d@example.com", round, k)
			if users, err := replicas[0].ListUsersByEmail(ctx, email); err != nil || len(users) != 1 {
				t.Fatalf("round %d: %d users with %s (%v), want 1", round, len(users), email, err)
			}
		}
	}
}
