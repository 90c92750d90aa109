package web

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/sync"
)

// identityOf is the caller as the proxy and upstream see it, from the
// session's record: the membership snapshot kept current by sync.
func identityOf(rec *session.Record) IdentityHeaders {
	return IdentityHeaders{User: usernameOf(rec.Identity), Email: rec.Identity.Email, Memberships: rec.Memberships}
}

// identityValues are a session's identity headers, rendered once per
// cached record (session.View.Derived) and shared by every /auth answer
// for it; the cache drops the record, and these with it, on any change to
// the session. Each value slice is capped at one element, so that an Add
// to a header reallocates rather than writes into another answer's.
type identityValues struct {
	user, email, groups, orgRoles, repoRoles []string
}

// renderIdentity is the View.Derived function of /auth.
func renderIdentity(rec *session.Record) any {
	h := make(http.Header, 5)
	identityOf(rec).Set(h)
	return &identityValues{user: h[HeaderUser], email: h[HeaderEmail], groups: h[HeaderGroups],
		orgRoles: h[HeaderOrgRoles], repoRoles: h[HeaderRepoRoles]}
}

// set puts the shared values on h.
func (v *identityValues) set(h http.Header) {
	h[HeaderUser] = v.user
	h[HeaderEmail] = v.email
	h[HeaderGroups] = v.groups
	h[HeaderOrgRoles] = v.orgRoles
	h[HeaderRepoRoles] = v.repoRoles
}

// authSeries are the metrics of one forward-auth decision, looked up once
// at start rather than by label on every request.
type authSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

func newAuthSeries(m *metrics) map[string]authSeries {
	out := make(map[string]authSeries, 3)
	for _, d := range []string{decisionAllowed, decisionDenied, decisionError} {
		out[d] = authSeries{count: m.authDecision.WithLabelValues(d), duration: m.authDuration.WithLabelValues(d)}
	}
	return out
}

// handleAuth is the forward-auth endpoint (nginx auth_request, Traefik
// forwardAuth, Caddy forward_auth). A live session answers 200 with the
// identity headers; no session answers 401, or with ?redirect=1 a 302 to
// the login that returns to the original URL. A session backend that
// cannot be read answers 503: fail closed, never 200.
func (s *Server) handleAuth(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	decision := decisionAllowed
	defer func() {
		series := s.authSeries[decision]
		series.count.Inc()
		series.duration.Observe(time.Since(start).Seconds())
	}()
	redirectAnon, req, qerr := parseAuthQuery(r.URL.RawQuery)
	if qerr != nil {
		// A proxy configured with a requirement groupgate cannot read: say
		// so on every request rather than guess.
		decision = decisionError
		writeAuthRefusal(w, http.StatusBadRequest, groupgate.ErrorMessageOf(qerr))
		return
	}
	view, err := s.currentView(r)
	switch {
	case err == nil:
		// Shared with every request of this session: read, never change.
		rec := view.Record()
		if !req.IsZero() {
			if ok, reason := check(req, rec.Memberships); !ok {
				decision = decisionDenied
				writeAuthRefusal(w, http.StatusForbidden, reason)
				return
			}
		}
		var tok string
		if s.tokens != nil {
			var ok bool
			if tok, ok = s.identityToken(r, rec); !ok {
				// Before any identity header is set: a 503 carries none.
				decision = decisionError
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		view.Derived(renderIdentity).(*identityValues).set(w.Header())
		if tok != "" {
			w.Header()[HeaderJWT] = []string{tok}
		}
		w.WriteHeader(http.StatusOK)
	case groupgate.IsCode(err, groupgate.Unauthenticated):
		decision = decisionDenied
		if redirectAnon {
			rd, _ := OriginalURL(r, s.cfg.TrustedProxies, s.cfg.PublicURL)
			redirect(w, s.loginURL(rd), http.StatusFound)
			return
		}
		w.Header().Set(HeaderReason, "not signed in")
		w.WriteHeader(http.StatusUnauthorized)
	default:
		decision = decisionError
		status := statusOf(err, apiStatus)
		if status < 500 {
			// Anything but "not signed in" is a failure to decide.
			status = http.StatusServiceUnavailable
		}
		s.logger.ErrorContext(r.Context(), "forward-auth cannot read the session", "error", err)
		w.WriteHeader(status)
	}
}

// whoami is the /whoami answer: the caller, their groups, and their
// effective roles with every source that grants them.
type whoami struct {
	User             string            `json:"user"`
	Email            string            `json:"email"`
	Name             string            `json:"name,omitempty"`
	Provider         string            `json:"provider"`
	Subject          string            `json:"subject"`
	Groups           []string          `json:"groups"`
	Orgs             []sync.OrgAccess  `json:"orgs"`
	Repos            []sync.RepoAccess `json:"repos"`
	SessionExpiresAt time.Time         `json:"session_expires_at"`
	// Sessions are the caller's live sessions, on any device, when the
	// server can list them (Deps.SessionBackend).
	Sessions []whoamiSession `json:"sessions,omitempty"`

	// DroppedGroups are groups the IdP sent at this session's login that
	// the group filter hid (at most groupgate.MaxDroppedGroups; the count
	// says how many in all): why a group may grant nothing.
	DroppedGroups     []string `json:"dropped_groups,omitempty"`
	DroppedGroupCount int      `json:"dropped_group_count,omitempty"`
}

// whoamiSession describes one live session without its ID, which is a
// bearer credential: the hint tells sessions apart (as ListSessions does).
type whoamiSession struct {
	IDHint    string    `json:"id_hint"`
	Provider  string    `json:"provider"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Current   bool      `json:"current"`
}

// handleWhoami is GET /whoami. Roles are resolved live from the store,
// with their sources, rather than read from the session's snapshot, so
// the answer explains itself.
func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	rec, err := s.currentSession(r)
	if err != nil {
		s.whoamiError(w, r, err)
		return
	}
	access, err := s.deps.Accounts.Resolve(r.Context(), rec.UserID)
	if groupgate.IsCode(err, groupgate.NotFound) {
		err = groupgate.WrapError(groupgate.Unauthenticated, err, "the signed-in user no longer exists")
	}
	if err != nil {
		s.whoamiError(w, r, err)
		return
	}
	out := whoami{
		User:             usernameOf(rec.Identity),
		Email:            rec.Identity.Email,
		Name:             rec.Identity.DisplayName,
		Provider:         rec.Provider,
		Subject:          rec.Identity.Subject,
		Groups:           access.Groups,
		Orgs:             access.Orgs,
		Repos:            access.Repos,
		SessionExpiresAt: rec.ExpiresAt.UTC(),
	}
	out.DroppedGroups, out.DroppedGroupCount = rec.Identity.DroppedGroups, rec.Identity.DroppedGroupCount
	if s.deps.SessionBackend != nil {
		recs, err := s.deps.SessionBackend.ListUserSessions(r.Context(), rec.UserID)
		if err != nil {
			s.whoamiError(w, r, err)
			return
		}
		out.Sessions = make([]whoamiSession, 0, len(recs))
		for _, o := range recs {
			out.Sessions = append(out.Sessions, whoamiSession{IDHint: session.IDHint(o.ID), Provider: o.Provider,
				CreatedAt: o.CreatedAt.UTC(), ExpiresAt: o.ExpiresAt.UTC(), Current: o.ID == rec.ID})
		}
	}
	if out.Groups == nil {
		out.Groups = []string{}
	}
	if out.Orgs == nil {
		out.Orgs = []sync.OrgAccess{}
	}
	if out.Repos == nil {
		out.Repos = []sync.RepoAccess{}
	}
	s.writeWhoami(w, r, out)
}
