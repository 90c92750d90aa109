package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/saml"
	"github.com/groupgate/groupgate/session"
)

// SAMLConnector is what the SAML endpoints need of one SAML provider: a
// broker.SAMLConnector for logins, its metadata and Single Logout;
// *saml.Connector implements it.
type SAMLConnector interface {
	// Begin and HandleResponse log in (see broker.SAMLConnector).
	broker.SAMLConnector
	Metadata() ([]byte, error)
	// LogoutURL is the IdP's SLO URL with a LogoutRequest; ok false when
	// the IdP has none.
	LogoutURL(ctx context.Context, nameID, sessionIndex, relayState string) (string, bool, error)
	// HandleLogoutRequest verifies an incoming, signed LogoutRequest
	// (Redirect binding for a GET, POST binding for a POST) and reads it
	// from exactly what it verified; each is accepted once.
	HandleLogoutRequest(ctx context.Context, r *http.Request) (saml.LogoutRequest, error)
	LogoutResponseURL(inResponseTo, relayState string) (string, bool, error)
}

// SessionBackend reaches sessions and short-lived values by key, without
// the browser's cookie; session.Backend implements it.
type SessionBackend interface {
	// Delete ends the session id; an absent one is not an error.
	Delete(ctx context.Context, id string) error
	// ListUserSessions returns the live sessions of userID.
	ListUserSessions(ctx context.Context, userID string) ([]*session.Record, error)
	// PutAttempt and TakeAttempt keep a value for a while and hand it out
	// once (NotFound when absent, taken or expired).
	PutAttempt(ctx context.Context, key string, value []byte, ttl time.Duration) error
	TakeAttempt(ctx context.Context, key string) ([]byte, error)
}

// UserLookup finds users by linked identity; store.UserStore implements
// it.
type UserLookup interface {
	// GetUserByIdentity is NotFound when no user is linked to provider's
	// subject.
	GetUserByIdentity(ctx context.Context, provider, subject string) (groupgate.User, error)
}

// SAMLConfig holds the static settings of the SAML endpoints.
type SAMLConfig struct {
	// PublicURL is public_url, as in Config.
	PublicURL  *url.URL
	SessionTTL time.Duration
	// BindBrowser sets a SameSite=None; Secure cookie that the ACS then
	// requires (login-CSRF protection across the IdP's cross-site POST).
	// It needs HTTPS (or a browser that treats the host as a secure
	// context); without it the attempt is found by the response's
	// InResponseTo alone. Default: on when PublicURL is https.
	BindBrowser *bool
}

// SAMLEndpoints serves /saml/NAME/{login,acs,metadata,slo,logout} for the
// SAML providers; add it to the Server with WithSAML, which also lets
// /login and /logout handle SAML providers. A login ends in the same
// account sync and session start as an OIDC callback.
type SAMLEndpoints struct {
	cfg   SAMLConfig
	deps  Deps
	conns map[string]SAMLConnector
	// order is the providers' names as given, for checks that list them.
	order  []string
	bind   bool
	now    func() time.Time
	logger *slog.Logger
	// logins is the server's login counter, set by WithSAML; nil counts
	// nothing.
	logins *prometheus.CounterVec
	// csrf refuses cross-origin POSTs to /saml/NAME/logout.
	csrf *http.CrossOriginProtection
}

// SAMLOption sets an optional dependency of NewSAMLEndpoints.
type SAMLOption func(*SAMLEndpoints)

// WithSAMLLogger sets the logger (default: discard).
func WithSAMLLogger(l *slog.Logger) SAMLOption { return func(e *SAMLEndpoints) { e.logger = l } }

// WithSAMLNow sets the clock of session expiry (default time.Now).
func WithSAMLNow(now func() time.Time) SAMLOption { return func(e *SAMLEndpoints) { e.now = now } }

