package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/web"
)

// TestLoginAndForwardAuth runs the whole browser flow against the demo
// IdPs on both session backends: login, /auth headers, /whoami, logout,
// refusals and expiry.
func TestLoginAndForwardAuth(t *testing.T) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			h := newHarness(t, harnessConfig{backend: bk})

			t.Run("alice with groups in the ID token gets her user, groups and org roles from /auth", func(t *testing.T) {
				c := h.browser()
				h.login(c, "demo", "alice", "https://bsr.example.com/acme", "https://bsr.example.com/acme")
				resp := h.auth(c)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("/auth = %s", resp.Status)
				}
				want := map[string]string{
					web.HeaderUser: "alice", web.HeaderEmail: "alice@example.com",
					web.HeaderGroups: "eng,platform-admins", web.HeaderOrgRoles: "acme=MEMBER", web.HeaderRepoRoles: "",
				}
				for k, v := range want {
					if got := resp.Header.Values(k); len(got) != 1 || got[0] != v {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
				if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control = %q", cc)
				}
			})

			t.Run("alice with groups only in UserInfo gets the same groups", func(t *testing.T) {
				c := h.browser()
				h.login(c, "demo-ui", "alice", "/whoami", "/whoami")
				resp := h.auth(c)
				if resp.StatusCode != http.StatusOK || resp.Header.Get(web.HeaderGroups) != "eng,platform-admins" ||
					resp.Header.Get(web.HeaderOrgRoles) != "acme=MEMBER" {
					t.Fatalf("/auth = %s, groups %q, org roles %q", resp.Status, resp.Header.Get(web.HeaderGroups), resp.Header.Get(web.HeaderOrgRoles))
				}
			})

			t.Run("carol without groups signs in and gets an empty groups header", func(t *testing.T) {
				c := h.browser()
				h.login(c, "demo", "carol", "/", "/")
				resp := h.auth(c)
				if resp.StatusCode != http.StatusOK || resp.Header.Get(web.HeaderUser) != "carol" {
					t.Fatalf("/auth = %s, user %q", resp.Status, resp.Header.Get(web.HeaderUser))
				}
				if got := resp.Header.Values(web.HeaderGroups); len(got) != 1 || got[0] != "" {
					t.Errorf("groups header = %q, want one empty value", got)
				}
				if got := resp.Header.Get(web.HeaderOrgRoles); got != "" {
					t.Errorf("org roles = %q, want none", got)
				}
			})

			t.Run("whoami lists groups and roles with their sources and the session expiry", func(t *testing.T) {
				c := h.browser()
				h.login(c, "demo", "bob", "/", "/")
				resp := h.get(c, h.srv.URL+"/whoami", nil)
				var got struct {
					User   string   `json:"user"`
					Email  string   `json:"email"`
					Groups []string `json:"groups"`
					Orgs   []struct {
						OrganizationName string `json:"organization_name"`
						Role             string `json:"role"`
						Sources          []struct {
							Kind, Group, Role string
						} `json:"sources"`
					} `json:"orgs"`
					SessionExpiresAt time.Time `json:"session_expires_at"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("/whoami = %s, %v", resp.Status, err)
				}
				resp.Body.Close()
				if got.User != "bob" || got.Email != "bob@example.com" || strings.Join(got.Groups, ",") != "eng" {
					t.Errorf("whoami = %+v", got)
				}
				if len(got.Orgs) != 1 || got.Orgs[0].OrganizationName != "acme" || got.Orgs[0].Role != "MEMBER" ||
					len(got.Orgs[0].Sources) != 1 || got.Orgs[0].Sources[0].Kind != "group" || got.Orgs[0].Sources[0].Group != "eng" {
					t.Errorf("whoami orgs = %+v", got.Orgs)
				}
				if want := h.clock.Now().Add(sessionTTL); got.SessionExpiresAt.Sub(want).Abs() > 2*time.Second {
					t.Errorf("session expires at %s, want about %s", got.SessionExpiresAt, want)
				}
			})

			t.Run("whoami without a session answers 401 JSON", func(t *testing.T) {
				resp := h.get(h.browser(), h.srv.URL+"/whoami", nil)
				body := readBody(t, resp)
				if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("Content-Type"), "json") ||
					!strings.Contains(body, `"unauthenticated"`) {
					t.Errorf("/whoami = %s %q", resp.Status, body)
				}
			})

			t.Run("no cookie gets 401 and redirect=1 gets a login link back to the original URL", func(t *testing.T) {
				c := h.browser()
				if resp := h.auth(c); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(web.HeaderUser) != "" {
					t.Fatalf("/auth = %s", resp.Status)
				}
				resp := h.get(c, h.srv.URL+"/auth?redirect=1", http.Header{
					"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"bsr.example.com"}, "X-Forwarded-Uri": {"/acme/api?tab=docs"},
				})
				readBody(t, resp)
				want := h.srv.URL + "/login?rd=" + url.QueryEscape("https://bsr.example.com/acme/api?tab=docs")
				if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
					t.Errorf("/auth?redirect=1 = %s Location %q, want %q", resp.Status, resp.Header.Get("Location"), want)
				}
			})

			t.Run("a tampered session cookie gets 401", func(t *testing.T) {
				c := h.browser()
				h.login(c, "demo", "alice", "/", "/")
				v := h.sessionCookie(c).Value
				flip := "A"
				if strings.HasSuffix(v, "A") {
					flip = "B"
				}
				for _, bad := range []string{v[:len(v)-1] + flip, v[:len(v)/2], "garbage"} {
					if resp := h.auth(h.withCookie(bad)); resp.StatusCode != http.StatusUnauthorized {
						t.Errorf("/auth with cookie %q… = %s", bad[:min(8, len(bad))], resp.Status)
					}
				}
				if resp := h.auth(h.withCookie(v)); resp.StatusCode != http.StatusOK {
					t.Errorf("/auth with the untouched cookie = %s", resp.Status)
				}
			})

			t.Run("logout ends the session server-side and goes to the IdP's end-session endpoint", func(t *testing.T) {
				c := h.browser()
				h.login(c, "demo", "alice", "/", "/")
				stolen := h.sessionCookie(c).Value
				// The sign-out button's same-origin POST; a GET only confirms.
				resp, _ := post(t, c, h.srv.URL+"/logout", map[string]string{"Sec-Fetch-Site": "same-origin"})
				loc, err := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != http.StatusSeeOther || err != nil {
					t.Fatalf("/logout = %s Location %q", resp.Status, resp.Header.Get("Location"))
				}
				q := loc.Query()
				if !strings.HasPrefix(loc.Path, "/idp/") || q.Get("id_token_hint") == "" || q.Get("post_logout_redirect_uri") != h.srv.URL+"/logged-out" {
					t.Errorf("logout Location = %s", loc)
				}
				if resp := h.auth(h.withCookie(stolen)); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("/auth with the cookie of the ended session = %s", resp.Status)
				}
				page := h.get(c, h.srv.URL+"/logged-out", nil)
				if body := readBody(t, page); page.StatusCode != http.StatusOK || !strings.Contains(body, "signed out") {
					t.Errorf("/logged-out = %s", page.Status)
				}
			})

			t.Run("a cross-site POST to logout is refused and the session stays", func(t *testing.T) {
				c := h.browser()
				h.login(c, "demo", "alice", "/", "/")
				req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/logout", nil)
				req.Header.Set("Sec-Fetch-Site", "cross-site")
				req.Header.Set("Origin", "https://evil.example")
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				readBody(t, resp)
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("cross-site POST /logout = %s", resp.Status)
				}
				if resp := h.auth(c); resp.StatusCode != http.StatusOK {
					t.Fatalf("/auth after refused logout = %s", resp.Status)
				}
				req, _ = http.NewRequest(http.MethodPost, h.srv.URL+"/logout", nil)
				req.Header.Set("Sec-Fetch-Site", "same-origin")
				resp, err = c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				readBody(t, resp)
				if resp.StatusCode != http.StatusSeeOther {
					t.Errorf("same-origin POST /logout = %s", resp.Status)
				}
				if resp := h.auth(c); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("/auth after logout = %s", resp.Status)
				}
			})

			t.Run("a deactivated user is refused with a 403 page and no session", func(t *testing.T) {
				c := h.browser()
				h.login(c, "demo", "bob", "/", "/")
				u, err := userIDOf(h, c)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := h.syncer.DeactivateUser(context.Background(), "test", u); err != nil {
					t.Fatal(err)
				}
				if resp := h.auth(c); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("/auth after deactivation = %s", resp.Status)
				}
				c2 := h.browser()
				resp := h.signIn(c2, h.srv.URL+"/login?provider=demo", "bob", nil, nil)
				body := readBody(t, resp)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "deactivated") {
					t.Errorf("login of a deactivated user = %s\n%s", resp.Status, body)
				}
				if resp := h.auth(c2); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("/auth after a refused login = %s", resp.Status)
				}
			})

			// Last: it moves the shared clock.
			t.Run("a session past its TTL gets 401", func(t *testing.T) {
				c := h.browser()
				h.login(c, "demo", "alice", "/", "/")
				h.clock.Advance(sessionTTL - time.Minute)
				if resp := h.auth(c); resp.StatusCode != http.StatusOK {
					t.Fatalf("/auth a minute before expiry = %s", resp.Status)
				}
				h.clock.Advance(2 * time.Minute)
				if resp := h.auth(c); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("/auth a minute after expiry = %s", resp.Status)
				}
			})
		})
	}
}

// userIDOf reads the browser's session record straight from the backend.
func userIDOf(h *harness, c *http.Client) (string, error) {
	store, err := session.NewStore(h.backend, sessionSecret, session.WithTTL(sessionTTL), session.WithNow(h.clock.Now))
	if err != nil {
		return "", err
	}
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL, nil)
	req.AddCookie(h.sessionCookie(c))
	rec, err := store.Current(req)
	if err != nil {
		return "", err
	}
	return rec.UserID, nil
}

func TestCallbackRefusals(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0]})

	t.Run("a callback with another state shows a 400 page and starts no session", func(t *testing.T) {
		c := h.browser()
		edit := func(u *url.URL) {
			if strings.HasPrefix(u.Path, "/callback/") {
				q := u.Query()
				q.Set("state", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
				u.RawQuery = q.Encode()
			}
		}
		resp := h.signIn(c, h.srv.URL+"/login?provider=demo", "alice", edit, nil)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(body, "start the login again") {
			t.Errorf("callback = %s\n%s", resp.Status, body)
		}
		if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("error page lacks security headers: %v", resp.Header)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("error page set cookies %v", resp.Cookies())
		}
		if resp := h.auth(c); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/auth = %s", resp.Status)
		}
	})

	t.Run("a callback replayed after use is refused", func(t *testing.T) {
		c := h.browser()
		var callback string
		edit := func(u *url.URL) {
			if strings.HasPrefix(u.Path, "/callback/") {
				callback = u.String()
			}
		}
		resp := h.signIn(c, h.srv.URL+"/login?provider=demo", "alice", edit, nil)
		readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("first callback = %s", resp.Status)
		}
		resp = h.get(h.browser(), callback, nil)
		if body := readBody(t, resp); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("replayed callback = %s\n%s", resp.Status, body)
		}
	})

	t.Run("an ID token issued to another client is refused with 403", func(t *testing.T) {
		c := h.browser()
		// The browser is sent to authorize as other-app, and the token
		// request is relayed as other-app: groupgate receives a genuine ID
		// token of the right IdP whose audience is not groupgate.
		edit := func(u *url.URL) {
			if q := u.Query(); q.Get("client_id") == clientID {
				q.Set("client_id", otherID)
				u.RawQuery = q.Encode()
			}
		}
		h.swap.Store(true)
		defer h.swap.Store(false)
		resp := h.signIn(c, h.srv.URL+"/login?provider=demo", "alice", edit, nil)
		body := readBody(t, resp)
		// The token endpoint accepted the relayed request; the ID token's
		// audience is what groupgate refuses.
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "ID token is not valid for this login") {
			t.Errorf("callback = %s\n%s", resp.Status, body)
		}
		if resp := h.auth(c); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/auth = %s", resp.Status)
		}
	})

	t.Run("a login the IdP refuses shows a 403 page", func(t *testing.T) {
		c := h.browser()
		edit := func(u *url.URL) {
			if strings.HasPrefix(u.Path, "/callback/") {
				q := u.Query()
				q.Del("code")
				q.Set("error", "access_denied")
				u.RawQuery = q.Encode()
			}
		}
		resp := h.signIn(c, h.srv.URL+"/login?provider=demo", "alice", edit, nil)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "access_denied") {
			t.Errorf("callback = %s\n%s", resp.Status, body)
		}
		if resp := h.auth(c); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/auth = %s", resp.Status)
		}
	})

	t.Run("an IdP that cannot be reached at the callback shows a 503 page", func(t *testing.T) {
		c := h.browser()
		edit := func(u *url.URL) {
			if strings.HasPrefix(u.Path, "/callback/") {
				h.idpDown.Store(true)
			}
		}
		defer h.idpDown.Store(false)
		resp := h.signIn(c, h.srv.URL+"/login?provider=demo", "alice", edit, nil)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "cannot be reached") {
			t.Errorf("callback = %s\n%s", resp.Status, body)
		}
		if resp := h.auth(c); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/auth = %s", resp.Status)
		}
	})

	t.Run("a callback for an unknown provider is a 404 page", func(t *testing.T) {
		resp := h.get(h.browser(), h.srv.URL+"/callback/nope?state=x&code=y", nil)
		if readBody(t, resp); resp.StatusCode != http.StatusNotFound {
			t.Errorf("callback = %s", resp.Status)
		}
	})

	t.Run("the logs hold no cookie, code or token", func(t *testing.T) {
		c := h.browser()
		var code string
		edit := func(u *url.URL) {
			if strings.HasPrefix(u.Path, "/callback/") {
				code = u.Query().Get("code")
			}
		}
		resp := h.signIn(c, h.srv.URL+"/login?provider=demo", "alice", edit, nil)
		readBody(t, resp)
		h.auth(c)
		logs := h.logs.String()
		for name, secret := range map[string]string{"session cookie": h.sessionCookie(c).Value, "code": code} {
			if secret == "" || strings.Contains(logs, secret) {
				t.Errorf("logs contain the %s (or it is empty)", name)
			}
		}
		if !strings.Contains(logs, "path=/callback/demo") {
			t.Errorf("logs do not record the callback:\n%s", logs)
		}
	})
}

func TestLoginPage(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0]})
	t.Run("several providers get a picker that keeps the validated rd", func(t *testing.T) {
		resp := h.get(h.browser(), h.srv.URL+"/login?rd="+url.QueryEscape("https://bsr.example.com/x"), nil)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "provider=demo-ui&amp;rd=https%3A%2F%2Fbsr.example.com%2Fx") {
			t.Errorf("picker = %s\n%s", resp.Status, body)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Error("picker lacks a Content-Security-Policy")
		}
	})
	t.Run("the binding cookie is HttpOnly, Lax and scoped to the callback", func(t *testing.T) {
		resp := h.get(h.browser(), h.srv.URL+"/login?provider=demo", nil)
		readBody(t, resp)
		cks := resp.Cookies()
		if resp.StatusCode != http.StatusFound || len(cks) != 1 {
			t.Fatalf("/login = %s, cookies %v", resp.Status, cks)
		}
		ck := cks[0]
		if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/callback/" || ck.MaxAge <= 0 || ck.MaxAge > 600 {
			t.Errorf("binding cookie = %+v", ck)
		}
	})
	t.Run("an unknown provider is a 404 page", func(t *testing.T) {
		resp := h.get(h.browser(), h.srv.URL+"/login?provider=nope", nil)
		if readBody(t, resp); resp.StatusCode != http.StatusNotFound {
			t.Errorf("/login = %s", resp.Status)
		}
	})
	t.Run("a POST to login is not allowed", func(t *testing.T) {
		resp, err := h.browser().Post(h.srv.URL+"/login", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		if readBody(t, resp); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /login = %s", resp.Status)
		}
	})
}

// openRedirectPayloads are return URLs an attacker may try; none may lead
// a browser off our host or bsr.example.com.
var openRedirectPayloads = []string{
	"//evil.com", "///evil.com", "////evil.com", "/\\evil.com", "\\\\evil.com", "https://evil.com", "http://evil.com/",
	"HTTPS://EVIL.COM", "https:evil.com", "https:/evil.com", "//evil.com/%2F..", "/%2F%2Fevil.com", "/%252F%252Fevil.com",
	"/%5Cevil.com", "/%09/evil.com", "/\t/evil.com", "javascript:alert(1)", "JaVaScRiPt:alert(1)",
	"data:text/html,<script>alert(1)</script>", "https://bsr.example.com@evil.com", "https://evil.com#@bsr.example.com",
	"https://evil.com?@bsr.example.com", "https://bsr.example.com.evil.com/", "https://evilbsr.example.com/",
	"http://bsr.example.com:8443/", "/..//evil.com", "/%2e%2e//evil.com", "/.//evil.com", "https://bsr.еxample.com/",
	"https://bsr.example.com\\@evil.com", "//bsr.example.com@evil.com", "/x\r\nLocation: https://evil.com",
	"https://[::1]/", "http://2130706433/", "ftp://evil.com", "evil.com", " //evil.com", "%2F%2Fevil.com",
}

func TestNoOpenRedirect(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0]})
	self, _ := url.Parse(h.srv.URL)
	safe := func(t *testing.T, where, loc string) {
		t.Helper()
		u, err := url.Parse(loc)
		if err != nil {
			t.Errorf("%s: Location %q does not parse", where, loc)
			return
		}
		if strings.ContainsAny(loc, "\\\r\n\t ") {
			t.Errorf("%s: Location %q holds a character browsers repair", where, loc)
		}
		if u.Scheme == "" && u.Host == "" {
			if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
				t.Errorf("%s: Location %q is not a path on our host", where, loc)
			}
			for p := u.Path; ; {
				if strings.HasPrefix(p, "//") {
					t.Errorf("%s: Location %q decodes to a network path", where, loc)
				}
				next, err := url.PathUnescape(p)
				if err != nil || next == p {
					break
				}
				p = next
			}
			return
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || (u.Host != self.Host && u.Host != "bsr.example.com") {
			t.Errorf("%s: Location %q leaves the allowed hosts", where, loc)
		}
	}
	c := h.browser()
	for _, p := range openRedirectPayloads {
		t.Run("rd "+strings.ToValidUTF8(p, "?")+" through /login stays on allowed hosts", func(t *testing.T) {
			resp := h.signIn(c, h.srv.URL+"/login?"+url.Values{"provider": {"demo"}, "rd": {p}}.Encode(), "alice", nil,
				func(loc string) { safe(t, "login", loc) })
			readBody(t, resp)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("callback = %s", resp.Status)
			}
			safe(t, "callback", resp.Header.Get("Location"))
		})
	}
	for _, p := range openRedirectPayloads {
		if strings.ContainsAny(p, "\r\n") {
			continue // not a valid header value; the Go client refuses to send it
		}
		t.Run("original URL "+strings.ToValidUTF8(p, "?")+" through /auth?redirect=1 stays on allowed hosts", func(t *testing.T) {
			for _, hdr := range []http.Header{
				{"X-Original-Url": {p}},
				{"X-Forwarded-Host": {"evil.com"}, "X-Forwarded-Uri": {p}},
				{"X-Forwarded-Host": {p}, "X-Forwarded-Uri": {"/x"}},
			} {
				resp := h.get(h.browser(), h.srv.URL+"/auth?redirect=1", hdr)
				readBody(t, resp)
				loc := resp.Header.Get("Location")
				if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, h.srv.URL+"/login?rd=") {
					t.Fatalf("/auth?redirect=1 = %s Location %q", resp.Status, loc)
				}
				lu, _ := url.Parse(loc)
				safe(t, "rd of /auth", lu.Query().Get("rd"))
				if hdr.Get("X-Original-Url") == "" {
					continue
				}
				cb := h.signIn(h.browser(), loc+"&provider=demo", "alice", nil, func(loc string) { safe(t, "login", loc) })
				readBody(t, cb)
				if cb.StatusCode != http.StatusSeeOther {
					t.Fatalf("callback = %s", cb.Status)
				}
				safe(t, "callback", cb.Header.Get("Location"))
			}
		})
	}
}

// echoUpstream answers with the request's headers as JSON.
var echoUpstream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.RequestURI(), "headers": r.Header, "host": r.Host})
})

type echoed struct {
	Path    string      `json:"path"`
	Headers http.Header `json:"headers"`
}

func TestReverseProxy(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0], upstream: echoUpstream})

	t.Run("a browser without a session is sent to login and back to the same URL", func(t *testing.T) {
		resp := h.get(h.browser(), h.srv.URL+"/acme/api?tab=docs", nil)
		readBody(t, resp)
		want := h.srv.URL + "/login?rd=" + url.QueryEscape(h.srv.URL+"/acme/api?tab=docs")
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
			t.Errorf("GET = %s Location %q, want %q", resp.Status, resp.Header.Get("Location"), want)
		}
	})

	t.Run("a POST without a session gets 401 and never reaches the upstream", func(t *testing.T) {
		resp, err := h.browser().Post(h.srv.URL+"/acme/api", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		if body := readBody(t, resp); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "headers") {
			t.Errorf("POST = %s %q", resp.Status, body)
		}
	})

	t.Run("identity headers a client sends never reach the upstream; groupgate's do", func(t *testing.T) {
		c := h.browser()
		h.login(c, "demo", "alice", "/", "/")
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/acme/api?x=1", nil)
		req.Header.Set("X-Auth-Request-User", "mallory")
		req.Header.Set("x-auth-request-groups", "admins")
		req.Header.Set("X-Auth-Request-Org-Roles", "acme=OWNER")
		req.Header.Set("X-Auth-Request-Anything", "forged")
		req.AddCookie(&http.Cookie{Name: "app_pref", Value: "dark"})
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got echoed
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("proxied GET = %s, %v", resp.Status, err)
		}
		resp.Body.Close()
		if got.Path != "/acme/api?x=1" {
			t.Errorf("upstream path = %q", got.Path)
		}
		want := map[string]string{
			web.HeaderUser: "alice", web.HeaderEmail: "alice@example.com", web.HeaderGroups: "eng,platform-admins",
			web.HeaderOrgRoles: "acme=MEMBER", web.HeaderRepoRoles: "",
		}
		for k, v := range want {
			if vs := got.Headers.Values(k); len(vs) != 1 || vs[0] != v {
				t.Errorf("upstream %s = %q, want %q", k, vs, v)
			}
		}
		if vs := got.Headers.Values("X-Auth-Request-Anything"); len(vs) != 0 {
			t.Errorf("upstream received the forged header %q", vs)
		}
		if ck := got.Headers.Get("Cookie"); strings.Contains(ck, "_groupgate") || !strings.Contains(ck, "app_pref=dark") {
			t.Errorf("upstream Cookie = %q: want the app's cookie without the session cookie", ck)
		}
		if got.Headers.Get("X-Forwarded-For") == "" || got.Headers.Get("X-Forwarded-Host") == "" {
			t.Errorf("upstream lacks X-Forwarded-*: %v", got.Headers)
		}
	})

	t.Run("groupgate's own paths are not proxied", func(t *testing.T) {
		c := h.browser()
		h.login(c, "demo", "bob", "/", "/")
		resp := h.get(c, h.srv.URL+"/whoami", nil)
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"user": "bob"`) {
			t.Errorf("/whoami = %s %s", resp.Status, body)
		}
	})
}

