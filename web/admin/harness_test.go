package admin_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
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
	"github.com/groupgate/groupgate/web/admin"
)

var secret = []byte("0123456789abcdef0123456789abcdef-admin-tests")

// storeKinds are the durable stores every test runs on.
var storeKinds = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"sqlite", func(t *testing.T) store.Store {
		st, err := sqlite.Open(context.Background(), "file:"+filepath.Join(t.TempDir(), "gg.db"))
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		if err := st.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}},
	{"postgres", func(t *testing.T) store.Store {
		st, err := postgres.Open(context.Background(), testenv.Postgres(t))
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		if err := st.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}},
}

// eachStore runs fn on a fresh env of every store.
func eachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) { fn(t, newEnv(t, k.open(t), "")) })
	}
}

// env is the console on a real store, real sync and in-process sessions,
// served over HTTP. Seeded: alice (instance admin, OWNER of acme), bob
// (in eng, mapped to acme as MEMBER, and in ops), carol (no groups, OWNER
// of beta), and the repository acme/api.
type env struct {
	t       *testing.T
	ctx     context.Context
	st      store.Store
	syncer  *sync.Syncer
	backend *session.Memory
	cookies *session.Store
	srv     *httptest.Server
	users   map[string]groupgate.User
	acme    groupgate.Organization
	api     groupgate.Repository
}

// newEnv serves the console with public_url's path prefix (a front
// proxy strips it; "" for none).
func newEnv(t *testing.T, st store.Store, prefix string) *env {
	t.Helper()
	ctx := context.Background()
	backend := session.NewMemory()
	cookies, err := session.NewStore(backend, secret, session.WithTTL(time.Hour))
	if err != nil {
		t.Fatalf("session store: %v", err)
	}
	e := &env{t: t, ctx: ctx, st: st, backend: backend, cookies: cookies, users: map[string]groupgate.User{}}
	e.syncer = sync.New(st, backend)
	var h http.Handler = http.NotFoundHandler()
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	pub, _ := url.Parse(e.srv.URL + prefix)
	console, err := admin.New(admin.Config{PublicURL: pub, Admins: sync.NewAdmins([]string{"alice@example.com"}),
		CSRFKey: []byte("a key of at least thirty-two bytes for forms"), SCIMEnabled: true}, st, e.syncer, cookies, backend)
	if err != nil {
		t.Fatalf("admin.New: %v", err)
	}
	mux := http.NewServeMux()
	console.Mount(mux)
	h = mux

	e.user("alice")
	e.user("bob", "eng", "ops")
	e.user("carol")
	if e.acme, err = e.syncer.CreateOrganization(ctx, "test", "acme", e.users["alice"].ID); err != nil {
		t.Fatalf("create acme: %v", err)
	}
	if _, err = e.syncer.CreateOrganization(ctx, "test", "beta", e.users["carol"].ID); err != nil {
		t.Fatalf("create beta: %v", err)
	}
	if _, err = e.syncer.AddOrgMapping(ctx, "test", e.acme.ID, "eng", ""); err != nil {
		t.Fatalf("map eng: %v", err)
	}
	if e.api, err = e.syncer.CreateRepository(ctx, "test", groupgate.Repository{OrganizationID: e.acme.ID, Name: "api", Visibility: groupgate.VisibilityPrivate}); err != nil {
		t.Fatalf("create acme/api: %v", err)
	}
	return e
}

// user logs name in once through sync, as a verified OIDC login does.
func (e *env) user(name string, groups ...string) groupgate.User {
	e.t.Helper()
	u, _, err := e.syncer.Login(e.ctx, groupgate.Identity{Provider: "demo", Subject: name, Username: name,
		Email: name + "@example.com", EmailVerified: true, Groups: groups, GroupsPresent: true})
	if err != nil {
		e.t.Fatalf("login %s: %v", name, err)
	}
	e.users[name] = u
	return u
}

// browser is one signed-in browser: its session cookie.
type browser struct {
	e      *env
	cookie *http.Cookie
	rec    *session.Record
}

// signIn starts a session for name, as the login callback does.
func (e *env) signIn(name string) *browser {
	e.t.Helper()
	return e.signInWith(name, nil)
}

// signInWith is signIn with a change to the session record before it is
// saved (what the login kept of the IdP's answer).
func (e *env) signInWith(name string, edit func(*session.Record)) *browser {
	e.t.Helper()
	u := e.users[name]
	acc, err := e.syncer.Resolve(e.ctx, u.ID)
	if err != nil {
		e.t.Fatalf("resolve %s: %v", name, err)
	}
	rec := &session.Record{UserID: u.ID, Provider: "demo", Identity: groupgate.Identity{Provider: "demo", Subject: name, Username: name, Email: u.Email}, Memberships: acc.Memberships()}
	if edit != nil {
		edit(rec)
	}
	w := httptest.NewRecorder()
	if err := e.cookies.Start(w, httptest.NewRequest("GET", "/", nil), rec); err != nil {
		e.t.Fatalf("start session: %v", err)
	}
	cs := w.Result().Cookies()
	if len(cs) == 0 {
		e.t.Fatal("no session cookie")
	}
	return &browser{e: e, cookie: cs[0], rec: rec}
}

// page is one answer.
type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(body), location: resp.Header.Get("Location"), header: resp.Header}
}

func (b *browser) get(path string) page {
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form as a same-origin browser does: with Origin and
// Sec-Fetch-Site, and the page's CSRF token unless form sets "csrf".
func (b *browser) post(path string, form url.Values) page {
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf())
	}
	return b.postRaw(path, form, b.e.srv.URL, "same-origin")
}

func (b *browser) postRaw(path string, form url.Values, origin, site string) page {
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if site != "" {
		req.Header.Set("Sec-Fetch-Site", site)
	}
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the form token from My access, as a browser has it.
func (b *browser) csrf() string {
	b.e.t.Helper()
	p := b.get("/admin/")
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		b.e.t.Fatalf("no CSRF token on My access (status %d)", p.status)
	}
	return html.UnescapeString(m[1])
}

func (p page) has(s string) bool { return strings.Contains(html.UnescapeString(p.body), s) }
