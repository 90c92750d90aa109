package scim

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/postgres"
	"github.com/groupgate/groupgate/store/sqlite"
	"github.com/groupgate/groupgate/sync"
)

const testToken = "scim-test-secret"

// storeT is the store the tests use: every interface plus SCIM.
type storeT interface {
	store.Store
	store.SCIMStore
}

// env is a SCIM server on a real store, a syncer and an in-process session
// backend whose records the tests inspect.
type env struct {
	t    testing.TB
	ctx  context.Context
	st   storeT
	mem  *session.Memory
	sy   *sync.Syncer
	srv  *Server
	now  time.Time
	orgs map[string]groupgate.Organization
}

func openSQLite(t testing.TB) storeT {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, "file:"+filepath.Join(t.TempDir(), "gg.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

func openPostgres(t testing.TB) storeT {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

func newEnv(t testing.TB, opts ...Option) *env {
	return newEnvOn(t, openSQLite(t), opts...)
}

func newEnvOn(t testing.TB, st storeT, opts ...Option) *env {
	t.Helper()
	ctx := context.Background()
	mem := session.NewMemory()
	sy := sync.New(st, mem, sync.WithPushRetry(2, time.Millisecond))
	sum := sha256.Sum256([]byte(testToken))
	if _, err := st.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenSCIM, Name: "idp", Hash: sum[:]}); err != nil {
		t.Fatalf("create token: %v", err)
	}
	return &env{t: t, ctx: ctx, st: st, mem: mem, sy: sy, srv: NewServer(st, sy, opts...), now: time.Now(), orgs: map[string]groupgate.Organization{}}
}

// do sends a request with the test token and returns status and decoded
// body (nil when empty).
func (e *env) do(method, path, body string, hdr ...string) (int, map[string]any, http.Header) {
	e.t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, "http://sso.example.com"+path, nil)
	} else {
		r = httptest.NewRequest(method, "http://sso.example.com"+path, strings.NewReader(body))
	}
	r.Header.Set("Authorization", "Bearer "+testToken)
	r.Header.Set("Content-Type", "application/scim+json")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	var out map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			e.t.Fatalf("%s %s: response is not JSON: %v: %s", method, path, err, w.Body.String())
		}
	}
	return w.Code, out, w.Header()
}

// must sends a request and fails unless the status is want.
func (e *env) must(want int, method, path, body string, hdr ...string) map[string]any {
	e.t.Helper()
	got, out, _ := e.do(method, path, body, hdr...)
	if got != want {
		e.t.Fatalf("%s %s: status %d, want %d: %v", method, path, got, want, out)
	}
	return out
}

// ssoLogin logs a user in through the syncer, as the web layer does, and
// stores a live session with the returned snapshot.
func (e *env) ssoLogin(userName, email string, groups ...string) groupgate.User {
	e.t.Helper()
	u, m, err := e.sy.Login(e.ctx, groupgate.Identity{Provider: "oidc", Subject: "sub-" + userName, Username: userName, Email: email, Groups: groups, GroupsPresent: true})
	if err != nil {
		e.t.Fatalf("login %s: %v", userName, err)
	}
	e.session(u.ID, m)
	return u
}

func (e *env) session(userID string, m groupgate.Memberships) {
	e.t.Helper()
	id, err := session.NewID(userID)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.mem.Save(e.ctx, &session.Record{ID: id, UserID: userID, Memberships: m, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		e.t.Fatalf("save session: %v", err)
	}
}

// mapOrg creates the organization when needed and maps group to role.
func (e *env) mapOrg(org, group string, role groupgate.OrgRole) {
	e.t.Helper()
	o, ok := e.orgs[org]
	if !ok {
		var err error
		if o, err = e.st.CreateOrganization(e.ctx, groupgate.Organization{Name: org}); err != nil {
			e.t.Fatalf("create org: %v", err)
		}
		e.orgs[org] = o
	}
	if _, err := e.sy.AddOrgMapping(e.ctx, "test", o.ID, group, role); err != nil {
		e.t.Fatalf("map %s: %v", group, err)
	}
}

// sessions returns the live session records of a user.
func (e *env) sessions(userID string) []*session.Record {
	e.t.Helper()
	recs, err := e.mem.ListUserSessions(e.ctx, userID)
	if err != nil {
		e.t.Fatalf("list sessions: %v", err)
	}
	return recs
}

func (e *env) orgRoles(userID string) map[string]groupgate.OrgRole {
	e.t.Helper()
	a, err := e.sy.Resolve(e.ctx, userID)
	if err != nil {
		e.t.Fatalf("resolve %s: %v", userID, err)
	}
	out := map[string]groupgate.OrgRole{}
	for _, o := range a.Orgs {
		out[o.OrganizationName] = o.Role
	}
	return out
}

func scimTypeOf(body map[string]any) string {
	s, _ := body["scimType"].(string)
	return s
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
