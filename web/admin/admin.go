package admin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
	"github.com/groupgate/groupgate/web/ui"
)

//go:embed templates/*.html
var templateFiles embed.FS

// Prefix is where the console is mounted.
const Prefix = "/admin/"

// Sessions reads the browser's session from its cookie; *session.Store
// implements it.
type Sessions interface {
	// Current is Unauthenticated without a live session, Unavailable when
	// the backend cannot be read.
	Current(r *http.Request) (*session.Record, error)
}

// UserSessions lists and ends a user's live sessions; session.Backend
// implements it.
type UserSessions interface {
	ListUserSessions(ctx context.Context, userID string) ([]*session.Record, error)
	Delete(ctx context.Context, id string) error
	// DeleteUserSessions ends every session of userID and returns how
	// many live ones there were.
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
}

// Config holds the console's static settings.
type Config struct {
	// PublicURL is public_url: the SCIM base URL shown to operators is
	// built on it, and it is the origin forms may be posted from.
	PublicURL *url.URL
	// Admins are the instance admins (config admins:).
	Admins sync.Admins
	// CSRFKey signs the per-session form tokens; at least 32 bytes, the
	// same on every replica (derived from session.secret by the wiring).
	CSRFKey []byte
	// TokenLifetime is how long an API token made in the console lives
	// (api.tokens.session_max_lifetime: a browser session makes it);
	// TokenMaxPerUser bounds a user's live API tokens.
	TokenLifetime   time.Duration
	TokenMaxPerUser int
	// SCIMEnabled shows the SCIM base URL as live (scim.enabled).
	SCIMEnabled bool
}

// Option sets an optional dependency.
type Option func(*Console)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *Console) { c.log = l } }

// WithNow sets the clock (default time.Now).
func WithNow(now func() time.Time) Option { return func(c *Console) { c.now = now } }

// Console serves /admin/. It is safe for concurrent use.
type Console struct {
	cfg      Config
	st       store.Store
	syncer   *sync.Syncer
	cookies  Sessions
	sessions UserSessions
	log      *slog.Logger
	now      func() time.Time
	pages    map[string]*template.Template
	// base is public_url's path without the final slash: the prefix a
	// front proxy strips, put back on every link and redirect.
	base string
}

// New returns the console. st is read directly; every write goes through
// syncer.
func New(cfg Config, st store.Store, syncer *sync.Syncer, cookies Sessions, sessions UserSessions, opts ...Option) (*Console, error) {
	if cfg.PublicURL == nil || !cfg.PublicURL.IsAbs() {
		return nil, groupgate.Errorf(groupgate.Invalid, "admin console: public URL must be absolute")
	}
	if len(cfg.CSRFKey) < 32 {
		return nil, groupgate.Errorf(groupgate.Invalid, "admin console: CSRF key must have at least 32 bytes")
	}
	if st == nil || syncer == nil || cookies == nil || sessions == nil {
		return nil, groupgate.Errorf(groupgate.Invalid, "admin console: store, syncer and sessions are required")
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = 24 * time.Hour
	}
	if cfg.TokenMaxPerUser <= 0 {
		cfg.TokenMaxPerUser = 100
	}
	c := &Console{cfg: cfg, st: st, syncer: syncer, cookies: cookies, sessions: sessions,
		log: slog.New(slog.DiscardHandler), now: time.Now, pages: map[string]*template.Template{}}
	for _, o := range opts {
		o(c)
	}
	c.base = strings.TrimSuffix(cfg.PublicURL.Path, "/")
	for _, name := range []string{"access", "orgs", "org", "preview", "repo", "users", "scim", "audit", "error"} {
		t, err := ui.Parse(templateFiles, funcs, "templates/base.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("admin console: %w", err)
		}
		c.pages[name] = t
	}
	return c, nil
}

// Mount registers the console's routes under /admin/.
func (c *Console) Mount(mux *http.ServeMux) {
	get := func(pattern string, h handler) { mux.Handle("GET "+pattern, c.page(h)) }
	post := func(pattern string, h handler) { mux.Handle("POST "+pattern, c.form(h)) }

	get("/admin/{$}", c.myAccess)
	post("/admin/sessions/revoke", c.revokeSession)
	post("/admin/tokens", c.createToken)
	post("/admin/tokens/revoke", c.revokeToken)

	get("/admin/orgs", c.orgs)
	post("/admin/orgs", c.createOrg)
	get("/admin/orgs/{org}", c.org)
	post("/admin/orgs/{org}/mappings/preview", c.previewOrgMapping)
	post("/admin/orgs/{org}/mappings/apply", c.applyOrgMapping)
	post("/admin/orgs/{org}/base-role", c.setBaseRole)
	post("/admin/orgs/{org}/members", c.setOrgMember)
	post("/admin/orgs/{org}/repos", c.createRepo)

	get("/admin/orgs/{org}/repos/{repo}", c.repo)
	post("/admin/orgs/{org}/repos/{repo}/mappings/preview", c.previewRepoMapping)
	post("/admin/orgs/{org}/repos/{repo}/mappings/apply", c.applyRepoMapping)
	post("/admin/orgs/{org}/repos/{repo}/contributors", c.setContributor)

	get("/admin/users", c.users)
	post("/admin/users/sessions/revoke", c.revokeUserSessions)
	get("/admin/scim", c.scim)
	post("/admin/scim/tokens", c.createSCIMToken)
	post("/admin/scim/tokens/revoke", c.revokeSCIMToken)
	get("/admin/audit", c.audit)

	mux.Handle("/admin/", c.guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		c.renderError(w, r, nil, groupgate.Errorf(groupgate.NotFound, "page not found"))
	})))
	mux.Handle("/admin", http.RedirectHandler(c.base+"/admin/", http.StatusMovedPermanently))
}

