package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store/postgres"
)

// deathUsers is how many users, each with a live session, the mapping
// that the dying replica removes reaches.
const deathUsers = 10_000

// rewriteMarker is the command the session backend sends once per user it
// rewrites (the rewrite script, pipelined by the batch).
var rewriteMarker = []byte("evalsha")

// cutRelay is a TCP relay between a serve process and Redis. Once armed it
// counts the session rewrites the process sends and, when cutAfter have
// passed, forwards nothing more either way and closes cut: the test then
// SIGKILLs the process. A push takes well under a second, too short to
// land a signal in its middle by timing; the relay makes the middle exact.
type cutRelay struct {
	ln       net.Listener
	upstream string
	cutAfter int64

	armed   atomic.Bool
	seen    atomic.Int64
	cutDone atomic.Bool
	cut     chan struct{}
	once    stdsync.Once

	mu    stdsync.Mutex
	conns []net.Conn
	wg    stdsync.WaitGroup
}

func startCutRelay(t *testing.T, upstream string, cutAfter int64) *cutRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &cutRelay{ln: ln, upstream: upstream, cutAfter: cutAfter, cut: make(chan struct{})}
	r.wg.Go(r.accept)
	t.Cleanup(r.close)
	return r
}

func (r *cutRelay) addr() string { return r.ln.Addr().String() }

func (r *cutRelay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", r.upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, u)
		r.mu.Unlock()
		r.wg.Go(func() { r.pipe(u, c, true) })
		r.wg.Go(func() { r.pipe(c, u, false) })
	}
}