// TestAuthFailsClosed stops the Redis client under a live session: /auth
// and the proxy must answer 503, never 200 or a login redirect.
func TestAuthFailsClosed(t *testing.T) {
	var client *redis.Client
	h := newHarness(t, harnessConfig{backend: backendKind{name: "closable Redis", open: func(t testing.TB, now func() time.Time) session.Backend {
		_, prefix := testenv.Redis(t) // its cleanup deletes what ours writes
		client = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t), MaxRetries: -1})
		t.Cleanup(func() { _ = client.Close() })
		b, err := session.NewRedis(client, prefix, session.WithNow(now))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}}, upstream: echoUpstream})
	c := h.browser()
	h.login(c, "demo", "alice", "/", "/")
	if resp := h.auth(c); resp.StatusCode != http.StatusOK {
		t.Fatalf("/auth before the outage = %s", resp.Status)
	}
	_ = client.Close()
	for _, path := range []string{"/auth", "/auth?redirect=1", "/acme/api", "/whoami"} {
		resp := h.get(c, h.srv.URL+path, nil)
		readBody(t, resp)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(web.HeaderUser) != "" {
			t.Errorf("%s with the session backend down = %s", path, resp.Status)
		}
	}
	resp := h.get(c, h.srv.URL+"/readyz", nil)
	if body := readBody(t, resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "sessions") {
		t.Errorf("/readyz = %s %s", resp.Status, body)
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0]})
	c := h.browser()
	h.login(c, "demo", "alice", "/", "/")
	h.auth(c)
	h.auth(h.browser())
	resp := h.get(c, h.srv.URL+"/login?provider=demo", nil)
	readBody(t, resp)
	bad := h.get(c, h.srv.URL+"/callback/demo?state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&code=x", nil)
	readBody(t, bad)

	// The metrics have a listener of their own (metrics.listen).
	rec := httptest.NewRecorder()
	h.web.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`groupgate_logins_total{outcome="success",provider="demo"} 1`,
		`groupgate_logins_total{outcome="invalid",provider="demo"} 1`,
		`groupgate_auth_requests_total{decision="allowed"} 1`,
		`groupgate_auth_requests_total{decision="denied"} 1`,
		`groupgate_auth_requests_total{decision="error"} 0`,
		`groupgate_auth_duration_seconds_count{decision="allowed"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
	if resp := h.get(c, h.srv.URL+"/healthz", nil); readBody(t, resp) != "ok\n" {
		t.Errorf("/healthz = %s", resp.Status)
	}
}

func TestNewServerRefusesMissingPieces(t *testing.T) {
	_, err := web.NewServer(web.Config{}, web.Deps{})
	if !groupgate.IsCode(err, groupgate.Invalid) {
		t.Fatalf("err = %v, want Invalid", err)
	}
	for _, want := range []string{"public URL", "session TTL", "required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestMappingChangeRacingALogin removes a mapping after the login has read
// alice's access but before her session is saved: the push of that change
// cannot reach a session that does not exist yet, so the login itself must
// catch up, or the new session would keep the removed role.
func TestMappingChangeRacingALogin(t *testing.T) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			h := newHarness(t, harnessConfig{backend: bk, afterAccountLogin: func(h *harness) {
				if _, err := h.syncer.RemoveOrgMapping(context.Background(), "test", h.acme.ID, "eng"); err != nil {
					t.Errorf("remove mapping: %v", err)
				}
			}})
			c := h.browser()
			h.login(c, "demo", "alice", "/", "/")
			resp := h.auth(c)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/auth = %s", resp.Status)
			}
			if got := resp.Header.Get(web.HeaderOrgRoles); got != "" {
				t.Fatalf("org roles %q after the eng mapping was removed during the login, want none", got)
			}
		})
	}
}
