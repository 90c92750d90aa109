package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/session"
)

// handleLogin is GET /login?rd=URL&provider=NAME. rd is validated first
// (anything unsafe becomes "/"); without a provider, one configured
// provider is used directly and several get a picker page. SAML providers
// start here exactly as OIDC ones do; /saml/NAME/login is the same start.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rd := s.deps.Redirects.Validate(q.Get("rd"))
	provider := q.Get("provider")
	if provider == "" {
		// A person who is signed in already is told so rather than sent
		// through the IdP again; naming a provider signs in anew (another
		// account), which replaces the session.
		if rec, err := s.currentSession(r); err == nil {
			s.renderSignedIn(w, r, rec, rd)
			return
		}
		switch len(s.cfg.Providers) {
		case 0:
			s.renderError(w, r, groupgate.Errorf(groupgate.FailedPrecondition, "no identity provider is configured"))
			return
		case 1:
			provider = s.cfg.Providers[0]
		default:
			s.renderPicker(w, r, rd)
			return
		}
	}
	if !slices.Contains(s.cfg.Providers, provider) {
		s.renderError(w, r, groupgate.Errorf(groupgate.NotFound, "unknown identity provider"))
		return
	}
	if s.isSAML(provider) {
		s.saml.begin(w, r, s.saml.conns[provider], rd)
		return
	}
	started, err := s.deps.Login.Begin(r.Context(), provider, rd)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	// The binding cookie only needs to come back on the callback; Lax lets
	// the IdP's top-level redirect carry it.
	http.SetCookie(w, &http.Cookie{
		Name:     started.Cookie.Name,
		Value:    started.Cookie.Value,
		Path:     s.cookiePath("/callback/"),
		Expires:  started.Cookie.Expires,
		MaxAge:   max(1, int(started.Cookie.Expires.Sub(s.now()).Seconds())),
		Secure:   s.cfg.SecureCookies,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	redirect(w, started.RedirectURL, http.StatusFound)
}

// cookiePath is p under public_url's path, as the browser sees it.
func (s *Server) cookiePath(p string) string {
	u, _ := url.Parse(s.publicPath(p))
	return u.EscapedPath()
}

func (s *Server) renderPicker(w http.ResponseWriter, r *http.Request, rd string) {
	s.renderPage(w, r, http.StatusOK, "picker", pageData{Title: "Sign in", Providers: s.providerLinks(rd)})
}

// providerLinks are the picker's links, one per provider in configuration
// order, each showing its display name and returning to rd.
func (s *Server) providerLinks(rd string) []providerLink {
	links := make([]providerLink, 0, len(s.cfg.Providers))
	for _, name := range s.cfg.Providers {
		v := url.Values{"provider": {name}, "rd": {rd}}
		display := s.cfg.DisplayNames[name]
		if display == "" {
			display = name
		}
		links = append(links, providerLink{Name: display, URL: s.publicPath("/login") + "?" + v.Encode(),
			Unavailable: !s.providerAvailable(name)})
	}
	return links
}

// renderSignedIn is /login for someone with a live session: who they are,
// a way on to rd, a way out, and the providers to sign in as someone else.
func (s *Server) renderSignedIn(w http.ResponseWriter, r *http.Request, rec *session.Record, rd string) {
	who := usernameOf(rec.Identity)
	if e := rec.Identity.Email; e != "" && e != who {
		who += " (" + e + ")"
	}
	s.renderPage(w, r, http.StatusOK, "signedin", pageData{
		Title: "Already signed in", Who: who, Continue: rd, Logout: s.publicPath("/logout"),
		Providers: s.providerLinks(rd),
	})
}

// availability is what a provider whose IdP may be out of reach tells
// (broker.Lazy, while discovery or metadata does not answer). A login
// with such a provider answers Unavailable by itself; the picker only
// marks it.
type availability interface{ Available() bool }

// connectorLookup finds a redirect provider's connector; *broker.Login
// implements it.
type connectorLookup interface {
	Connector(name string) broker.Connector
}

// providerAvailable reports whether provider can log in right now, as
// far as its connector tells; one that does not tell is available.
func (s *Server) providerAvailable(provider string) bool {
	var c any
	if s.isSAML(provider) {
		c = s.saml.conns[provider]
	} else if l, ok := s.deps.Login.(connectorLookup); ok {
		c = l.Connector(provider)
	}
	a, ok := c.(availability)
	return !ok || a.Available()
}

// handleCallback is GET /callback/NAME: finish the login with the IdP,
// then the finish step common to every protocol. Any failure shows an
// error page and starts no session.
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) {
	provider := r.PathValue("provider")
	fin := s.finisher()
	// A SAML provider answers at its ACS, never here.
	if !slices.Contains(s.cfg.Providers, provider) || s.isSAML(provider) {
		fin.fail(w, r, "unknown", groupgate.Errorf(groupgate.NotFound, "unknown identity provider"))
		return
	}
	res, err := s.deps.Login.Finish(r.Context(), provider, r)
	if err != nil {
		fin.fail(w, r, provider, err)
		return
	}
	// The attempt is consumed; its binding cookie has no further use.
	http.SetCookie(w, &http.Cookie{
		Name: res.CookieName, Value: "", Path: s.cookiePath("/callback/"), MaxAge: -1,
		Secure: s.cfg.SecureCookies, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	fin.finish(w, r, verifiedLogin{Provider: provider, Result: res})
}

// finisher is the server's finish step.
func (s *Server) finisher() loginFinisher {
	return loginFinisher{deps: s.deps, now: s.now, ttl: s.cfg.SessionTTL, logger: s.logger, logins: s.metrics.logins, render: s.renderError,
		refresh: s.refresh}
}

// verifiedLogin is a login whose IdP answer verified, whatever the
// protocol: what the finish step needs.
type verifiedLogin struct {
	Provider string
	// Result carries the identity, the ID token (the later logout's
	// id_token_hint) and the return URL.
	Result broker.Result
	// AfterStart, when set, runs once the new session is saved; the SAML
	// ACS ends there the session the browser had when it began.
	AfterStart func(ctx context.Context, sessionID string)
	// LogAttrs are added to the login's log line.
	LogAttrs []any
}

// loginFinisher is the one finish step of every login protocol (as Dex's
// finalizeLogin): identity → account sync → session → redirect. The OIDC
// callback and the SAML ACS each verify their IdP's answer through their
// broker connector and then hand it here, so what a login grants is
// decided in one place.
type loginFinisher struct {
	deps   Deps
	now    func() time.Time
	ttl    time.Duration
	logger *slog.Logger
	// logins counts outcomes per provider; nil counts nothing.
	logins *prometheus.CounterVec
	render func(w http.ResponseWriter, r *http.Request, err error)
	// refresh keeps OIDC refresh tokens (web/refresh.go); nil: none.
	refresh SessionRefresher
}

func (f loginFinisher) count(provider, outcome string) {
	if f.logins != nil {
		f.logins.WithLabelValues(provider, outcome).Inc()
	}
}

// fail counts a refused login and shows why.
func (f loginFinisher) fail(w http.ResponseWriter, r *http.Request, provider string, err error) {
	f.count(provider, string(groupgate.ErrorCodeOf(err)))
	f.render(w, r, err)
}

// finish syncs the user, starts a fresh session and sends the browser to
// the login's return URL. The account sync runs only here, after every
// protocol check passed, so a refused login stores nothing.
func (f loginFinisher) finish(w http.ResponseWriter, r *http.Request, v verifiedLogin) {
	ctx := r.Context()
	user, memberships, err := f.deps.Accounts.Login(ctx, v.Result.Identity)
	if err != nil {
		f.fail(w, r, v.Provider, err)
		return
	}
	rec := &session.Record{
		UserID:      user.ID,
		Provider:    v.Provider,
		Identity:    v.Result.Identity,
		IDToken:     v.Result.Tokens.IDToken,
		Memberships: memberships,
		ExpiresAt:   f.now().Add(f.ttl),
	}
	// A back-channel logout that names this IdP session finds it by this.
	rec.IDPSessionID = v.Result.Tokens.SessionID
	if err := f.deps.Sessions.Start(w, r, rec); err != nil {
		f.fail(w, r, v.Provider, err)
		return
	}
	if err := f.startRefresh(w, r, rec, v.Result.Tokens.RefreshToken); err != nil {
		f.fail(w, r, v.Provider, err)
		return
	}
	// A mapping change committed between Login's read and the save above
	// was pushed to the user's sessions before this one existed; a fresh
	// push, ordered after the save, brings the new session up to date.
	f.deps.Accounts.SessionStarted(ctx, user.ID)
	f.count(v.Provider, "success")
	if v.AfterStart != nil {
		v.AfterStart(ctx, rec.ID)
	}
	attrs := []any{"provider", v.Provider, "user_id", user.ID, "groups", len(memberships.Groups)}
	if id := v.Result.Identity; id.DroppedGroupCount > 0 {
		// Group names, bounded by claims, never a token or an assertion:
		// an operator whose filter hides every group sees it here first.
		attrs = append(attrs, "dropped_groups", id.DroppedGroups, "dropped_group_count", id.DroppedGroupCount)
	}
	f.logger.InfoContext(ctx, "login", append(attrs, v.LogAttrs...)...)
	// Validated at /login already; again here, since the attempt store is
	// shared state, an IdP-initiated RelayState is attacker-reachable
	// input, and this is the last step before the browser leaves.
	redirect(w, f.deps.Redirects.Validate(v.Result.ReturnTo), http.StatusSeeOther)
}

// handleLogout is GET and POST /logout. Only a POST ends the session, and
// the route's cross-origin protection refuses it unless it comes from
// groupgate's own origin: a GET (a link, an image, a cross-site redirect)
// shows a confirm page whose form posts back (issue 10, point 11). The
// POST ends the session server-side, then sends the browser to the IdP's
// end-session endpoint when it has one (OIDC RP-initiated logout, or a
// SAML LogoutRequest to the IdP's SLO endpoint), else to the signed-out
// page. IdP-initiated logout (SAML SLO) has its own endpoint.
// idpSessionForgetter is the part of *broker.Login that drops a signed-out
// session's back-channel logout index entry.
type idpSessionForgetter interface {
	ForgetIdPSession(ctx context.Context, provider, sid string)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		s.confirmLogout(w, r)
		return
	}
	rec, _ := s.currentSession(r)
	if err := s.deps.Sessions.End(w, r); err != nil {
		s.renderError(w, r, groupgate.WrapError(groupgate.Unavailable, err,
			"your session could not be ended right now; try signing out again"))
		return
	}
	target := s.SignedOutURL()
	if rec != nil {
		s.endRefresh(ctx, rec.ID)
		if f, ok := s.deps.Login.(idpSessionForgetter); ok && rec.IDPSessionID != "" {
			f.ForgetIdPSession(ctx, rec.Provider, rec.IDPSessionID)
		}
		s.logger.InfoContext(ctx, "logout", "provider", rec.Provider, "user_id", rec.UserID)
		var (
			u   string
			ok  bool
			err error
		)
		if s.isSAML(rec.Provider) {
			u, ok, err = s.saml.logoutURL(ctx, rec)
		} else {
			u, ok, err = s.deps.Login.LogoutURL(ctx, rec.Provider, rec.IDToken, target)
		}
		switch {
		case err != nil:
			// groupgate's session is gone, which is what matters; the IdP
			// session outlives it, as with an IdP without end-session.
			s.logger.WarnContext(ctx, "IdP logout URL", "provider", rec.Provider, "error", err)
		case ok:
			target = u
		}
	}
	redirect(w, target, http.StatusSeeOther)
}

// confirmLogout answers GET /logout: the confirm page while a session
// lives, the signed-out page when there is none to end.
func (s *Server) confirmLogout(w http.ResponseWriter, r *http.Request) {
	rec, err := s.currentSession(r)
	if groupgate.IsCode(err, groupgate.Unauthenticated) {
		redirect(w, s.SignedOutURL(), http.StatusSeeOther)
		return
	}
	who := ""
	if rec != nil {
		who = rec.Identity.Email
	}
	if err := writeLogoutConfirm(w, r, s.publicPath("/logout"), who); err != nil {
		s.renderError(w, r, groupgate.WrapError(groupgate.Internal, err, "cannot render the sign-out page"))
	}
}

// handleSignedOut is GET /logged-out, the post-logout landing page.
func (s *Server) handleSignedOut(w http.ResponseWriter, r *http.Request) {
	s.renderPage(w, r, http.StatusOK, "signedout", pageData{Title: "Signed out", Retry: s.publicPath("/login")})
}
