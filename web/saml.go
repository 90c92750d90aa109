package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker/saml"
	"github.com/groupgate/groupgate/session"
)

// SAMLConnector is what the SAML endpoints need of one SAML provider;
// *saml.Connector implements it.
type SAMLConnector interface {
	Name() string
	// Begin starts an SP-initiated login (Unavailable when the attempt
	// cannot be stored).
	Begin(ctx context.Context, returnTo string, bindBrowser bool) (saml.Request, error)
	// HandleResponse verifies an ACS POST: Invalid, Unauthenticated,
	// Forbidden (no groups) or Unavailable.
	HandleResponse(ctx context.Context, in saml.Response) (saml.Result, error)
	Metadata() ([]byte, error)
	// LogoutURL is the IdP's SLO URL with a LogoutRequest; ok false when
	// the IdP has none.
	LogoutURL(ctx context.Context, nameID, sessionIndex, relayState string) (string, bool, error)
	// HandleLogoutRequest verifies an incoming, signed LogoutRequest.
	HandleLogoutRequest(ctx context.Context, form url.Values, rawQuery string) (saml.LogoutRequest, error)
	LogoutResponseURL(inResponseTo, relayState string) (string, bool, error)
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
// SAML providers; mount it on the Server with WithMount. A login ends in
// the same account sync and session start as an OIDC callback.
type SAMLEndpoints struct {
	cfg    SAMLConfig
	deps   Deps
	conns  map[string]SAMLConnector
	bind   bool
	now    func() time.Time
	logger *slog.Logger
}

// SAMLOption sets an optional dependency of NewSAMLEndpoints.
type SAMLOption func(*SAMLEndpoints)

// WithSAMLLogger sets the logger (default: discard).
func WithSAMLLogger(l *slog.Logger) SAMLOption { return func(e *SAMLEndpoints) { e.logger = l } }

// WithSAMLNow sets the clock of session expiry (default time.Now).
func WithSAMLNow(now func() time.Time) SAMLOption { return func(e *SAMLEndpoints) { e.now = now } }

// NewSAMLEndpoints returns the SAML endpoints over conns. deps.Sessions,
// deps.Accounts and deps.Redirects are required; deps.Login is not used.
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
	if deps.Sessions == nil || deps.Accounts == nil || deps.Redirects == nil {
		problems = append(problems, "session store, account syncer and redirect policy are required")
	}
	for _, c := range conns {
		if _, dup := e.conns[c.Name()]; dup {
			problems = append(problems, "two SAML providers named "+c.Name())
		}
		e.conns[c.Name()] = c
	}
	if len(problems) > 0 {
		return nil, groupgate.Errorf(groupgate.Invalid, "SAML endpoints: %s", strings.Join(problems, "; "))
	}
	e.bind = cfg.PublicURL.Scheme == "https"
	if cfg.BindBrowser != nil {
		e.bind = *cfg.BindBrowser
	}
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

// Mount registers the SAML routes.
func (e *SAMLEndpoints) Mount(mux *http.ServeMux) {
	page := chain(securityHeaders, limitBody(DefaultMaxBodyBytes))
	mux.Handle("GET /saml/{provider}/metadata", http.HandlerFunc(e.handleMetadata))
	mux.Handle("GET /saml/{provider}/login", limitBody(DefaultMaxBodyBytes)(http.HandlerFunc(e.handleLogin)))
	mux.Handle("POST /saml/{provider}/acs", page(http.HandlerFunc(e.handleACS)))
	mux.Handle("/saml/{provider}/slo", page(allow(e.handleSLO, http.MethodGet, http.MethodPost)))
	mux.Handle("/saml/{provider}/logout", page(allow(e.handleLogout, http.MethodGet, http.MethodPost)))
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

// handleLogin is GET /saml/NAME/login?rd=URL: store the attempt, then
// send the browser to the IdP (redirect, or an auto-posted form).
func (e *SAMLEndpoints) handleLogin(w http.ResponseWriter, r *http.Request) {
	c, ok := e.conn(w, r)
	if !ok {
		return
	}
	rd := e.deps.Redirects.Validate(r.URL.Query().Get("rd"))
	req, err := c.Begin(r.Context(), rd, e.bind)
	if err != nil {
		e.renderError(w, r, err)
		return
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

// handleACS is POST /saml/NAME/acs: verify the response, sync the user,
// start a fresh session and go to the attempt's return URL. A refusal
// (no groups included) shows an error page, stores nothing and starts no
// session: the account sync runs only after every check passed.
func (e *SAMLEndpoints) handleACS(w http.ResponseWriter, r *http.Request) {
	c, ok := e.conn(w, r)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		e.renderError(w, r, groupgate.WrapError(groupgate.Invalid, err, "the SAML response could not be read"))
		return
	}
	ctx := r.Context()
	res, err := c.HandleResponse(ctx, saml.Response{
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
		e.renderError(w, r, err)
		return
	}
	e.clearBinding(w, res.RequestID)
	user, memberships, err := e.deps.Accounts.Login(ctx, res.Identity)
	if err != nil {
		e.renderError(w, r, err)
		return
	}
	rec := &session.Record{
		UserID:      user.ID,
		Provider:    c.Name(),
		Identity:    res.Identity,
		Memberships: memberships,
		ExpiresAt:   e.now().Add(e.cfg.SessionTTL),
	}
	if err := e.deps.Sessions.Start(w, r, rec); err != nil {
		e.renderError(w, r, err)
		return
	}
	e.logger.InfoContext(ctx, "login", "provider", c.Name(), "user_id", user.ID, "groups", len(memberships.Groups), "idp_initiated", res.IDPInitiated)
	// An IdP-initiated RelayState is attacker-reachable input: validated
	// like any rd; an attempt's was validated at /login and is again here.
	redirect(w, e.deps.Redirects.Validate(res.ReturnTo), http.StatusSeeOther)
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

// handleSLO is the SP's SingleLogoutService: an IdP-initiated, signed
// LogoutRequest ends this browser's session when it names the session's
// subject, then the browser goes back to the IdP with a LogoutResponse.
// The IdP's own LogoutResponse to our request lands here too and goes to
// the signed-out page.
func (e *SAMLEndpoints) handleSLO(w http.ResponseWriter, r *http.Request) {
	c, ok := e.conn(w, r)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		e.renderError(w, r, groupgate.WrapError(groupgate.Invalid, err, "the logout message could not be read"))
		return
	}
	if r.Form.Get("SAMLRequest") == "" {
		redirect(w, e.publicPath("/logged-out"), http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	lr, err := c.HandleLogoutRequest(ctx, r.Form, r.URL.RawQuery)
	if err != nil {
		e.renderError(w, r, err)
		return
	}
	if rec, err := e.deps.Sessions.Current(r); err == nil && rec.Provider == c.Name() && rec.Identity.Subject == lr.NameID {
		if err := e.deps.Sessions.End(w, r); err != nil {
			e.renderError(w, r, groupgate.WrapError(groupgate.Unavailable, err, "your session could not be ended right now"))
			return
		}
		e.logger.InfoContext(ctx, "SAML single logout", "provider", c.Name(), "user_id", rec.UserID)
	}
	target, ok, err := c.LogoutResponseURL(lr.ID, r.Form.Get("RelayState"))
	if err != nil || !ok {
		target = e.publicPath("/logged-out")
	}
	redirect(w, target, http.StatusSeeOther)
}

// handleLogout is GET/POST /saml/NAME/logout: end the session here, then
// send a LogoutRequest to the IdP when it advertises SLO.
func (e *SAMLEndpoints) handleLogout(w http.ResponseWriter, r *http.Request) {
	c, ok := e.conn(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	rec, _ := e.deps.Sessions.Current(r)
	if err := e.deps.Sessions.End(w, r); err != nil {
		e.renderError(w, r, groupgate.WrapError(groupgate.Unavailable, err, "your session could not be ended right now; try signing out again"))
		return
	}
	target := e.publicPath("/logged-out")
	if rec != nil && rec.Provider == c.Name() {
		if u, ok, err := c.LogoutURL(ctx, rec.Identity.Subject, "", ""); err != nil {
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
	status := statusOf(err, pageStatus)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	e.logger.Log(r.Context(), level, "request failed", "path", r.URL.Path, "status", status, "error", err)
	data := pageData{Title: pageTitle[status], Message: groupgate.ErrorMessageOf(err), Status: status}
	if status != http.StatusNotFound {
		data.Retry = e.publicPath("/login")
	}
	var buf bytes.Buffer
	if err := pages["error"].ExecuteTemplate(&buf, "layout", data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
