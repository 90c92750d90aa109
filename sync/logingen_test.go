package sync_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/sync"
)

// loginEnv is a syncer on a real in-process session backend, counting the
// resolutions made through its store.
type loginEnv struct {
	*env
	sessions    *session.Memory
	s           *sync.Syncer
	resolutions *atomic.Int64
}

func newLoginEnv(t *testing.T) *loginEnv {
	e := newEnv(t)
	mem := session.NewMemory()
	var n atomic.Int64
	s := sync.New(countingStore{e.st, &n}, mem, sync.WithNow(func() time.Time { return epoch }), sync.WithPushRetry(3, time.Millisecond))
	return &loginEnv{env: e, sessions: mem, s: s, resolutions: &n}
}

// saveSession stores a session holding m, as web's finish step does after
// Login, and returns its ID.
func (e *loginEnv) saveSession(u groupgate.User, m groupgate.Memberships) string {
	e.t.Helper()
	id, err := session.NewID(u.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	now := time.Now()
	if err := e.sessions.Save(e.ctx, &session.Record{ID: id, UserID: u.ID, Provider: "p", Memberships: m, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		e.t.Fatalf("save session: %v", err)
	}
	return id
}

func (e *loginEnv) orgRole(id, org string) groupgate.OrgRole {
	e.t.Helper()
	rec, err := e.sessions.Load(e.ctx, id)
	if err != nil {
		e.t.Fatalf("load session: %v", err)
	}
	return rec.Memberships.OrgRoles[org]
}

var loginIdent = groupgate.Identity{Provider: "p", Subject: "alice", Username: "alice", Email: "alice@example.com", Groups: []string{"eng", "ops"}, GroupsPresent: true}

func TestALoginResolvesOnceAndLeavesNoOutboxEntry(t *testing.T) {
	e := newLoginEnv(t)
	acme := e.org("acme")
	if _, err := e.st.AddOrgMapping(e.ctx, groupgate.OrgMapping{OrganizationID: acme.ID, Group: "eng"}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // a first login, then one of a known user
		e.resolutions.Store(0)
		u, m, err := e.s.Login(e.ctx, loginIdent)
		if err != nil {
			t.Fatal(err)
		}
		id := e.saveSession(u, m)
		e.s.SessionStarted(e.ctx, u.ID)
		if n := e.resolutions.Load(); n != 1 {
			t.Errorf("login %d: %d resolutions, want 1", i+1, n)
		}
		if es := pending(t, e.st); len(es) != 0 {
			t.Errorf("login %d: outbox holds %+v", i+1, es)
		}
		if r := e.orgRole(id, "acme"); r != groupgate.OrgRoleMember {
			t.Errorf("login %d: session holds acme=%q, want MEMBER", i+1, r)
		}
	}
}

func TestAChangePushedBetweenLoginAndTheSessionSaveReachesTheNewSession(t *testing.T) {
	for _, replica := range []string{"the same replica", "another replica"} {
		t.Run("made through "+replica, func(t *testing.T) {
			e := newLoginEnv(t)
			acme := e.org("acme")
			u, m, err := e.s.Login(e.ctx, loginIdent)
			if err != nil {
				t.Fatal(err)
			}
			changer := e.s
			if replica == "another replica" {
				changer = sync.New(e.st, e.sessions, sync.WithNow(func() time.Time { return epoch }))
			}
			// Pushed to alice's sessions before the new one exists.
			if _, err := changer.AddOrgMapping(e.ctx, "admin", acme.ID, "eng", groupgate.OrgRoleAdmin); err != nil {
				t.Fatal(err)
			}
			id := e.saveSession(u, m) // the snapshot Login read: no acme role
			e.s.SessionStarted(e.ctx, u.ID)
			if r := e.orgRole(id, "acme"); r != groupgate.OrgRoleAdmin {
				t.Errorf("the new session holds acme=%q, want ADMIN", r)
			}
		})
	}
}

func TestSessionStartedWithoutItsLoginRefreshes(t *testing.T) {
	e := newLoginEnv(t)
	acme := e.org("acme")
	u, m, err := e.s.Login(e.ctx, loginIdent)
	if err != nil {
		t.Fatal(err)
	}
	id := e.saveSession(u, m)
	e.s.SessionStarted(e.ctx, u.ID)
	// No login precedes this call: nothing tells it the session is
	// current, so it resolves and pushes a change made to the store
	// directly.
	if _, err := e.st.AddOrgMapping(e.ctx, groupgate.OrgMapping{OrganizationID: acme.ID, Group: "ops"}); err != nil {
		t.Fatal(err)
	}
	e.s.SessionStarted(context.Background(), u.ID)
	if r := e.orgRole(id, "acme"); r != groupgate.OrgRoleMember {
		t.Errorf("session holds acme=%q, want MEMBER", r)
	}
}
