package sync_test

import (
	"context"
	"fmt"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// TestMappingRetriesAreNoOps: the BSR marks Add/Remove…Group IDEMPOTENT,
// so a client retrying after a lost response must succeed when the change
// already took effect the same way, and the retry must write nothing: no
// audit event, no outbox entry, no session push.
func TestMappingRetriesAreNoOps(t *testing.T) {
	e := newEnv(t)
	o := e.org("acme")
	r := e.repo(o, "api")
	e.user("alice", "eng", "ops")

	tests := []struct {
		name  string
		setup func() error
		retry func() error
	}{
		{"adding an org mapping again with the same override",
			func() error { _, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "eng", groupgate.OrgRoleAdmin); return err },
			func() error { _, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "eng", groupgate.OrgRoleAdmin); return err }},
		{"adding an org mapping again with MEMBER where it was unset",
			func() error { _, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "ops", ""); return err },
			func() error {
				_, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "ops", groupgate.OrgRoleMember)
				return err
			}},
		{"adding a repo mapping again with the same override",
			func() error {
				_, err := e.s.AddRepoMapping(e.ctx, "t", r.ID, "eng", groupgate.RepoRoleWrite)
				return err
			},
			func() error {
				_, err := e.s.AddRepoMapping(e.ctx, "t", r.ID, "eng", groupgate.RepoRoleWrite)
				return err
			}},
		{"adding a repo mapping again with the override unset",
			func() error { _, err := e.s.AddRepoMapping(e.ctx, "t", r.ID, "ops", ""); return err },
			func() error { _, err := e.s.AddRepoMapping(e.ctx, "t", r.ID, "ops", ""); return err }},
		{"removing an org mapping again",
			func() error { _, err := e.s.RemoveOrgMapping(e.ctx, "t", o.ID, "eng"); return err },
			func() error { _, err := e.s.RemoveOrgMapping(e.ctx, "t", o.ID, "eng"); return err }},
		{"removing a repo mapping again",
			func() error { _, err := e.s.RemoveRepoMapping(e.ctx, "t", r.ID, "eng"); return err },
			func() error { _, err := e.s.RemoveRepoMapping(e.ctx, "t", r.ID, "eng"); return err }},
		{"removing a mapping that never existed",
			func() error { return nil },
			func() error { _, err := e.s.RemoveOrgMapping(e.ctx, "t", o.ID, "never-mapped"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.must(tt.setup())
			e.rec.take()
			before := e.dump()
			if err := tt.retry(); err != nil {
				t.Fatalf("retry: %v, want success", err)
			}
			if after := e.dump(); after != before {
				t.Errorf("the retry wrote to the store (audit, outbox or mappings):\nbefore %s\nafter  %s", before, after)
			}
			if pushed, deleted := e.rec.take(); len(pushed) != 0 || len(deleted) != 0 {
				t.Errorf("the retry touched sessions: %v %v", pushed, deleted)
			}
		})
	}
}

// TestAddingAMappingWithAnotherOverrideNamesTheExistingOne: a different
// override is not a retry; the answer is Conflict and says what is there,
// so the client knows to update instead.
func TestAddingAMappingWithAnotherOverrideNamesTheExistingOne(t *testing.T) {
	e := newEnv(t)
	o := e.org("acme")
	r := e.repo(o, "api")
	_, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "eng", groupgate.OrgRoleAdmin)
	e.must(err)
	_, err = e.s.AddRepoMapping(e.ctx, "t", r.ID, "eng", "")
	e.must(err)

	_, err = e.s.AddOrgMapping(e.ctx, "t", o.ID, "eng", groupgate.OrgRoleMachine)
	if !groupgate.IsCode(err, groupgate.Conflict) {
		t.Fatalf("org: err = %v, want Conflict", err)
	}
	if msg := groupgate.ErrorMessageOf(err); !strings.Contains(msg, "ADMIN") {
		t.Errorf("org: message %q does not name the existing override ADMIN", msg)
	}
	// An unset repository override follows the organization's base role,
	// so an explicit READ is another mapping, not a retry.
	_, err = e.s.AddRepoMapping(e.ctx, "t", r.ID, "eng", groupgate.RepoRoleRead)
	if !groupgate.IsCode(err, groupgate.Conflict) {
		t.Fatalf("repo: err = %v, want Conflict", err)
	}
	if m, err := e.st.GetOrgMapping(e.ctx, o.ID, "eng"); err != nil || m.RoleOverride != groupgate.OrgRoleAdmin {
		t.Errorf("org mapping after the conflict: %+v, %v; want ADMIN kept", m, err)
	}
}

// TestConcurrentIdenticalMappingCallsAllSucceed: a client that retries
// while its first call is still in flight sends the same change twice at
// once. On PostgreSQL both transactions may look the mapping up before
// either commits; the loser of the insert (unique violation) or of the
// delete (row gone) must still answer success, since the change it asked
// for has taken effect the same way.
func TestConcurrentIdenticalMappingCallsAllSucceed(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"on SQLite", func(t *testing.T) store.Store { return newStore(t) }},
		{"on PostgreSQL", newPostgresStore},
	}
	for _, tc := range stores {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.open(t)
			e := &env{t: t, ctx: context.Background(), st: st, rec: newRecorder()}
			e.s = sync.New(st, e.rec, sync.WithPushRetry(1, time.Millisecond))
			o := e.org("acme")
			e.user("alice", "eng")
			const callers, rounds = 8, 10
			run := func(what string, call func() error) {
				t.Helper()
				var wg stdsync.WaitGroup
				errs := make(chan error, callers)
				for range callers {
					wg.Go(func() { errs <- call() })
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatalf("%s: %v, want every identical call to succeed", what, err)
					}
				}
			}
			for i := range rounds {
				group := fmt.Sprintf("g%d", i)
				run("add "+group, func() error {
					_, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, group, groupgate.OrgRoleAdmin)
					return err
				})
				run("remove "+group, func() error {
					_, err := e.s.RemoveOrgMapping(e.ctx, "t", o.ID, group)
					return err
				})
			}
		})
	}
}