// NewSAMLEndpoints returns the SAML endpoints over conns. deps.Sessions,
// deps.Accounts, deps.Redirects, deps.SessionBackend and deps.Users are
// required; deps.Login is not used.
func NewSAMLEndpoints(cfg SAMLConfig, deps Deps, conns []SAMLConnector, opts ...SAMLOption) (*SAMLEndpoints, error) {
	e := &SAMLEndpoints{cfg: cfg, deps: deps, conns: map[string]SAMLConnector{}, now: time.Now, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(e)
	}
	var problems []string
	if cfg.PublicURL == nil || !cfg.PublicURL.IsAbs() || cfg.PublicURL.Host == "" {
		problems = append(problems, "public URL must be an absolute URL")
	}
	if cfg.SessionTTL <= 0 {
		problems = append(problems, "session TTL must be positive")
	}
	if deps.Sessions == nil || deps.Accounts == nil || deps.Redirects == nil || deps.SessionBackend == nil || deps.Users == nil {
		problems = append(problems, "session store, account syncer, redirect policy, session backend and user lookup are required")
	}
	for _, c := range conns {
		if _, dup := e.conns[c.Name()]; dup {
			problems = append(problems, "two SAML providers named "+c.Name())
		}
		e.conns[c.Name()] = c
		e.order = append(e.order, c.Name())
	}
	if len(problems) > 0 {
		return nil, groupgate.Errorf(groupgate.Invalid, "SAML endpoints: %s", strings.Join(problems, "; "))
	}
	e.bind = cfg.PublicURL.Scheme == "https"
	if cfg.BindBrowser != nil {
		e.bind = *cfg.BindBrowser
	}
	e.csrf = http.NewCrossOriginProtection()
	if err := e.csrf.AddTrustedOrigin(cfg.PublicURL.Scheme + "://" + cfg.PublicURL.Host); err != nil {
		e.logger.Warn("public URL is not a trusted origin for logout", "error", err)
	}
	e.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.renderError(w, r, groupgate.Errorf(groupgate.Forbidden, "cross-site sign-out request refused"))
	}))
	return e, nil
}

// SAMLURLs are the URLs of one SAML provider to register at its IdP.
type SAMLURLs struct {
	EntityID, Metadata, ACS, SLO, Login string
}

// SAMLProviderURLs returns the SP URLs of provider under publicURL; the
// entity ID is the metadata URL.
func SAMLProviderURLs(publicURL *url.URL, provider string) SAMLURLs {
	base := strings.TrimSuffix(publicURL.String(), "/") + "/saml/" + url.PathEscape(provider)
	return SAMLURLs{EntityID: base + "/metadata", Metadata: base + "/metadata", ACS: base + "/acs", SLO: base + "/slo", Login: base + "/login"}
}

// names are the SAML providers' names in the order given.
func (e *SAMLEndpoints) names() []string { return e.order }

// mount registers the SAML routes; WithSAML is the only way in, so that
// the server always knows which providers are SAML ones.
func (e *SAMLEndpoints) mount(mux *http.ServeMux) {
	page := chain(securityHeaders, limitBody(DefaultMaxBodyBytes))
	// Method-less patterns with allow(): a wrong method gets 405 here
	// instead of falling through to "/" (the application, in
	// reverse-proxy mode).
	mux.Handle("/saml/{provider}/metadata", allow(e.handleMetadata, http.MethodGet))
	mux.Handle("/saml/{provider}/login", limitBody(DefaultMaxBodyBytes)(allow(e.handleLogin, http.MethodGet)))
	mux.Handle("/saml/{provider}/acs", page(allow(e.handleACS, http.MethodPost)))
	mux.Handle("/saml/{provider}/slo", page(allow(e.handleSLO, http.MethodGet, http.MethodPost)))
	// Like /logout: a GET only confirms; the POST must be same-origin.
	mux.Handle("/saml/{provider}/logout", page(e.csrf.Handler(allow(e.handleLogout, http.MethodGet, http.MethodPost))))
}

func (e *SAMLEndpoints) conn(w http.ResponseWriter, r *http.Request) (SAMLConnector, bool) {
	c, ok := e.conns[r.PathValue("provider")]
	if !ok {
		e.renderError(w, r, groupgate.Errorf(groupgate.NotFound, "unknown identity provider"))
	}
	return c, ok
}

func (e *SAMLEndpoints) publicPath(p string) string {
	u := *e.cfg.PublicURL
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String()
}

