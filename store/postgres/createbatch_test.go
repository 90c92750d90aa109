package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store"
)

// createCounter counts the pipelined batches that ran createUsersSQL: one
// per commit of SCIM creates.
type createCounter struct{ n atomic.Int64 }

func (c *createCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (c *createCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *createCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (c *createCounter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	if d.SQL == createUsersSQL {
		c.n.Add(1)
	}
}
func (c *createCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// unmatchedCall is one CreateUserUnmatched call of a test and its answer.
type unmatchedCall struct {
	name, email string
	byEmail     bool
	wantCreated bool
	wantCode    groupgate.ErrorCode // "" for no error

	created bool
	err     error
}

// holdEmailLock takes the advisory lock creates of email take, in a
// transaction of its own, until the returned function runs: a create of
// that email then blocks in the database, and every create after it
// queues behind its batch.
func holdEmailLock(t *testing.T, dsn, email string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::integer, $2::integer)`, emailLockClass,
		emailLockKey(groupgate.NormalizeEmail(email))); err != nil {
		t.Fatalf("lock: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback(ctx)
			_ = conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *Store) queuedCreates() int {
	s.creates.mu.Lock()
	defer s.creates.mu.Unlock()
	return len(s.creates.queue)
}

// runQueued starts a create that blocks in the database on blocker's
// email lock, then queues calls behind it, releases the lock and waits
// for every answer: the queued calls are written as batches.
func runQueued(t *testing.T, s *Store, dsn string, calls []*unmatchedCall) {
	t.Helper()
	ctx := context.Background()
	release := holdEmailLock(t, dsn, "blocker@example.com")
	var wg sync.WaitGroup
	create := func(c *unmatchedCall) {
		u := groupgate.User{ID: store.NewID(), UserName: c.name, Email: c.email, Active: true}
		ev := groupgate.AuditEvent{Actor: "scim:test", Action: "scim.user.create", TargetType: "user", TargetID: u.ID}
		_, c.created, c.err = s.CreateUserUnmatched(ctx, u, c.byEmail, ev)
	}
	blocker := &unmatchedCall{name: "blocker", email: "blocker@example.com", byEmail: true, wantCreated: true}
	wg.Go(func() { create(blocker) })
	waitFor(t, "the blocker's batch is being written", func() bool {
		s.creates.mu.Lock()
		defer s.creates.mu.Unlock()
		return s.creates.writing && len(s.creates.queue) == 0
	})
	// One after the other, so that the queue's order is the calls'.
	for i, c := range calls {
		wg.Go(func() { create(c) })
		waitFor(t, "the call is queued", func() bool { return s.queuedCreates() == i+1 })
	}
	release()
	wg.Wait()
	for _, c := range append([]*unmatchedCall{blocker}, calls...) {
		switch {
		case c.wantCode != "" && !groupgate.IsCode(c.err, c.wantCode):
			t.Errorf("create %.20q: error %v, want code %s", c.name, c.err, c.wantCode)
		case c.wantCode == "" && c.err != nil:
			t.Errorf("create %.20q: %v", c.name, c.err)
		case c.created != c.wantCreated:
			t.Errorf("create %.20q <%s> byEmail=%v: created %v, want %v", c.name, c.email, c.byEmail, c.created, c.wantCreated)
		}
	}
}

func TestConcurrentCreatesCommitTogetherEachWithItsOwnAnswer(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	var batches createCounter
	s := openOn(t, dsn, true, WithQueryTracer(&batches))
	if _, err := s.CreateUser(ctx, groupgate.User{UserName: "taken", Email: "taken@example.com", Active: true}); err != nil {
		t.Fatal(err)
	}
	calls := []*unmatchedCall{
		{name: "fresh", email: "fresh@example.com", byEmail: true, wantCreated: true},
		{name: "TAKEN", email: "other@example.com", byEmail: true},
		{name: "takes-an-email", email: "Taken@Example.com", byEmail: true},
		{name: "shares-an-email", email: "taken@example.com", byEmail: false, wantCreated: true},
		{name: "first-of-two", email: "dup@example.com", byEmail: true, wantCreated: true},
		{name: "second-of-two", email: "DUP@example.com", byEmail: true},
		{name: "twin", email: "twin1@example.com", byEmail: true, wantCreated: true},
		{name: "TWIN", email: "twin2@example.com", byEmail: true},
	}
	batches.n.Store(0)
	runQueued(t, s, dsn, calls)
	// The blocker's batch, one for the queue, one for the two calls left
	// for later because an earlier call of the batch had their email key.
	if got := batches.n.Load(); got != 3 {
		t.Errorf("%d create statements for %d calls, want 3", got, len(calls)+1)
	}
	// Each user created has exactly one audit event; the others none.
	events, err := s.ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	perUser := map[string]int{}
	for _, ev := range events {
		if ev.Action == "scim.user.create" {
			perUser[ev.TargetID]++
		}
	}
	users, err := s.ListUsers(ctx, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created := 0
	for _, u := range users {
		if u.UserName == "taken" {
			continue
		}
		created++
		if perUser[u.ID] != 1 {
			t.Errorf("user %s has %d create events, want 1", u.UserName, perUser[u.ID])
		}
	}
	if created != len(perUser) || created != 5 {
		t.Errorf("%d users created with %d create events, want 5 and 5", created, len(perUser))
	}
}

func TestARowTheDatabaseRefusesFailsAloneInItsBatch(t *testing.T) {
	dsn := testenv.Postgres(t)
	s := openOn(t, dsn, true)
	// Too big for the B-tree index on lower(user_name) even compressed:
	// the database refuses the row (54000), which is Invalid.
	var huge strings.Builder
	sum := sha256.Sum256([]byte("seed"))
	for huge.Len() < 8000 {
		sum = sha256.Sum256(sum[:])
		huge.WriteString(hex.EncodeToString(sum[:]))
	}
	calls := []*unmatchedCall{
		{name: "before", email: "before@example.com", byEmail: true, wantCreated: true},
		{name: huge.String(), email: "huge@example.com", byEmail: true, wantCode: groupgate.Invalid},
		{name: "after", email: "after@example.com", byEmail: true, wantCreated: true},
	}
	runQueued(t, s, dsn, calls)
}

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
