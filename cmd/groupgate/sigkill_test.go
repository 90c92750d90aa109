package main

import (
	"context"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store/postgres"
)

var publicURLRE = regexp.MustCompile(`(?m)^public_url: (\S+)$`)

// Bounds of the SIGKILL test: the outbox replays an entry once it is
// sync.DefaultOutboxGrace (5 s) old, on serve's default 5 s round.
const maxOutboxCatchUp = 15 * time.Second

// TestServeKilledUnderWriteLoadLosesNoAcknowledgedWrite runs serve as a
// process of its own on PostgreSQL and Redis, and while writers create
// repositories and change eng's role through the API and create users and
// add group members through SCIM, kills it with SIGKILL (no shutdown: some
// requests die mid-transaction, some changes are committed and never
// pushed) and starts it again on the same port. It asserts that every
// answer serve gave was 2xx, that requests failed only while it was gone,
// that every acknowledged write is in the database with its audit event,
// and that the signed-in users' sessions end with the role the store
// grants: the restarted process's outbox replays what the dead one
// committed but did not push.
func TestServeKilledUnderWriteLoadLosesNoAcknowledgedWrite(t *testing.T) {
	dsn := testenv.Postgres(t)
	_, prefix := testenv.Redis(t)
	config := postgresConfig(t, dsn, "redis:\n  addrs: ["+testenv.RedisAddr(t)+"]\n  key_prefix: \""+prefix+"\"\nscim:\n  enabled: true\n")
	path := writeFile(t, "gg.yaml", config)
	base := publicURLRE.FindStringSubmatch(config)[1]
	token, scimToken := createTokens(t, path)
	p := newServeProcess(t, path, base)
	p.start()
	defer func() {
		if t.Failed() {
			t.Logf("serve's output:\n%s", p.output())
		}
	}()

	w := setUpWriteLoad(t, base, token, scimToken)
	// bob has eng alone, so his role on acme is eng's (alice owns acme).
	// Two sessions of his: every one must catch up.
	browsers := map[string]*http.Client{"bob": w.signIn(t, "bob")}
	w.cookies["bob's first session"] = w.cookies["bob"]
	browsers["bob's second session"] = w.signIn(t, "bob")
	browsers["bob's first session"] = browsers["bob"]
	delete(browsers, "bob")
	load := w.start()
	time.Sleep(1500 * time.Millisecond)
	killAt := time.Now()
	p.kill()
	time.Sleep(300 * time.Millisecond)
	p.start()
	backAt := time.Now()
	time.Sleep(2500 * time.Millisecond)
	load.stop()
	t.Logf("serve killed at 0, answering again at %v", backAt.Sub(killAt).Round(time.Millisecond))

	attempts := load.log.snapshot()
	counts := map[string][2]int{} // kind → acknowledged, unanswered
	for _, a := range attempts {
		c := counts[a.kind]
		switch {
		case a.acked():
			c[0]++
		case a.err != nil:
			c[1]++
			// A request that was in flight at the kill, or sent while no
			// process listened, gets no answer; no other may fail.
			if a.end.Before(killAt) || a.start.After(backAt) {
				t.Errorf("%s %s got no answer at %v after the kill: %v", a.kind, a.key, a.start.Sub(killAt), a.err)
			}
		default:
			t.Errorf("%s %s answered %d (%s) at %v after the kill, want 2xx", a.kind, a.key, a.status, a.code, a.start.Sub(killAt))
		}
		counts[a.kind] = c
	}
	for kind, c := range counts {
		t.Logf("%s: %d acknowledged, %d unanswered", kind, c[0], c[1])
	}
	for _, a := range load.auths {
		switch {
		case a.who == "signed-out" && a.status == http.StatusOK:
			t.Errorf("/auth for a signed-out cookie answered 200 at %v after the kill", a.start.Sub(killAt))
		case a.who != "signed-out" && a.err == nil && a.status != http.StatusOK && (a.end.Before(killAt) || a.start.After(backAt)):
			// Between the kill and the restart's readiness a starting
			// process answers 503; otherwise a signed-in user passes.
			t.Errorf("/auth for %s answered %d at %v after the kill", a.who, a.status, a.start.Sub(killAt))
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkNothingLost(ctx, t, st, w.orgID, attempts)

	// No live session holds a role the store no longer grants.
	want := roleThroughEng(ctx, t, st, w.orgID)
	pending, _, _ := st.OutboxStats(ctx)
	for who, c := range browsers {
		var code int
		var got string
		for deadline := killAt.Add(maxOutboxCatchUp); ; {
			var h http.Header
			code, h = authHeaders(t, c, base)
			if got = h.Get("X-Auth-Request-Org-Roles"); code == http.StatusOK && got == want {
				break
			}
			if time.Now().After(deadline) {
				n, oldest, err := st.OutboxStats(ctx)
				t.Fatalf("%s's /auth = %d with org roles %q, want %q (the store's) within %v of the kill; outbox: %d pending since %v (%v)",
					who, code, got, want, maxOutboxCatchUp, n, oldest, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eventually(t, time.Until(killAt.Add(maxOutboxCatchUp)), "the outbox drains", func() bool {
		n, _, err := st.OutboxStats(ctx)
		return err == nil && n == 0
	})
	t.Logf("%d outbox entries pending when the load stopped; every session shows %s and the outbox is empty %v after the kill",
		pending, want, time.Since(killAt).Round(time.Millisecond))

	// And the orchestrator's SIGTERM ends the restarted process cleanly.
	tctx, tcancel := context.WithTimeout(ctx, 20*time.Second)
	defer tcancel()
	state, exited := p.terminate(tctx)
	if !exited || !state.Success() {
		t.Errorf("serve after SIGTERM: exited %v, %v; want exit status 0", exited, state)
	}
}

// roleThroughEng is the X-Auth-Request-Org-Roles value ("acme=ROLE") that
// the store's mapping of eng on the organization grants now.
func roleThroughEng(ctx context.Context, t *testing.T, st *postgres.Store, orgID string) string {
	t.Helper()
	m, err := st.GetOrgMapping(ctx, orgID, "eng")
	if err != nil {
		t.Fatal(err)
	}
	if m.RoleOverride == groupgate.OrgRoleUnspecified {
		return "acme=MEMBER"
	}
	return "acme=" + string(m.RoleOverride)
}