// caller is the signed-in person of one request.
type caller struct {
	User      groupgate.User
	Admin     bool // instance admin
	Access    sync.Access
	SessionID string
	CSRF      string
	// Identity is what this session's login kept of the IdP's answer
	// (the groups the filter hid among it).
	Identity groupgate.Identity
}

func (c *caller) actor() string { return sync.UserActor(c.User.ID) }

// canViewOrg: any role on the organization (the API's requireOrgRole).
func (c *caller) canViewOrg(orgID string) bool {
	return c.Admin || sync.OrgRoleRank(c.Access.OrgRole(orgID)) > 0
}

// canAdminOrg: ADMIN or OWNER (requireOrgAdmin).
func (c *caller) canAdminOrg(orgID string) bool { return c.Admin || sync.CanAdminOrg(c.Access, orgID) }

// canViewRepo: any role on the repository or its organization
// (requireRepoRole).
func (c *caller) canViewRepo(r groupgate.Repository) bool {
	return c.Admin || sync.RepoRoleRank(c.Access.RepoRole(r)) > 0 || sync.OrgRoleRank(c.Access.OrgRole(r.OrganizationID)) > 0
}

// canAdminRepo: ADMIN on the repository or its organization
// (requireRepoAdmin).
func (c *caller) canAdminRepo(r groupgate.Repository) bool {
	return c.Admin || sync.CanAdminRepo(c.Access, r)
}

// handler serves one page for an authenticated caller; it returns an
// error to be shown on the page instead.
type handler func(w http.ResponseWriter, r *http.Request, c *caller) error

// guard sets the headers of every console answer: the shared pages'
// policy (no scripts at all), no framing, no caching, no referrer.
func (c *Console) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		next.ServeHTTP(w, r)
	})
}

// page serves a GET page to a signed-in caller; others go to login and
// come back here.
func (c *Console) page(h handler) http.Handler {
	return c.guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl, err := c.authenticate(r)
		if groupgate.IsCode(err, groupgate.Unauthenticated) {
			http.Redirect(w, r, c.publicPath("/login")+"?rd="+url.QueryEscape(c.publicPath(r.URL.RequestURI())), http.StatusSeeOther)
			return
		}
		if err != nil {
			c.renderError(w, r, nil, err)
			return
		}
		if err := h(w, r, cl); err != nil {
			c.renderError(w, r, cl, err)
		}
	}))
}

// form serves a state-changing POST. Two checks, both required: the
// standard library's cross-origin protection (Sec-Fetch-Site / Origin, as
// /logout uses), and a token bound to the session in a hidden field, so
// that a request without a browser's fetch metadata (an old browser, a
// proxy that strips it) is refused too.
func (c *Console) form(h handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	_ = cop.AddTrustedOrigin(c.cfg.PublicURL.Scheme + "://" + c.cfg.PublicURL.Host)
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, nil, groupgate.Errorf(groupgate.Forbidden, "cross-site form refused"))
	}))
	return c.guard(cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl, err := c.authenticate(r)
		if err != nil {
			if groupgate.IsCode(err, groupgate.Unauthenticated) {
				err = groupgate.WrapError(groupgate.Unauthenticated, err, "your session ended: sign in again and repeat the change")
			}
			c.renderError(w, r, nil, err)
			return
		}
		if err := r.ParseForm(); err != nil {
			c.renderError(w, r, cl, groupgate.WrapError(groupgate.Invalid, err, "the form could not be read"))
			return
		}
		if !c.validCSRF(cl.SessionID, r.PostForm.Get("csrf")) {
			c.renderError(w, r, cl, groupgate.Errorf(groupgate.Forbidden,
				"the form's security token is missing or stale: reload the page and try again"))
			return
		}
		if err := h(w, r, cl); err != nil {
			c.renderError(w, r, cl, err)
		}
	})))
}

