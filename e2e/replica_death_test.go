package e2e

import (
	"context"
	"fmt"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/postgres"
	"github.com/groupgate/groupgate/sync"
)

// deathUsers is how many users, each with a live session, the mapping
// that the dying replica removes reaches.
const deathUsers = 10_000

// dyingWriter lets a replica's first session batches through and then
// dies: every later write hangs, as writes of a killed process never
// arrive, until the test ends (then it fails them).
type dyingWriter struct {
	*session.Redis
	left    atomic.Int64  // batches still let through
	dead    chan struct{} // closed at the first write after death
	once    stdsync.Once
	release chan struct{}
}

func (d *dyingWriter) SetMembershipsIfBatch(ctx context.Context, writes []sync.SnapshotWrite) ([]sync.SnapshotResult, error) {
	if d.left.Add(-1) >= 0 {
		return d.Redis.SetMembershipsIfBatch(ctx, writes)
	}
	d.once.Do(func() { close(d.dead) })
	<-d.release
	return nil, fmt.Errorf("replica killed")
}

func (d *dyingWriter) SetMembershipsIf(ctx context.Context, userID string, gen int64, m groupgate.Memberships) (bool, int, error) {
	d.once.Do(func() { close(d.dead) })
	<-d.release
	return false, 0, fmt.Errorf("replica killed")
}

// TestAReplicaKilledMidPropagationIsCompletedByAnother: replica A removes a
// mapping that 10,000 signed-in users hold a role through and dies after
// rewriting the first few batches of their sessions; its change is
// committed with its outbox entry, which A never acknowledges. Replica B,
// running the outbox as every replica does, completes the propagation:
// every one of the 10,000 sessions loses the role.
func TestAReplicaKilledMidPropagationIsCompletedByAnother(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	stA, stB := openPostgres(t, dsn, true), openPostgres(t, dsn, false)
	client, prefix := testenv.Redis(t)
	backendA, err := session.NewRedis(client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	backendB, _ := session.NewRedis(client, prefix)
	dying := &dyingWriter{Redis: backendA, dead: make(chan struct{}), release: make(chan struct{})}
	dying.left.Store(4) // 4 × 500 users rewritten before the death
	replicaA := sync.New(stA, dying)
	// B replays entries once they are a second old (5 s by default) and
	// looks every 100 ms (5 s in serve): the test's only shortcuts.
	replicaB := sync.New(stB, backendB, sync.WithOutbox(sync.DefaultOutboxLease, time.Second))

	org, err := stA.CreateOrganization(ctx, groupgate.Organization{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stA.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: org.ID, Group: "eng"}); err != nil {
		t.Fatal(err)
	}
	// The users and their group sets in two statements (through the
	// store, one user at a time, this took 8 s, 15 s under -race), then
	// one session each.
	setup := time.Now()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO users (id, user_name, active, created_at, updated_at, version)
		SELECT 'death-' || n, 'user' || lpad(n::text, 5, '0'), true, now(), now(), 1 FROM generate_series(0, $1 - 1) n`, deathUsers)
	if err == nil {
		_, err = conn.Exec(ctx, `INSERT INTO group_memberships (user_id, group_name, source, added_at)
			SELECT 'death-' || n, 'eng', 'scim', now() FROM generate_series(0, $1 - 1) n`, deathUsers)
	}
	_ = conn.Close(ctx)
	if err != nil {
		t.Fatalf("create the users: %v", err)
	}
	ids := make([]string, deathUsers)
	err = parallel(deathUsers, 32, func(i int) error {
		userID := fmt.Sprintf("death-%d", i)
		id, err := session.NewID(userID)
		if err != nil {
			return err
		}
		now := time.Now()
		ids[i] = id
		return backendA.Save(ctx, &session.Record{ID: id, UserID: userID,
			Memberships: groupgate.Memberships{Groups: []string{"eng"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember}},
			CreatedAt:   now, ExpiresAt: now.Add(time.Hour)})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("setup of %d users with sessions: %v", deathUsers, time.Since(setup).Round(time.Millisecond))

	// A removes the mapping and dies in the middle of the rewrites.
	removed := make(chan error, 1)
	go func() {
		_, err := replicaA.RemoveOrgMapping(ctx, "admin", org.ID, "eng")
		removed <- err
	}()
	t.Cleanup(func() { close(dying.release); <-removed })
	select {
	case <-dying.dead:
	case err := <-removed:
		t.Fatalf("RemoveOrgMapping returned (%v) without A dying", err)
	case <-time.After(30 * time.Second):
		t.Fatal("A never reached the rewrites it dies in")
	}
	killedAt := time.Now()
	// Every tenth session tells whether A died in the middle.
	var sample []string
	for i := 0; i < len(ids); i += 10 {
		sample = append(sample, ids[i])
	}
	stale := staleSessions(ctx, t, backendB, sample)
	if stale == 0 || stale == len(sample) {
		t.Fatalf("%d of %d sampled sessions still hold the role when A dies: not the middle of a propagation", stale, len(sample))
	}
	t.Logf("A died with %d of %d sampled sessions rewritten", len(sample)-stale, len(sample))

	// B, which never saw the change, completes it from the outbox.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- replicaB.RunOutbox(runCtx, 100*time.Millisecond) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("B's outbox runner: %v", err)
		}
	}()
	// B acknowledges the entry once every session is rewritten; then
	// every session is read once (reading 10,000 on every poll would
	// starve B of the CPU).
	for deadline := killedAt.Add(20 * time.Second); ; {
		n, _, err := stB.(store.OutboxStore).OutboxStats(ctx)
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's outbox entry is still pending 20 s after A died (%d entries, %v)", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(killedAt)
	if stale = staleSessions(ctx, t, backendB, ids); stale != 0 {
		t.Fatalf("%d of %d sessions still hold acme=MEMBER after B finished A's outbox entry", stale, deathUsers)
	}
	t.Logf("B completed the propagation %v after A died (its outbox grace is 1 s)", took.Round(time.Millisecond))
}

// staleSessions counts the sessions of ids that still hold a role on acme.
func staleSessions(ctx context.Context, t *testing.T, b *session.Redis, ids []string) int {
	t.Helper()
	var n atomic.Int64
	err := parallel(len(ids), 32, func(i int) error {
		rec, err := b.Load(ctx, ids[i])
		if err != nil {
			return fmt.Errorf("load session %d: %w", i, err)
		}
		if rec.Memberships.OrgRoles["acme"] != "" {
			n.Add(1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return int(n.Load())
}

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns
// the first error.
func parallel(n, workers int, fn func(i int) error) error {
	var (
		next atomic.Int64
		wg   stdsync.WaitGroup
		mu   stdsync.Mutex
		err  error
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if e := fn(i); e != nil {
					mu.Lock()
					err = e
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return err
}

// openPostgres opens a store on dsn, migrating it first when migrate;
// each replica has a pool of its own, as separate processes would.
func openPostgres(t *testing.T, dsn string, migrate bool) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if migrate {
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return st
}
