package sync_test

import (
	"context"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/sync"
)

// heldWriter passes through to a session backend, except that the first
// rewrite for one user waits (after its store read, before its write)
// until the test releases it: the race of two replicas, made
// deterministic.
type heldWriter struct {
	sync.SnapshotWriter
	userID  string
	once    stdsync.Once
	reached chan struct{}
	release chan struct{}
}

func (h *heldWriter) SetMembershipsIf(ctx context.Context, userID string, gen int64, m groupgate.Memberships) (bool, int, error) {
	if userID == h.userID {
		held := false
		h.once.Do(func() { held = true })
		if held {
			close(h.reached)
			<-h.release
		}
	}
	return h.SnapshotWriter.SetMembershipsIf(ctx, userID, gen, m)
}

func TestTwoReplicasRacingLeaveTheNewestSnapshot(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	mem := session.NewMemory()
	acme, _ := st.CreateOrganization(ctx, groupgate.Organization{Name: "acme"})
	beta, _ := st.CreateOrganization(ctx, groupgate.Organization{Name: "beta"})
	e := &env{t: t, ctx: ctx, st: st}
	alice := e.user("alice", "eng")
	id, err := session.NewID(alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := mem.Save(ctx, &session.Record{ID: id, UserID: alice.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	held := &heldWriter{SnapshotWriter: mem, userID: alice.ID, reached: make(chan struct{}), release: make(chan struct{})}
	a := sync.New(st, held, sync.WithPushRetry(1, time.Millisecond))
	b := sync.New(st, mem, sync.WithPushRetry(1, time.Millisecond))

	// A commits acme and reads alice's access {acme}; its write waits.
	done := make(chan error)
	go func() {
		_, err := a.AddOrgMapping(ctx, "t", acme.ID, "eng", "")
		done <- err
	}()
	<-held.reached
	// B commits beta after A's read and writes {acme, beta}.
	if _, err := b.AddOrgMapping(ctx, "t", beta.ID, "eng", groupgate.OrgRoleAdmin); err != nil {
		t.Fatal(err)
	}
	close(held.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	rec, err := mem.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Memberships.OrgRoles; got["acme"] != groupgate.OrgRoleMember || got["beta"] != groupgate.OrgRoleAdmin {
		t.Errorf("alice's session holds %v, want acme=MEMBER and beta=ADMIN: A's older snapshot landed last", got)
	}
	// Neither change is left for a replay to fix: the older push was
	// skipped because the newer one, which includes it, was written.
	if es := pending(t, st); len(es) != 0 {
		t.Errorf("outbox holds %+v, want both entries acknowledged", es)
	}
}

func TestAPushThatCannotTakeAGenerationStaysInTheOutbox(t *testing.T) {
	e := newEnv(t, sync.WithOutbox(time.Minute, 0))
	acme := e.org("acme")
	alice := e.user("alice", "eng")
	e.rec.failNextGenerations(3)
	if _, err := e.s.AddOrgMapping(e.ctx, "t", acme.ID, "eng", ""); err != nil {
		t.Fatal(err)
	}
	if sets, _ := e.rec.take(); len(sets) != 0 {
		t.Fatalf("pushed %v without a generation", sets)
	}
	if es := pending(t, e.st); len(es) != 1 {
		t.Fatalf("outbox = %+v, want the change's entry kept", es)
	}
	if n, err := e.s.ReplayOutbox(e.ctx); err != nil || n != 1 {
		t.Fatalf("ReplayOutbox = %d, %v", n, err)
	}
	sets, _ := e.rec.take()
	if got := sets[alice.ID].OrgRoles["acme"]; got != groupgate.OrgRoleMember {
		t.Errorf("after replay alice has acme=%q, want MEMBER", got)
	}
	if len(sets) != 1 {
		t.Errorf("replay pushed to %d users, want alice only", len(sets))
	}
}