// pipe copies src to dst until either closes or the relay is cut; count
// marks the direction towards Redis, whose rewrites it counts.
func (r *cutRelay) pipe(dst, src net.Conn, count bool) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 64<<10)
	var carry []byte // the tail of the last chunk: a marker may straddle two
	for {
		n, err := src.Read(buf)
		if n > 0 && !r.cutDone.Load() {
			chunk := buf[:n]
			if count && r.armed.Load() {
				s := bytes.ToLower(append(carry, chunk...))
				if k := bytes.Count(s, rewriteMarker); k > 0 && r.seen.Add(int64(k)) >= r.cutAfter {
					r.cutDone.Store(true)
					r.once.Do(func() { close(r.cut) })
				}
				carry = bytes.Clone(s[max(0, len(s)-len(rewriteMarker)+1):])
			}
			// The chunk that reaches the count dies with the process.
			if !r.cutDone.Load() {
				if _, err := dst.Write(chunk); err != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *cutRelay) close() {
	_ = r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// TestAReplicaKilledMidPropagationIsCompletedByAnother runs two replicas on
// one PostgreSQL database and one Redis key prefix: A, a serve process of
// its own that reaches Redis through a relay, and B, serve in this process
// (started once A is dead).
// 10,000 users hold a role on acme through eng, each with a live session.
// A removes the mapping (an API call); the change is committed with its
// outbox entry and A starts rewriting the sessions. Once half of the
// rewrites have passed the relay, it forwards nothing more and A gets
// SIGKILL: the kill lands in the middle of the push, which the test checks
// (some sessions rewritten, some not, the entry still pending). B, which
// never saw the change, completes it from the outbox: every one of the
// 10,000 sessions ends without the role.
func TestAReplicaKilledMidPropagationIsCompletedByAnother(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	client, prefix := testenv.Redis(t)
	relay := startCutRelay(t, testenv.RedisAddr(t), deathUsers/2)
	redisSection := func(addr string) string {
		return "redis:\n  addrs: [" + addr + "]\n  key_prefix: \"" + prefix + "\"\n"
	}
	configA := postgresConfig(t, dsn, redisSection(relay.addr()))
	pathA := writeFile(t, "a.yaml", configA)
	baseA := publicURLRE.FindStringSubmatch(configA)[1]
	token, _ := createTokens(t, pathA) // migrates the database too

	// The users and their group sets in two statements (through the
	// store, one user at a time, this takes 8 s, 15 s under -race), then
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
	sessions, err := session.NewRedis(client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, deathUsers)
	err = parallelDo(deathUsers, 32, func(i int) error {
		userID := fmt.Sprintf("death-%d", i)
		id, err := session.NewID(userID)
		if err != nil {
			return err
		}
		now := time.Now()
		ids[i] = id
		return sessions.Save(ctx, &session.Record{ID: id, UserID: userID,
			Memberships: groupgate.Memberships{Groups: []string{"eng"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember}},
			CreatedAt:   now, ExpiresAt: now.Add(time.Hour)})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("setup of %d users with sessions: %v", deathUsers, time.Since(setup).Round(time.Millisecond))

	a := newServeProcess(t, pathA, baseA)
	a.start()
	defer func() {
		if t.Failed() {
			t.Logf("A's output:\n%s", a.output())
		}
	}()
	mustCall(t, baseA, token, "OrganizationService/CreateOrganization", `{"name":"acme"}`)
	org := mustCall(t, baseA, token, "OrganizationService/GetOrganizationByName", `{"name":"acme"}`)
	orgID, _ := org["organization"].(map[string]any)["id"].(string)
	mustCall(t, baseA, token, "OrganizationService/AddOrganizationGroup", `{"organization_id":"`+orgID+`","group_name":"eng"}`)
	// A removes the mapping and is killed in the middle of the rewrites.
	relay.armed.Store(true)
	answered := make(chan string, 1)
	removedAt := time.Now()
	go func() {
		code, err := apiCallNoFatal(baseA, token, "OrganizationService/RemoveOrganizationGroup", `{"organization_id":"`+orgID+`","group_name":"eng"}`)
		answered <- fmt.Sprintf("%d, %v", code, err)
	}()
	select {
	case <-relay.cut:
	case got := <-answered:
		t.Fatalf("A answered the removal (%s) before half of the rewrites passed (%d did)", got, relay.seen.Load())
	case <-time.After(20 * time.Second):
		t.Fatalf("A sent %d rewrites in 20 s, not %d", relay.seen.Load(), relay.cutAfter)
	}
	a.kill()
	killedAt := time.Now()
	t.Logf("A killed %v after the removal call, once the relay had counted %d rewrites; its API call: %s",
		killedAt.Sub(removedAt).Round(time.Millisecond), relay.seen.Load(), <-answered)

	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, _, err := st.OutboxStats(ctx); err != nil || n == 0 {
		t.Fatalf("outbox at the kill: %d entries (%v), want A's entry pending", n, err)
	}
	// Redis may still be running what the relay forwarded before the cut;
	// nothing else writes the sessions until B starts.
	time.Sleep(100 * time.Millisecond)
	// Every tenth session tells whether A died in the middle.
	var sample []string
	for i := 0; i < len(ids); i += 10 {
		sample = append(sample, ids[i])
	}
	stale := sessionsWithRole(ctx, t, sessions, sample)
	if stale == 0 || stale == len(sample) {
		t.Fatalf("%d of %d sampled sessions still hold the role after A's kill: not the middle of a propagation", stale, len(sample))
	}
	t.Logf("A died with %d of %d sampled sessions rewritten", len(sample)-stale, len(sample))

	// B, which never saw the change, starts now: running it from the
	// start would let its outbox race the sample above on a loaded machine
	// (it replays the entry once 5 s old). It has serve's outbox grace and
	// a 200 ms round (5 s in production): the test's only shortcut.
	bStart := time.Now()
	_, _, _, logsB := startServeWith(t, postgresConfig(t, dsn, redisSection(testenv.RedisAddr(t))), func(m *Main) { m.OutboxInterval = 200 * time.Millisecond })
	defer func() {
		if t.Failed() {
			t.Logf("B's logs:\n%s", logsB)
		}
	}()

	// B acknowledges the entry once every session is rewritten; then
	// every session is read once (reading 10,000 on every poll would
	// starve B of the CPU).
	for deadline := killedAt.Add(20 * time.Second); ; {
		n, _, err := st.OutboxStats(ctx)
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's outbox entry is still pending 20 s after A died (%d entries, %v)", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(killedAt)
	if stale = sessionsWithRole(ctx, t, sessions, ids); stale != 0 {
		t.Fatalf("%d of %d sessions still hold acme=MEMBER after B finished A's outbox entry", stale, deathUsers)
	}
	t.Logf("B (started %v after the kill) completed the propagation %v after A died (its outbox grace is 5 s)",
		bStart.Sub(killedAt).Round(time.Millisecond), took.Round(time.Millisecond))
}

// sessionsWithRole counts the sessions of ids that still hold a role on
// acme; every one must still exist.
func sessionsWithRole(ctx context.Context, t *testing.T, b *session.Redis, ids []string) int {
	t.Helper()
	var n atomic.Int64
	err := parallelDo(len(ids), 32, func(i int) error {
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

// parallelDo runs fn(i) for i in [0, n) on workers goroutines and returns
// the first error.
func parallelDo(n, workers int, fn func(i int) error) error {
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
