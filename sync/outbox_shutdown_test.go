package sync_test

import (
	"context"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

// stoppedMidBatch holds the first session rewrite until release is closed, and
// fails it, as Redis calls do, if its context ends first.
type stoppedMidBatch struct {
	sync.SnapshotWriter
	entered, release chan struct{}
	once             stdsync.Once
}

func (h *stoppedMidBatch) SetMembershipsIf(ctx context.Context, userID string, gen int64, m groupgate.Memberships) (bool, int, error) {
	h.once.Do(func() { close(h.entered) })
	select {
	case <-h.release:
	case <-ctx.Done():
		return false, 0, ctx.Err()
	}
	return h.SnapshotWriter.SetMembershipsIf(ctx, userID, gen, m)
}

// A replica that shuts down while it replays a batch finishes the batch:
// abandoned, the claimed entries would wait out their lease (30 s) before
// another replica could replay them, and the sessions would keep roles the
// store no longer grants meanwhile.
func TestRunOutboxFinishesTheBatchInHandWhenStopped(t *testing.T) {
	e := newEnv(t, sync.WithCrashAfterCommit())
	acme := e.org("acme")
	alice := e.user("alice", "eng")
	if _, err := e.s.AddOrgMapping(e.ctx, "admin", acme.ID, "eng", ""); err != nil {
		t.Fatal(err)
	}
	held := &stoppedMidBatch{SnapshotWriter: e.rec, entered: make(chan struct{}), release: make(chan struct{})}
	runner := sync.New(e.st, held, sync.WithNow(func() time.Time { return epoch }), sync.WithOutbox(time.Minute, 0))
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- runner.RunOutbox(ctx, time.Hour) }()
	select {
	case <-held.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the runner did not start replaying")
	}
	cancel() // shutdown, with the batch in hand
	time.Sleep(50 * time.Millisecond)
	close(held.release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunOutbox = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunOutbox did not return after its batch")
	}
	if es := pending(t, e.st); len(es) != 0 {
		t.Fatalf("outbox still holds %+v: the batch in hand was abandoned", es)
	}
	if sets, _ := e.rec.take(); sets[alice.ID].OrgRoles["acme"] != groupgate.OrgRoleMember {
		t.Errorf("alice's sessions got %v, want acme=MEMBER", sets[alice.ID])
	}
}