// authenticate finds the caller by their session: Unauthenticated without
// a live session or active user.
func (c *Console) authenticate(r *http.Request) (*caller, error) {
	rec, err := c.cookies.Current(r)
	if err != nil {
		return nil, err
	}
	if !c.now().Before(rec.ExpiresAt) {
		return nil, groupgate.Errorf(groupgate.Unauthenticated, "session expired")
	}
	u, err := c.st.GetUser(r.Context(), rec.UserID)
	if groupgate.IsCode(err, groupgate.NotFound) {
		return nil, groupgate.WrapError(groupgate.Unauthenticated, err, "the signed-in user no longer exists")
	}
	if err != nil {
		return nil, fmt.Errorf("load user %s: %w", rec.UserID, err)
	}
	if !u.Active {
		return nil, groupgate.Errorf(groupgate.Unauthenticated, "account deactivated")
	}
	acc, err := c.syncer.Resolve(r.Context(), u.ID)
	if err != nil {
		return nil, fmt.Errorf("resolve access of %s: %w", u.ID, err)
	}
	return &caller{User: u, Admin: c.cfg.Admins.IsAdmin(u), Access: acc, SessionID: rec.ID, CSRF: c.csrfToken(rec.ID), Identity: rec.Identity}, nil
}

// csrfToken is bound to one session: HMAC-SHA256 of its ID under the
// console's key. A new login (new session ID) makes old forms stale.
func (c *Console) csrfToken(sessionID string) string {
	m := hmac.New(sha256.New, c.cfg.CSRFKey)
	m.Write([]byte("groupgate admin form\x00"))
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) validCSRF(sessionID, got string) bool {
	if got == "" {
		return false
	}
	return hmac.Equal([]byte(got), []byte(c.csrfToken(sessionID)))
}

// publicPath is the absolute public URL of a path of groupgate's.
func (c *Console) publicPath(p string) string {
	return c.cfg.PublicURL.Scheme + "://" + c.cfg.PublicURL.Host + c.base + p
}

// view is what every page template gets.
type view struct {
	Title  string
	Base   string // public_url's path prefix, before every link
	Nav    string // the current nav entry
	Caller *caller
	Notice string
	Error  string
	Status int
	Data   any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	v.Base = c.base
	var b strings.Builder
	if err := c.pages[name].ExecuteTemplate(&b, "layout", v); err != nil {
		c.log.ErrorContext(r.Context(), "render admin page", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

var errorStatus = map[groupgate.ErrorCode]int{
	groupgate.Invalid:            http.StatusBadRequest,
	groupgate.NotFound:           http.StatusNotFound,
	groupgate.Conflict:           http.StatusConflict,
	groupgate.FailedPrecondition: http.StatusConflict,
	groupgate.Forbidden:          http.StatusForbidden,
	groupgate.Unauthenticated:    http.StatusUnauthorized,
	groupgate.ResourceExhausted:  http.StatusTooManyRequests,
	groupgate.Unavailable:        http.StatusServiceUnavailable,
}

// renderError shows err's caller-safe message in the page, with the
// status of its code; the cause goes to the log only.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, cl *caller, err error) {
	status, ok := errorStatus[groupgate.ErrorCodeOf(err)]
	if !ok {
		status = http.StatusInternalServerError
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	c.log.Log(r.Context(), level, "admin request failed", "path", r.URL.Path, "status", status, "error", err)
	c.render(w, r, status, "error", view{Title: http.StatusText(status), Caller: cl, Error: groupgate.ErrorMessageOf(err), Status: status})
}

// seeOther ends a successful form: Post/Redirect/Get, with a fixed notice
// code so that no text of the request is echoed.
func (c *Console) seeOther(w http.ResponseWriter, r *http.Request, path, done string) error {
	path = c.base + path
	if done != "" {
		path += "?done=" + url.QueryEscape(done)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
	return nil
}

// notices are the messages a redirect's done code shows.
var notices = map[string]string{
	"session-revoked":  "The session was ended.",
	"token-revoked":    "The token was revoked.",
	"org-created":      "The organization was created.",
	"mapping-add":      "The mapping was added. Members' roles changed at once.",
	"mapping-update":   "The mapping was changed. Members' roles changed at once.",
	"mapping-remove":   "The mapping was removed. Members' roles changed at once.",
	"base-role":        "The repository base role was changed.",
	"member-set":       "The member's manual role was set.",
	"member-removed":   "The member's manual role was removed.",
	"repo-created":     "The repository was created.",
	"user-signed-out":  "Every session of the user was ended.",
	"scim-revoked":     "The SCIM token was revoked. Pushes with it are refused from now on.",
	"contributor-set":  "The contributor's manual role was set.",
	"contributor-gone": "The contributor's manual role was removed.",
}

func noticeOf(r *http.Request) string { return notices[r.URL.Query().Get("done")] }
