package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/sqlite"
	"github.com/groupgate/groupgate/sync"
)

// apiClock is a clock tests move by hand.
type apiClock struct {
	mu stdsync.Mutex
	t  time.Time
}

func (c *apiClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *apiClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// apiEnv is a server with the API mounted over a real SQLite store, a
// Syncer pushing to an in-process session backend, and a session cookie
// store for cookie authentication.
type apiEnv struct {
	t      testing.TB
	ctx    context.Context
	st     store.Store
	mem    *session.Memory
	cookie *session.Store
	syncer *sync.Syncer
	clock  *apiClock
	srv    *httptest.Server
}

// apiExcluded is the test group filter: "external-" groups are invisible.
func apiExcluded(g string) bool { return strings.HasPrefix(g, "external-") }

func newAPIEnv(t testing.TB, opts ...api.Option) *apiEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, "file:"+filepath.Join(t.TempDir(), "gg.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	mem := session.NewMemory()
	cookie, err := session.NewStore(mem, bytes.Repeat([]byte("k"), 32), session.WithSecureCookie(false))
	if err != nil {
		t.Fatalf("session store: %v", err)
	}
	clock := &apiClock{t: time.Now().UTC()}
	syncer := sync.New(st, mem,
		sync.WithGroupFilter(func(g string) bool { return !apiExcluded(g) }),
		sync.WithPushRetry(1, time.Millisecond))
	a := api.New(st, syncer, append([]api.Option{
		api.WithAdmins([]string{"ROOT@example.com"}),
		api.WithSessions(mem),
		api.WithCookieAuth(api.SessionCookieAuth(cookie)),
		api.WithNow(clock.Now),
	}, opts...)...)
	mux := http.NewServeMux()
	a.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &apiEnv{t: t, ctx: ctx, st: st, mem: mem, cookie: cookie, syncer: syncer, clock: clock, srv: srv}
}

// user creates an active user whose SCIM group set holds groups.
func (e *apiEnv) user(name string, groups ...string) groupgate.User {
	e.t.Helper()
	// As a login with a verified email leaves it: instance admins bind
	// to the verified address.
	u, err := e.st.CreateUser(e.ctx, groupgate.User{UserName: name, Email: name + "@example.com", VerifiedEmail: name + "@example.com", Active: true})
	if err != nil {
		e.t.Fatalf("create user %s: %v", name, err)
	}
	if len(groups) > 0 {
		if _, err := e.syncer.SetUserGroups(e.ctx, "test", u.ID, groupgate.SourceSCIM, groups); err != nil {
			e.t.Fatalf("set groups of %s: %v", name, err)
		}
	}
	return u
}

// token stores an API token for u, as `groupgate token create` does.
func (e *apiEnv) token(u groupgate.User, expires time.Time) string {
	e.t.Helper()
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := "gg_" + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(tok))
	if _, err := e.st.CreateToken(e.ctx, groupgate.Token{Kind: groupgate.TokenAPI, UserID: u.ID, Hash: sum[:], ExpiresAt: expires}); err != nil {
		e.t.Fatalf("create token: %v", err)
	}
	return tok
}

// login signs u in through the Syncer, as a browser login would, and
// returns the live session's ID.
func (e *apiEnv) login(name string, groups ...string) (groupgate.User, string) {
	e.t.Helper()
	u, m, err := e.syncer.Login(e.ctx, groupgate.Identity{Provider: "test", Subject: name, Username: name, Email: name + "@example.com", EmailVerified: true, Groups: groups, GroupsPresent: true})
	if err != nil {
		e.t.Fatalf("login %s: %v", name, err)
	}
	id, err := session.NewID(u.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	rec := &session.Record{ID: id, UserID: u.ID, Provider: "test", Memberships: m, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := e.mem.Save(e.ctx, rec); err != nil {
		e.t.Fatalf("save session: %v", err)
	}
	return u, id
}

// snapshot is the membership snapshot held by a live session.
func (e *apiEnv) snapshot(sessionID string) groupgate.Memberships {
	e.t.Helper()
	rec, err := e.mem.Load(e.ctx, sessionID)
	if err != nil {
		e.t.Fatalf("load session: %v", err)
	}
	return rec.Memberships
}

func (e *apiEnv) org(name string, owner groupgate.User) groupgate.Organization {
	e.t.Helper()
	o, err := e.st.CreateOrganization(e.ctx, groupgate.Organization{Name: name})
	if err != nil {
		e.t.Fatalf("create organization: %v", err)
	}
	if owner.ID != "" {
		if _, err := e.syncer.SetOrgMember(e.ctx, "test", o.ID, owner.ID, groupgate.OrgRoleAdmin); err != nil {
			e.t.Fatalf("make admin: %v", err)
		}
	}
	return o
}

func (e *apiEnv) repo(o groupgate.Organization, name string) groupgate.Repository {
	e.t.Helper()
	r, err := e.st.CreateRepository(e.ctx, groupgate.Repository{OrganizationID: o.ID, Name: name})
	if err != nil {
		e.t.Fatalf("create repository: %v", err)
	}
	return r
}

// apiResult is one plain-HTTP Connect call's outcome.
type apiResult struct {
	Status int
	Body   map[string]any
	Raw    string
}

// Code is the Connect error code, "" on success.
func (r apiResult) Code() string { s, _ := r.Body["code"].(string); return s }

func (r apiResult) Message() string { s, _ := r.Body["message"].(string); return s }

// str reads a nested string field: r.str("organization", "id").
func (r apiResult) str(path ...string) string {
	var v any = r.Body
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// post calls procedure with a JSON body exactly as curl would, with extra
// headers ("Name: value").
func (e *apiEnv) post(procedure, body string, headers ...string) apiResult {
	e.t.Helper()
	// A bare "Service/Method" is the BSR's package; groupgate's own
	// services are named in full ("groupgate.v1.AccessService/…").
	if !strings.HasPrefix(procedure, "groupgate.v1.") {
		procedure = "buf.alpha.registry.v1alpha1." + procedure
	}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/"+procedure, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", procedure, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	res := apiResult{Status: resp.StatusCode, Raw: string(raw)}
	if err := json.Unmarshal(raw, &res.Body); err != nil {
		e.t.Fatalf("POST %s: status %d, body %q is not JSON", procedure, resp.StatusCode, raw)
	}
	return res
}

// as calls procedure with a bearer token and wants success.
func (e *apiEnv) as(token, procedure, body string) apiResult {
	e.t.Helper()
	r := e.post(procedure, body, "Authorization: Bearer "+token)
	if r.Status != http.StatusOK {
		e.t.Fatalf("%s %s: status %d: %s", procedure, body, r.Status, r.Raw)
	}
	return r
}

func apiJSONBody(t testing.TB, fields map[string]any) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
