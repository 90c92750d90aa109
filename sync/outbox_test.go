package sync_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/postgres"
	"github.com/groupgate/groupgate/sync"
)

func pending(t *testing.T, st store.Store) []store.OutboxEntry {
	t.Helper()
	es, err := st.(store.OutboxStore).ListOutbox(context.Background(), 0)
	if err != nil {
		t.Fatalf("list outbox: %v", err)
	}
	return es
}

func newPostgresStore(t *testing.T) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatalf("open PostgreSQL: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

// TestCrashBetweenCommitAndRewrite stops a syncer after each commit, before
// it rewrites any session, then starts another syncer over the same store
// and Redis: one outbox replay must leave every snapshot as the store says.
func TestCrashBetweenCommitAndRewrite(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"on SQLite", func(t *testing.T) store.Store { return newStore(t) }},
		{"on PostgreSQL", newPostgresStore},
	}
	for _, tc := range stores {
		t.Run("a restarted syncer finishes the rewrites a crash left "+tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := tc.open(t)
			client, prefix := testenv.Redis(t)
			now := func() time.Time { return time.Now() }
			backend, err := session.NewRedis(client, prefix, session.WithNow(now))
			if err != nil {
				t.Fatal(err)
			}
			e := &env{t: t, ctx: ctx, st: st}
			acme, beta := e.org("acme"), e.org("beta")
			alice, bob := e.user("alice", "eng", "ops"), e.user("bob", "eng")
			for _, m := range []groupgate.OrgMapping{
				{OrganizationID: acme.ID, Group: "eng", RoleOverride: groupgate.OrgRoleAdmin},
				{OrganizationID: beta.ID, Group: "ops"},
			} {
				if _, err := st.AddOrgMapping(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			live := sync.New(st, backend)
			sessions := map[string]string{}
			for _, u := range []groupgate.User{alice, bob} {
				a, err := live.Resolve(ctx, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				id, _ := session.NewID(u.ID)
				sessions[u.UserName] = id
				if err := backend.Save(ctx, &session.Record{ID: id, UserID: u.ID, Memberships: a.Memberships(),
					CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}

			crashing := sync.New(st, backend, sync.WithCrashAfterCommit())
			if _, err := crashing.RemoveOrgMapping(ctx, "admin", acme.ID, "eng"); err != nil {
				t.Fatal(err)
			}
			if _, err := crashing.SetOrgMember(ctx, "admin", acme.ID, alice.ID, groupgate.OrgRoleWriter); err != nil {
				t.Fatal(err)
			}
			if _, err := crashing.DeactivateUser(ctx, "admin", bob.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := crashing.CreateOrganization(ctx, "admin", "gamma", alice.ID); err != nil {
				t.Fatal(err)
			}
			rec, err := backend.Load(ctx, sessions["alice"])
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.Memberships.OrgRoles["acme"]; got != groupgate.OrgRoleAdmin {
				t.Fatalf("before the replay alice's session shows acme=%s; the crash hook did not stop the push", got)
			}
			if n := len(pending(t, st)); n != 4 {
				t.Fatalf("%d outbox entries after four crashed changes, want 4", n)
			}

			restarted := sync.New(st, backend, sync.WithOutbox(time.Minute, 0))
			n, err := restarted.ReplayOutbox(ctx)
			if err != nil || n != 4 {
				t.Fatalf("ReplayOutbox = %d, %v; want 4 entries finished", n, err)
			}
			rec, err = backend.Load(ctx, sessions["alice"])
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleWriter, "beta": groupgate.OrgRoleMember, "gamma": groupgate.OrgRoleOwner}
			if !maps.Equal(rec.Memberships.OrgRoles, want) {
				t.Errorf("alice's session after the replay: %v, want %v", rec.Memberships.OrgRoles, want)
			}
			if _, err := backend.Load(ctx, sessions["bob"]); !groupgate.IsCode(err, groupgate.NotFound) {
				t.Errorf("deactivated bob's session after the replay: err = %v, want NotFound", err)
			}
			if es := pending(t, st); len(es) != 0 {
				t.Errorf("outbox after the replay holds %+v", es)
			}
		})
	}
}

func TestOutbox(t *testing.T) {
	t.Run("a change whose push succeeds leaves no outbox entry", func(t *testing.T) {
		e := newEnv(t)
		acme := e.org("acme")
		e.user("alice", "eng")
		if _, err := e.s.AddOrgMapping(e.ctx, "admin", acme.ID, "eng", ""); err != nil {
			t.Fatal(err)
		}
		if es := pending(t, e.st); len(es) != 0 {
			t.Errorf("outbox holds %+v after a successful push", es)
		}
	})

	t.Run("a failed push keeps its entry until a replay succeeds", func(t *testing.T) {
		e := newEnv(t, sync.WithOutbox(time.Minute, 0))
		acme := e.org("acme")
		alice := e.user("alice", "eng")
		e.rec.failNext(3) // every try of the post-commit push
		if _, err := e.s.AddOrgMapping(e.ctx, "admin", acme.ID, "eng", ""); err != nil {
			t.Fatal(err)
		}
		es := pending(t, e.st)
		if len(es) != 1 || len(es[0].Groups) != 1 || es[0].Groups[0] != "eng" {
			t.Fatalf("outbox = %+v, want one entry for group eng", es)
		}
		e.rec.take()
		n, err := e.s.ReplayOutbox(e.ctx)
		if err != nil || n != 1 {
			t.Fatalf("ReplayOutbox = %d, %v", n, err)
		}
		sets, _ := e.rec.take()
		if sets[alice.ID].OrgRoles["acme"] != groupgate.OrgRoleMember {
			t.Errorf("replay pushed %v to alice, want acme=MEMBER", sets[alice.ID])
		}
		if es := pending(t, e.st); len(es) != 0 {
			t.Errorf("outbox after the replay holds %+v", es)
		}
	})

	t.Run("a Refresh cut short by a crash is finished by a replay", func(t *testing.T) {
		e := newEnv(t, sync.WithCrashAfterCommit(), sync.WithOutbox(time.Minute, 0))
		acme := e.org("acme")
		alice := e.user("alice", "eng")
		// A change made to the store directly, as a seed or an operator script does.
		if _, err := e.st.AddOrgMapping(e.ctx, groupgate.OrgMapping{OrganizationID: acme.ID, Group: "eng"}); err != nil {
			t.Fatal(err)
		}
		e.s.Refresh(e.ctx, alice.ID)
		es := pending(t, e.st)
		if len(es) != 1 || len(es[0].UserIDs) != 1 || es[0].UserIDs[0] != alice.ID {
			t.Fatalf("outbox = %+v, want one entry for alice", es)
		}
		e.rec.take()
		replayer := sync.New(e.st, e.rec, sync.WithNow(func() time.Time { return epoch }), sync.WithOutbox(time.Minute, 0))
		if n, err := replayer.ReplayOutbox(e.ctx); err != nil || n != 1 {
			t.Fatalf("ReplayOutbox = %d, %v", n, err)
		}
		sets, _ := e.rec.take()
		if sets[alice.ID].OrgRoles["acme"] != groupgate.OrgRoleMember {
			t.Errorf("replay pushed %v to alice, want acme=MEMBER", sets[alice.ID])
		}
	})

	t.Run("a successful Refresh leaves no outbox entry", func(t *testing.T) {
		e := newEnv(t)
		alice := e.user("alice", "eng")
		e.s.Refresh(e.ctx, alice.ID)
		if es := pending(t, e.st); len(es) != 0 {
			t.Errorf("outbox holds %+v after a successful refresh", es)
		}
	})

	t.Run("an entry younger than the grace period is left to its own push", func(t *testing.T) {
		e := newEnv(t, sync.WithCrashAfterCommit(), sync.WithOutbox(time.Minute, time.Hour))
		acme := e.org("acme")
		e.user("alice", "eng")
		if _, err := e.s.AddOrgMapping(e.ctx, "admin", acme.ID, "eng", ""); err != nil {
			t.Fatal(err)
		}
		if n, err := e.s.ReplayOutbox(e.ctx); err != nil || n != 0 {
			t.Errorf("ReplayOutbox = %d, %v; want nothing replayed yet", n, err)
		}
	})

	t.Run("RunOutbox replays at start and stops with its context", func(t *testing.T) {
		e := newEnv(t, sync.WithCrashAfterCommit())
		acme := e.org("acme")
		alice := e.user("alice", "eng")
		if _, err := e.s.AddOrgMapping(e.ctx, "admin", acme.ID, "eng", ""); err != nil {
			t.Fatal(err)
		}
		runner := sync.New(e.st, e.rec, sync.WithNow(func() time.Time { return epoch }), sync.WithOutbox(time.Minute, 0))
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() { done <- runner.RunOutbox(ctx, time.Hour) }()
		deadline := time.Now().Add(10 * time.Second)
		for len(pending(t, e.st)) != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunOutbox = %v, want nil on cancel", err)
		}
		if es := pending(t, e.st); len(es) != 0 {
			t.Fatalf("outbox still holds %+v", es)
		}
		sets, _ := e.rec.take()
		if sets[alice.ID].OrgRoles["acme"] != groupgate.OrgRoleMember {
			t.Errorf("runner pushed %v to alice", sets[alice.ID])
		}
		if err := runner.RunOutbox(context.Background(), 0); !groupgate.IsCode(err, groupgate.Invalid) {
			t.Errorf("RunOutbox with interval 0 = %v, want Invalid", err)
		}
	})
}
