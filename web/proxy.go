package web

import (
	"net/http"
	"net/http/httputil"
	"strings"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
)

// handleProxy serves every path that is not groupgate's own in
// reverse-proxy mode. Signed-in callers go to the upstream with identity
// headers; a browser without a session (GET or HEAD) is sent to login and
// back to this URL; other requests get 401, since a login cannot replay
// their body. A session backend that cannot be read answers 503.
func (s *Server) handleProxy(w http.ResponseWriter, r *http.Request) {
	rec, err := s.currentSession(r)
	switch {
	case err == nil:
		if rt, ok := routeFor(s.cfg.Routes, r.URL.Path); ok {
			if ok, reason := check(rt.Require, rec.Memberships); !ok {
				s.logger.InfoContext(r.Context(), "upstream route refused", "path_prefix", rt.PathPrefix, "user_id", rec.UserID, "reason", reason)
				s.renderError(w, r, groupgate.Errorf(groupgate.Forbidden, "You do not have access to this page: it %s.", reason))
				return
			}
		}
		if s.tokens != nil {
			tok, ok := s.identityToken(r, rec)
			if !ok {
				w.Header().Set("Cache-Control", "no-store")
				http.Error(w, "identity token unavailable", http.StatusServiceUnavailable)
				return
			}
			scopeOf(r).idToken = tok
		}
		s.proxy.ServeHTTP(w, r)
	case groupgate.IsCode(err, groupgate.Unauthenticated):
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			rd, _ := OriginalURL(r, s.cfg.TrustedProxies, s.cfg.PublicURL)
			redirect(w, s.loginURL(rd), http.StatusFound)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "not signed in", http.StatusUnauthorized)
	default:
		s.logger.ErrorContext(r.Context(), "proxy cannot read the session", "error", err)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
	}
}

// newReverseProxy forwards to cfg.Upstream. Rewrite (not Director) gets an
// outbound request from which the hop-by-hop and client-sent forwarding
// headers are already removed, so nothing the client wrote about its
// address survives unless a trusted proxy wrote it.
func (s *Server) newReverseProxy() *httputil.ReverseProxy {
	upstream := s.cfg.Upstream
	return &httputil.ReverseProxy{
		Transport: s.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			// Rewrite removed the canonical spellings only; a CGI-style
			// upstream reads X_Forwarded_For as X-Forwarded-For.
			stripAddressHeaders(pr.Out.Header)
			trusted := s.cfg.TrustedProxies.Contains(forwardedPeer(pr.In))
			if trusted {
				// Keep the chain of the proxies in front of us.
				pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			}
			pr.SetURL(upstream)
			pr.SetXForwarded()
			if trusted {
				for _, h := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
					if v := forwardedSingle(pr.In, h); v != "" {
						pr.Out.Header.Set(h, v)
					}
				}
			}
			StripIdentityHeaders(pr.Out.Header)
			// X-Real-IP is the client as groupgate determined it (the same
			// address its logs and limits use), never what the client said.
			if ip := ClientIP(pr.In, s.cfg.TrustedProxies); ip.IsValid() {
				pr.Out.Header["X-Real-Ip"] = []string{ip.String()}
			}
			removeCookies(pr.Out.Header, s.isOwnCookie)
			// handleProxy only proxies requests with a loaded session.
			if rec := scopeOf(pr.In).session; rec != nil {
				identityOf(rec).Set(pr.Out.Header)
			}
			if tok := scopeOf(pr.In).idToken; tok != "" {
				pr.Out.Header[HeaderJWT] = []string{tok}
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.logger.WarnContext(r.Context(), "upstream request failed", "error", err)
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "upstream unavailable", http.StatusBadGateway)
		},
	}
}

// stripAddressHeaders removes every header a client sent that an upstream
// could read as X-Real-IP, Forwarded or X-Forwarded-*, in any spelling
// ("_" for "-", any case): groupgate sets these itself.
func stripAddressHeaders(h http.Header) {
	for name := range h {
		if headerNameIs(name, "X-Real-Ip") || headerNameIs(name, "Forwarded") || headerNameHasPrefix(name, "X-Forwarded-") {
			delete(h, name)
		}
	}
}

// samlBindingCookiePrefix starts every saml.BindingCookieName.
const samlBindingCookiePrefix = "_groupgate_saml_"

// isOwnCookie reports whether a cookie is groupgate's: the session cookie
// and the login binding cookies (OIDC and SAML). Each is a bearer
// credential for groupgate and none of the upstream's business; a binding
// cookie reaches a proxied path such as /callback/NAME/x, which is not
// groupgate's route.
func (s *Server) isOwnCookie(name string) bool {
	return name == s.deps.Sessions.CookieName() ||
		strings.HasPrefix(name, broker.DefaultCookiePrefix) || strings.HasPrefix(name, samlBindingCookiePrefix)
}

// removeCookies drops every cookie whose name drop reports from the
// Cookie header(s), keeping the others byte for byte and in order.
func removeCookies(h http.Header, drop func(name string) bool) {
	lines := h.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	var kept []string
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if n, _, _ := strings.Cut(part, "="); drop(strings.TrimSpace(n)) {
				continue
			}
			kept = append(kept, part)
		}
	}
	h.Del("Cookie")
	if len(kept) > 0 {
		h.Set("Cookie", strings.Join(kept, "; "))
	}
}