func (e *SAMLEndpoints) handleMetadata(w http.ResponseWriter, r *http.Request) {
	c, ok := e.conn(w, r)
	if !ok {
		return
	}
	b, err := c.Metadata()
	if err != nil {
		e.renderError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(b)
}

// postForm auto-submits an AuthnRequest with the HTTP-POST binding. The
// script runs under a per-response nonce; without scripts the button
// does the same.
var postForm = template.Must(template.New("post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in…</title></head>
<body><form method="post" action="{{.URL}}" id="f">
{{range $k, $vs := .Form}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">
{{end}}{{end}}<noscript><p>Continue to your identity provider.</p></noscript><button type="submit">Continue</button>
</form><script nonce="{{.Nonce}}">document.getElementById("f").submit()</script></body></html>
`))

// handleLogin is GET /saml/NAME/login?rd=URL, the same start as
// /login?provider=NAME.
func (e *SAMLEndpoints) handleLogin(w http.ResponseWriter, r *http.Request) {
	c, ok := e.conn(w, r)
	if !ok {
		return
	}
	e.begin(w, r, c, e.deps.Redirects.Validate(r.URL.Query().Get("rd")))
}

// priorSessionKey names the record of the session a browser had when it
// began the SAML login requestID.
func priorSessionKey(provider, requestID string) string {
	return "saml-prior:" + provider + ":" + requestID
}

// begin stores the attempt, then sends the browser to the IdP (redirect,
// or an auto-posted form). rd is already validated.
//
// It also records the browser's current session under the request ID.
// The IdP answers with a cross-site POST, which never carries our
// SameSite=Lax session cookie, so at the ACS the session being replaced
// is invisible and would live on until its TTL. This top-level GET does
// carry the cookie. Keeping the ID server-side, rather than in a
// SameSite=None cookie, keeps the session ID out of a cookie that rides
// cross-site requests, and works over plain HTTP where a None cookie
// (which must be Secure) is dropped. It is consumed only by a verified
// response to this very request, so nobody else can end the session
// with it.
func (e *SAMLEndpoints) begin(w http.ResponseWriter, r *http.Request, c SAMLConnector, rd string) {
	ctx := r.Context()
	req, err := c.Begin(ctx, rd, e.bind)
	if err != nil {
		e.renderError(w, r, err)
		return
	}
	if prior, err := e.deps.Sessions.Current(r); err == nil {
		ttl := max(time.Second, req.ExpiresAt.Sub(e.now()))
		if err := e.deps.SessionBackend.PutAttempt(ctx, priorSessionKey(c.Name(), req.RequestID), []byte(prior.ID), ttl); err != nil {
			// Not worth refusing the login: the old session just lives on
			// until its TTL, as it would without this record.
			e.logger.WarnContext(ctx, "cannot record the session a SAML login replaces", "provider", c.Name(), "error", err)
		}
	}
	if req.BindingToken != "" {
		// None: the cookie must ride along the IdP's cross-site POST.
		http.SetCookie(w, &http.Cookie{
			Name: saml.BindingCookieName(req.RequestID), Value: req.BindingToken,
			Path: cookiePathOf(e.publicPath("/saml/")), Expires: req.ExpiresAt,
			MaxAge: max(1, int(req.ExpiresAt.Sub(e.now()).Seconds())),
			Secure: true, HttpOnly: true, SameSite: http.SameSiteNoneMode,
		})
	}
	if req.Binding != saml.BindingPost {
		w.Header().Set("Cache-Control", "no-store")
		redirect(w, req.RedirectURL, http.StatusFound)
		return
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	n := base64.RawStdEncoding.EncodeToString(nonce)
	var buf bytes.Buffer
	if err := postForm.Execute(&buf, map[string]any{"URL": req.PostURL, "Form": req.Form, "Nonce": n}); err != nil {
		e.renderError(w, r, groupgate.WrapError(groupgate.Internal, err, "cannot render the sign-in form"))
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+n+"'; form-action "+formOrigin(req.PostURL)+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func formOrigin(target string) string {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return "'none'"
	}
	return u.Scheme + "://" + u.Host
}

func cookiePathOf(abs string) string {
	u, _ := url.Parse(abs)
	return u.EscapedPath()
}

// handleACS is POST /saml/NAME/acs: verify the response through the
// connector, then the finish step common to every protocol (account sync,
// fresh session, the attempt's return URL). A refusal (no groups
// included) shows an error page, stores nothing and starts no session.
// Every outcome counts in the login metrics, as OIDC callbacks do.
func (e *SAMLEndpoints) handleACS(w http.ResponseWriter, r *http.Request) {
	fin := e.finisher()
	c, ok := e.conns[r.PathValue("provider")]
	if !ok {
		fin.fail(w, r, "unknown", groupgate.Errorf(groupgate.NotFound, "unknown identity provider"))
		return
	}
	if err := r.ParseForm(); err != nil {
		fin.fail(w, r, c.Name(), groupgate.WrapError(groupgate.Invalid, err, "the SAML response could not be read"))
		return
	}
	res, err := c.HandleResponse(r.Context(), broker.SAMLResponse{
		SAMLResponse: r.PostForm.Get("SAMLResponse"),
		RelayState:   r.PostForm.Get("RelayState"),
		Cookie: func(name string) (string, bool) {
			ck, err := r.Cookie(name)
			if err != nil {
				return "", false
			}
			return ck.Value, true
		},
	})
	if err != nil {
		fin.fail(w, r, c.Name(), err)
		return
	}
	e.clearBinding(w, res.RequestID)
	fin.finish(w, r, verifiedLogin{
		Provider: c.Name(),
		Result:   res.Result(),
		AfterStart: func(ctx context.Context, sessionID string) {
			e.endPriorSession(ctx, c.Name(), res.RequestID, sessionID)
		},
		LogAttrs: []any{"idp_initiated", res.IDPInitiated},
	})
}

// finisher is the finish step with the SAML endpoints' clock, session
// lifetime and logger.
func (e *SAMLEndpoints) finisher() loginFinisher {
	return loginFinisher{deps: e.deps, now: e.now, ttl: e.cfg.SessionTTL, logger: e.logger, logins: e.logins, render: e.renderError}
}

// endPriorSession ends the session the browser had when it began the
// login requestID (see begin). An IdP-initiated login answers no request
// of ours, so its predecessor cannot be found; it lives until its TTL.
func (e *SAMLEndpoints) endPriorSession(ctx context.Context, provider, requestID, current string) {
	if requestID == "" {
		return
	}
	b, err := e.deps.SessionBackend.TakeAttempt(ctx, priorSessionKey(provider, requestID))
	switch {
	case groupgate.IsCode(err, groupgate.NotFound):
		return
	case err != nil:
		e.logger.WarnContext(ctx, "cannot read the session a SAML login replaces", "provider", provider, "error", err)
		return
	case string(b) == current:
		return
	}
	if err := e.deps.SessionBackend.Delete(ctx, string(b)); err != nil {
		e.logger.WarnContext(ctx, "cannot end the session a SAML login replaced", "provider", provider, "error", err)
		return
	}
	e.logger.DebugContext(ctx, "ended the session a SAML login replaced", "provider", provider)
}

func (e *SAMLEndpoints) clearBinding(w http.ResponseWriter, requestID string) {
	if requestID == "" || !e.bind {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: saml.BindingCookieName(requestID), Value: "", Path: cookiePathOf(e.publicPath("/saml/")), MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteNoneMode,
	})
}

// handleSLO is the SP's SingleLogoutService. An IdP-initiated, signed
// LogoutRequest ends the named subject's sessions from this provider, then
// the browser goes back to the IdP with a LogoutResponse. The IdP's own
// LogoutResponse to our request lands here too and goes to the signed-out
// page.
func (e *SAMLEndpoints) handleSLO(w http.ResponseWriter, r *http.Request) {
	c, ok := e.conn(w, r)
	if !ok {
		return
	}
	// Which binding carries the message decides where to look: the query
	// of a GET (HTTP-Redirect) or the body of a POST (HTTP-POST), never
	// both; the connector reads the request itself from exactly what it
	// verifies.
	var msg url.Values
	switch r.Method {
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			e.renderError(w, r, groupgate.WrapError(groupgate.Invalid, err, "the logout message could not be read"))
			return
		}
		msg = r.PostForm
	default:
		msg = r.URL.Query()
	}
	if msg.Get("SAMLRequest") == "" {
		redirect(w, e.publicPath("/logged-out"), http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	lr, err := c.HandleLogoutRequest(ctx, r)
	if err != nil {
		e.renderError(w, r, err)
		return
	}
	// The Redirect binding is a top-level GET and carries this browser's
	// cookie: expire it too when it is the subject's session.
	if rec, err := e.deps.Sessions.Current(r); err == nil && rec.Provider == c.Name() && rec.Identity.Subject == lr.NameID {
		if err := e.deps.Sessions.End(w, r); err != nil {
			e.renderError(w, r, groupgate.WrapError(groupgate.Unavailable, err, "your session could not be ended right now"))
			return
		}
	}
	n, err := e.endSubjectSessions(ctx, c.Name(), lr.NameID)
	if err != nil {
		e.renderError(w, r, groupgate.WrapError(groupgate.Unavailable, err, "your sessions could not be ended right now; sign out again"))
		return
	}
	e.logger.InfoContext(ctx, "SAML single logout", "provider", c.Name(), "sessions", n)
	target, ok, err := c.LogoutResponseURL(lr.ID, lr.RelayState)
	if err != nil || !ok {
		target = e.publicPath("/logged-out")
	}
	redirect(w, target, http.StatusSeeOther)
}

// endSubjectSessions ends every live session that provider started for
// nameID, in any browser. A POST-binding LogoutRequest is a cross-site
// POST without our Lax cookie, so the sessions are found through the
// user linked to provider's subject.
//
// Sessions of the same user from other providers stay: this IdP can only
// speak for its own logins. Within the provider all of the subject's
// sessions end, even when the request names one SessionIndex: gosaml2
// does not parse SessionIndex and session records do not keep it, and
// ending more than asked is the safe side (SAML core §3.7.3.2 asks for
// all of the principal's sessions when no SessionIndex is given).
func (e *SAMLEndpoints) endSubjectSessions(ctx context.Context, provider, nameID string) (int, error) {
	user, err := e.deps.Users.GetUserByIdentity(ctx, provider, nameID)
	if groupgate.IsCode(err, groupgate.NotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("find the user of %s subject: %w", provider, err)
	}
	recs, err := e.deps.SessionBackend.ListUserSessions(ctx, user.ID)
	if err != nil {
		return 0, fmt.Errorf("list sessions of %s: %w", user.ID, err)
	}
	n := 0
	for _, rec := range recs {
		if rec.Provider != provider || rec.Identity.Subject != nameID {
			continue
		}
		if err := e.deps.SessionBackend.Delete(ctx, rec.ID); err != nil {
			return n, fmt.Errorf("end a session of %s: %w", user.ID, err)
		}
		n++
	}
	return n, nil
}

// logoutURL is the IdP's SLO URL with a LogoutRequest for the session rec,
// which has already ended here; ok is false when the IdP has no SLO
// endpoint. The signed-out page follows the IdP's LogoutResponse, which
// lands at /saml/NAME/slo.
func (e *SAMLEndpoints) logoutURL(ctx context.Context, rec *session.Record) (string, bool, error) {
	c, ok := e.conns[rec.Provider]
	if !ok {
		return "", false, nil
	}
	u, ok, err := c.LogoutURL(ctx, rec.Identity.Subject, "", "")
	if err != nil {
		return "", false, fmt.Errorf("SAML logout request for %s: %w", rec.Provider, err)
	}
	return u, ok, nil
}

// handleLogout is GET/POST /saml/NAME/logout, the SP-initiated logout of
// one SAML provider. As /logout: a GET shows the confirm page, and only a
// same-origin POST (the route's cross-origin protection) ends the session
// here, then sends a LogoutRequest to the IdP when it advertises SLO.
func (e *SAMLEndpoints) handleLogout(w http.ResponseWriter, r *http.Request) {
	c, ok := e.conn(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	rec, err := e.deps.Sessions.Current(r)
	if r.Method != http.MethodPost {
		if groupgate.IsCode(err, groupgate.Unauthenticated) {
			redirect(w, e.publicPath("/logged-out"), http.StatusSeeOther)
			return
		}
		who := ""
		if rec != nil {
			who = rec.Identity.Email
		}
		if err := writeLogoutConfirm(w, r, e.publicPath("/saml/"+url.PathEscape(c.Name())+"/logout"), who); err != nil {
			e.renderError(w, r, groupgate.WrapError(groupgate.Internal, err, "cannot render the sign-out page"))
		}
		return
	}
	if err := e.deps.Sessions.End(w, r); err != nil {
		e.renderError(w, r, groupgate.WrapError(groupgate.Unavailable, err, "your session could not be ended right now; try signing out again"))
		return
	}
	target := e.publicPath("/logged-out")
	if rec != nil && rec.Provider == c.Name() {
		if u, ok, err := e.logoutURL(ctx, rec); err != nil {
			e.logger.WarnContext(ctx, "SAML logout request", "provider", c.Name(), "error", err)
		} else if ok {
			target = u
		}
	}
	redirect(w, target, http.StatusSeeOther)
}

// renderError shows err on the shared error page with the browser status
// table of pages.go.
func (e *SAMLEndpoints) renderError(w http.ResponseWriter, r *http.Request, err error) {
	data := errorPage(err, e.publicPath("/login"))
	status := data.Status
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	e.logger.Log(r.Context(), level, "request failed", failureLogAttrs(r, data, err)...)
	var buf bytes.Buffer
	if err := pages["error"].ExecuteTemplate(&buf, "layout", data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
