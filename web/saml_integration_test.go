package web_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/prometheus/client_golang/prometheus"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/web"
)

// get fetches target with c and returns the response with its body read.
func (h *samlHarness) get(c *http.Client, target string) (*http.Response, string) {
	h.t.Helper()
	resp, err := c.Get(target)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, readBody(h.t, resp)
}

// auth is /auth's status for browser c.
func (h *samlHarness) auth(c *http.Client) int {
	h.t.Helper()
	resp, _ := h.get(c, h.base+"/auth")
	return resp.StatusCode
}

// cookie is c's session cookie value ("" without one).
func (h *samlHarness) cookie(c *http.Client) string {
	u, _ := url.Parse(h.base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "_groupgate" {
			return ck.Value
		}
	}
	return ""
}

// holding is a fresh browser holding only the session cookie value.
func (h *samlHarness) holding(value string) *http.Client {
	c := h.browser()
	u, _ := url.Parse(h.base)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "_groupgate", Value: value, Path: "/"}})
	return c
}

// login signs user in with browser c from start (a /login or
// /saml/corp/login URL) and fails unless the ACS sends it on to want.
func (h *samlHarness) login(c *http.Client, start, user, want string) {
	h.t.Helper()
	resp := h.signIn(c, start, user)
	body := readBody(h.t, resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		h.t.Fatalf("SAML login of %s from %s: %s to %q, want 303 to %q\n%s", user, start, resp.Status, resp.Header.Get("Location"), want, body)
	}
}

// laxJar is a browser's jar as a cross-site POST sees it: the IdP's
// auto-submitted form to the ACS carries SameSite=None cookies (the
// binding cookie) but not the SameSite=Lax session cookie. Go's cookie
// jar ignores SameSite, so the test drops the session cookie itself.
type laxJar struct{ http.CookieJar }

func (j laxJar) Cookies(u *url.URL) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range j.CookieJar.Cookies(u) {
		if c.Name != "_groupgate" {
			out = append(out, c)
		}
	}
	return out
}

// crossSite is browser c making a cross-site POST: same jar, no Lax cookie.
func crossSite(c *http.Client) *http.Client {
	cc := *c
	cc.Jar = laxJar{c.Jar}
	return &cc
}

func loginCount(t *testing.T, reg *prometheus.Registry, provider, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "groupgate_logins_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["provider"] == provider && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

var pickerLink = regexp.MustCompile(`<a class="button[^"]*" href="([^"]+)">([^<]+)</a>`)

func TestSAMLAtLogin(t *testing.T) {
	rd := "https://bsr.example.com/acme"
	idpSSO := func(h *samlHarness) string { return h.base + "/saml-idp/sso?" }

	t.Run("a SAML-only deployment with one provider goes from /login straight to the IdP and back to rd", func(t *testing.T) {
		h := newSAMLHarness(t, nil)
		c := h.browser()
		resp, _ := h.get(c, h.base+"/login?rd="+url.QueryEscape(rd))
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), idpSSO(h)) {
			t.Fatalf("/login = %s to %q, want 302 to the IdP's SSO endpoint", resp.Status, resp.Header.Get("Location"))
		}
		h.login(c, h.base+"/login?rd="+url.QueryEscape(rd), "alice", rd)
		if st := h.auth(c); st != http.StatusOK {
			t.Fatalf("/auth after the login = %d", st)
		}
	})

	t.Run("/login?provider=NAME starts a SAML login next to an OIDC provider, and an unsafe rd falls back to /", func(t *testing.T) {
		h := newSAMLHarnessWith(t, samlOptions{providers: []string{"demo", "corp"}})
		h.login(h.browser(), h.base+"/login?"+url.Values{"provider": {"corp"}, "rd": {rd}}.Encode(), "bob", rd)
		h.login(h.browser(), h.base+"/login?"+url.Values{"provider": {"corp"}, "rd": {"//evil.example.net/"}}.Encode(), "bob", "/")
	})

	for _, order := range [][]string{{"corp", "demo"}, {"demo", "corp"}} {
		t.Run(fmt.Sprintf("the picker lists OIDC and SAML providers in configured order %v, and each link starts its protocol", order), func(t *testing.T) {
			h := newSAMLHarnessWith(t, samlOptions{providers: order})
			resp, body := h.get(h.browser(), h.base+"/login?rd="+url.QueryEscape(rd))
			links := pickerLink.FindAllStringSubmatch(body, -1)
			if resp.StatusCode != http.StatusOK || len(links) != 2 || links[0][2] != order[0] || links[1][2] != order[1] {
				t.Fatalf("picker = %d with links %v, want %v", resp.StatusCode, links, order)
			}
			for _, l := range links {
				target := strings.ReplaceAll(l[1], "&amp;", "&")
				resp, _ := h.get(h.browser(), target)
				loc := resp.Header.Get("Location")
				want := h.base + "/idp/"
				if l[2] == "corp" {
					want = idpSSO(h)
				}
				if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, want) {
					t.Fatalf("link %s (%s) = %s to %q, want 302 to %s…", l[2], target, resp.Status, loc, want)
				}
			}
			// The SAML link's login goes through to rd.
			for _, l := range links {
				if l[2] == "corp" {
					h.login(h.browser(), strings.ReplaceAll(l[1], "&amp;", "&"), "alice", rd)
				}
			}
		})
	}

	t.Run("the OIDC callback path of a SAML provider is not found", func(t *testing.T) {
		h := newSAMLHarness(t, nil)
		resp, _ := h.get(h.browser(), h.base+"/callback/corp?state=x&code=y")
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("/callback/corp = %d", resp.StatusCode)
		}
	})
}

func TestNewServerChecksSAMLProviders(t *testing.T) {
	h := newSAMLHarness(t, nil)
	pub, _ := url.Parse(h.base)
	policy, _ := web.NewRedirectPolicy(pub, nil)
	sessions, err := session.NewStore(h.backend, []byte("0123456789abcdef0123456789abcdef-saml-tests"))
	if err != nil {
		t.Fatal(err)
	}
	login, _ := broker.NewLogin(h.backend, nil)
	deps := web.Deps{Login: login, Sessions: sessions, Accounts: nopAccounts{}, Redirects: policy, SessionBackend: h.backend, Users: h.store}
	conn := h.conn

	tests := []struct {
		name      string
		providers []string
		want      string
	}{
		{"a SAML provider missing from the provider list is refused", []string{"other"}, "SAML provider corp is not in the provider list"},
		{"a provider listed twice is refused", []string{"corp", "corp"}, "provider corp is listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, err := web.NewSAMLEndpoints(web.SAMLConfig{PublicURL: pub, SessionTTL: time.Hour}, deps, []web.SAMLConnector{conn})
			if err != nil {
				t.Fatal(err)
			}
			_, err = web.NewServer(web.Config{PublicURL: pub, Providers: tt.providers, SessionTTL: time.Hour}, deps, web.WithSAML(ep))
			if !groupgate.IsCode(err, groupgate.Invalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewServer = %v, want Invalid saying %q", err, tt.want)
			}
		})
	}
	t.Run("SAML endpoints without a session backend or user lookup are refused", func(t *testing.T) {
		d := deps
		d.SessionBackend, d.Users = nil, nil
		if _, err := web.NewSAMLEndpoints(web.SAMLConfig{PublicURL: pub, SessionTTL: time.Hour}, d, []web.SAMLConnector{conn}); !groupgate.IsCode(err, groupgate.Invalid) {
			t.Fatalf("NewSAMLEndpoints = %v, want Invalid", err)
		}
	})
}

// nopAccounts is never called: NewServer only checks that it is there.
type nopAccounts struct{ web.AccountSyncer }

func TestSAMLLoginMetrics(t *testing.T) {
	h := newSAMLHarness(t, nil)
	h.login(h.browser(), h.urls.Login, "alice", "/")
	h.login(h.browser(), h.base+"/login", "bob", "/")
	resp := h.signIn(h.browser(), h.urls.Login, "carol")
	readBody(t, resp)
	// The same response again: a replay.
	replay, err := h.browser().PostForm(h.urls.ACS, url.Values{"SAMLResponse": {h.posted}})
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, replay)
	unknown, err := h.browser().PostForm(h.base+"/saml/nope/acs", url.Values{"SAMLResponse": {h.posted}})
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, unknown)

	tests := []struct {
		name              string
		provider, outcome string
		want              float64
	}{
		{"successful SAML logins count as success for their provider", "corp", "success", 2},
		{"a login refused for missing groups counts as forbidden", "corp", string(groupgate.Forbidden), 1},
		{"a replayed response counts as invalid", "corp", string(groupgate.Invalid), 1},
		{"a post to an unknown provider counts under unknown, never under the name in the URL", "unknown", string(groupgate.NotFound), 1},
		{"no series is made from the unknown name", "nope", string(groupgate.NotFound), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := loginCount(t, h.reg, tt.provider, tt.outcome); got != tt.want {
				t.Fatalf("logins_total{provider=%q,outcome=%q} = %v, want %v", tt.provider, tt.outcome, got, tt.want)
			}
		})
	}
}

func TestSAMLReloginEndsThePreviousSession(t *testing.T) {
	on, off := true, false
	for _, bind := range []*bool{&off, &on} {
		t.Run(fmt.Sprintf("with browser binding %v, the ACS POST without the Lax cookie still ends the session it replaces", *bind), func(t *testing.T) {
			h := newSAMLHarnessBound(t, nil, bind)
			c := h.browser()
			h.login(c, h.urls.Login, "alice", "/")
			first := h.cookie(c)

			// The second login starts with the session cookie (a top-level
			// GET) but its ACS POST arrives cross-site without it. It names
			// its provider: a bare /login with a session shows "already
			// signed in" instead.
			resp := h.signInPostingFrom(c, crossSite(c), h.urls.Login, "bob")
			readBody(t, resp)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("second login = %s", resp.Status)
			}
			second := h.cookie(c)
			if second == "" || second == first {
				t.Fatal("the second login set no new session cookie")
			}
			if st := h.auth(h.holding(first)); st != http.StatusUnauthorized {
				t.Fatalf("/auth with the replaced session = %d, want 401", st)
			}
			if st := h.auth(h.holding(second)); st != http.StatusOK {
				t.Fatalf("/auth with the new session = %d, want 200", st)
			}
		})
	}

	t.Run("a refused re-login leaves the existing session alone", func(t *testing.T) {
		h := newSAMLHarness(t, nil)
		c := h.browser()
		h.login(c, h.urls.Login, "alice", "/")
		first := h.cookie(c)
		resp := h.signInPostingFrom(c, crossSite(c), h.urls.Login, "carol")
		readBody(t, resp)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("carol's login = %s", resp.Status)
		}
		if st := h.auth(h.holding(first)); st != http.StatusOK {
			t.Fatalf("/auth with alice's session after carol's refusal = %d, want 200", st)
		}
	})

	t.Run("another browser's login does not end this browser's session", func(t *testing.T) {
		h := newSAMLHarness(t, nil)
		a, b := h.browser(), h.browser()
		h.login(a, h.urls.Login, "alice", "/")
		h.login(b, h.urls.Login, "alice", "/")
		if h.auth(a) != http.StatusOK || h.auth(b) != http.StatusOK {
			t.Fatal("two browsers' sessions do not both live")
		}
	})
}

func TestSAMLLogout(t *testing.T) {
	t.Run("/logout of a SAML session ends it here, then goes through the IdP's SLO endpoint to the signed-out page", func(t *testing.T) {
		h := newSAMLHarnessWith(t, samlOptions{slo: true})
		c := h.browser()
		h.login(c, h.base+"/login", "alice", "/")
		sess := h.cookie(c)

		resp, _ := post(t, c, h.base+"/logout", map[string]string{"Sec-Fetch-Site": "same-origin"})
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, h.base+"/saml-idp-slo?SAMLRequest=") || !strings.Contains(loc, "&Signature=") {
			t.Fatalf("/logout = %s to %q, want 303 to the IdP's SLO endpoint with a signed request", resp.Status, loc)
		}
		// Ended before the browser leaves: the IdP leg may never finish.
		if st := h.auth(h.holding(sess)); st != http.StatusUnauthorized {
			t.Fatalf("/auth with the old session before the IdP leg = %d", st)
		}
		resp, _ = h.get(c, loc)
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), h.urls.SLO+"?SAMLResponse=") {
			t.Fatalf("IdP SLO = %s to %q (signature not verified?)", resp.Status, resp.Header.Get("Location"))
		}
		h.sloMu.Lock()
		reqs := append([]string(nil), h.sloRequests...)
		h.sloMu.Unlock()
		if len(reqs) != 1 || !strings.Contains(reqs[0], ">u-alice</") || !strings.Contains(reqs[0], h.urls.EntityID) {
			t.Fatalf("the IdP received %q, want one LogoutRequest for u-alice from %s", reqs, h.urls.EntityID)
		}
		resp, _ = h.get(c, resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != h.base+"/logged-out" {
			t.Fatalf("SP SLO with the LogoutResponse = %s to %q", resp.Status, resp.Header.Get("Location"))
		}
		if resp, body := h.get(c, h.base+"/logged-out"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Signed out") {
			t.Fatalf("signed-out page = %s", resp.Status)
		}
	})

	t.Run("/logout of a SAML session at an IdP without SLO goes to the signed-out page", func(t *testing.T) {
		h := newSAMLHarness(t, nil)
		c := h.browser()
		h.login(c, h.base+"/login", "alice", "/")
		sess := h.cookie(c)
		resp, _ := post(t, c, h.base+"/logout", map[string]string{"Sec-Fetch-Site": "same-origin"})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != h.base+"/logged-out" {
			t.Fatalf("/logout = %s to %q", resp.Status, resp.Header.Get("Location"))
		}
		if st := h.auth(h.holding(sess)); st != http.StatusUnauthorized {
			t.Fatalf("/auth with the ended session = %d", st)
		}
	})

	t.Run("an OIDC session next to SAML providers keeps RP-initiated logout", func(t *testing.T) {
		h := newSAMLHarnessWith(t, samlOptions{slo: true, providers: []string{"corp", "demo"}})
		c := h.browser()
		(&harness{t: t, srv: h.srv}).login(c, "demo", "alice", "/", "/")
		sess := h.cookie(c)
		resp, _ := post(t, c, h.base+"/logout", map[string]string{"Sec-Fetch-Site": "same-origin"})
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, h.base+"/idp/") || !strings.Contains(loc, "id_token_hint=") {
			t.Fatalf("/logout = %s to %q, want the OIDC end-session endpoint", resp.Status, loc)
		}
		if st := h.auth(h.holding(sess)); st != http.StatusUnauthorized {
			t.Fatalf("/auth with the ended session = %d", st)
		}
	})
}

// idpKey is the demo IdP's key pair, for forging its logout requests.
func idpKey(h *samlHarness) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{h.idp.Certificate().Raw}, PrivateKey: h.idp.Signer()}
}

// logoutRequest is an IdP-initiated LogoutRequest for nameID.
func logoutRequest(h *samlHarness, nameID string) *etree.Element {
	r := etree.NewElement("samlp:LogoutRequest")
	r.CreateAttr("xmlns:samlp", "urn:oasis:names:tc:SAML:2.0:protocol")
	r.CreateAttr("xmlns:saml", "urn:oasis:names:tc:SAML:2.0:assertion")
	r.CreateAttr("ID", "_lr"+base64.RawURLEncoding.EncodeToString(randomBytes(12)))
	r.CreateAttr("Version", "2.0")
	r.CreateAttr("IssueInstant", time.Now().UTC().Format("2006-01-02T15:04:05Z"))
	r.CreateAttr("Destination", h.urls.SLO)
	r.CreateElement("saml:Issuer").SetText(h.idp.MetadataURL())
	r.CreateElement("saml:NameID").SetText(nameID)
	r.CreateElement("samlp:SessionIndex").SetText("idx-1")
	return r
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func xmlBytes(t *testing.T, el *etree.Element) []byte {
	t.Helper()
	d := etree.NewDocument()
	d.SetRoot(el)
	b, err := d.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postSigned is el with an enveloped XML signature by key (HTTP-POST
// binding), base64 as the form carries it.
func postSigned(t *testing.T, key tls.Certificate, el *etree.Element) string {
	t.Helper()
	ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(key))
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(xmlBytes(t, signed))
}

// redirectQuery encodes el for the HTTP-Redirect binding and signs the
// query with key (SAML bindings §3.4.4.1); a nil key leaves it unsigned.
func redirectQuery(t *testing.T, key crypto.Signer, el *etree.Element, relayState string) string {
	t.Helper()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	_, _ = fw.Write(xmlBytes(t, el))
	_ = fw.Close()
	q := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	if key == nil {
		return q
	}
	q += "&SigAlg=" + url.QueryEscape(dsig.RSASHA256SignatureMethod)
	digest := sha256.Sum256([]byte(q))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return q + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
}

// sloWorld is a harness with alice signed in at corp in two browsers, bob
// in a third, and a session of alice's from another provider.
type sloWorld struct {
	h            *samlHarness
	alice1       *http.Client
	alice2       *http.Client
	bob          *http.Client
	aliceOther   string
	aliceID      string
	aliceSession string
}

func newSLOWorld(t *testing.T, o samlOptions) *sloWorld {
	t.Helper()
	h := newSAMLHarnessWith(t, o)
	w := &sloWorld{h: h, alice1: h.browser(), alice2: h.browser(), bob: h.browser()}
	h.login(w.alice1, h.urls.Login, "alice", "/")
	h.login(w.alice2, h.urls.Login, "alice", "/")
	h.login(w.bob, h.urls.Login, "bob", "/")
	w.aliceSession = h.cookie(w.alice1)
	ctx := context.Background()
	u, err := h.store.GetUserByIdentity(ctx, "corp", "u-alice")
	if err != nil {
		t.Fatal(err)
	}
	w.aliceID = u.ID
	id, err := session.NewID(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec := &session.Record{ID: id, UserID: u.ID, Provider: "other", Identity: groupgate.Identity{Provider: "other", Subject: "u-alice"},
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := h.backend.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	w.aliceOther = id
	return w
}

// check fails unless alice's corp sessions are live == aliceLive, and bob's
// session and alice's session from the other provider are live.
func (w *sloWorld) check(t *testing.T, aliceLive bool) {
	t.Helper()
	want := http.StatusUnauthorized
	if aliceLive {
		want = http.StatusOK
	}
	for i, c := range []*http.Client{w.h.holding(w.aliceSession), w.alice2} {
		if st := w.h.auth(c); st != want {
			t.Errorf("/auth for alice's corp session %d = %d, want %d", i+1, st, want)
		}
	}
	if st := w.h.auth(w.bob); st != http.StatusOK {
		t.Errorf("/auth for bob = %d, want 200", st)
	}
	if _, err := w.h.backend.Load(context.Background(), w.aliceOther); err != nil {
		t.Errorf("alice's session from another provider: %v, want it live", err)
	}
}

func TestSAMLIdPInitiatedLogout(t *testing.T) {
	t.Run("a signed POST-binding LogoutRequest, arriving without any cookie, ends the subject's sessions from that provider only", func(t *testing.T) {
		w := newSLOWorld(t, samlOptions{})
		h := w.h
		resp, err := h.browser().PostForm(h.urls.SLO, url.Values{"SAMLRequest": {postSigned(t, idpKey(h), logoutRequest(h, "u-alice"))}})
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != h.base+"/logged-out" {
			t.Fatalf("SLO = %s to %q: %s", resp.Status, resp.Header.Get("Location"), body)
		}
		w.check(t, false)
	})

	t.Run("with an SLO endpoint at the IdP, the browser returns there with a signed LogoutResponse", func(t *testing.T) {
		w := newSLOWorld(t, samlOptions{slo: true})
		h := w.h
		resp, err := crossSite(w.alice1).PostForm(h.urls.SLO, url.Values{"SAMLRequest": {postSigned(t, idpKey(h), logoutRequest(h, "u-alice"))}, "RelayState": {"idp-state"}})
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, h.base+"/saml-idp-slo?SAMLResponse=") ||
			!strings.Contains(loc, "RelayState=idp-state") || !strings.Contains(loc, "&Signature=") {
			t.Fatalf("SLO = %s to %q", resp.Status, loc)
		}
		w.check(t, false)
	})

	t.Run("a LogoutRequest for a subject never seen here ends nothing", func(t *testing.T) {
		w := newSLOWorld(t, samlOptions{})
		resp, err := w.h.browser().PostForm(w.h.urls.SLO, url.Values{"SAMLRequest": {postSigned(t, idpKey(w.h), logoutRequest(w.h, "u-nobody"))}})
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("SLO = %s", resp.Status)
		}
		w.check(t, true)
	})

	other := samlKeyPair(t)
	refused := []struct {
		name  string
		query func(h *samlHarness) string
		post  func(h *samlHarness) url.Values
	}{
		{name: "a POST LogoutRequest signed by another key", post: func(h *samlHarness) url.Values {
			return url.Values{"SAMLRequest": {postSigned(t, other, logoutRequest(h, "u-alice"))}}
		}},
		{name: "a POST LogoutRequest altered after signing", post: func(h *samlHarness) url.Values {
			raw, _ := base64.StdEncoding.DecodeString(postSigned(t, idpKey(h), logoutRequest(h, "u-bob")))
			return url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(bytes.Replace(raw, []byte(">u-bob<"), []byte(">u-alice<"), 1))}}
		}},
		{name: "an unsigned Redirect-binding LogoutRequest", query: func(h *samlHarness) string {
			return redirectQuery(t, nil, logoutRequest(h, "u-alice"), "")
		}},
		{name: "a Redirect-binding LogoutRequest signed by another key", query: func(h *samlHarness) string {
			return redirectQuery(t, other.PrivateKey.(crypto.Signer), logoutRequest(h, "u-alice"), "")
		}},
		{name: "a Redirect-binding LogoutRequest whose RelayState was changed after signing", query: func(h *samlHarness) string {
			q := redirectQuery(t, h.idp.Signer(), logoutRequest(h, "u-alice"), "state-a")
			return strings.Replace(q, "RelayState=state-a", "RelayState=state-b", 1)
		}},
		{name: "a Redirect-binding LogoutRequest whose message was swapped after signing", query: func(h *samlHarness) string {
			signed := redirectQuery(t, h.idp.Signer(), logoutRequest(h, "u-bob"), "")
			swapped := redirectQuery(t, nil, logoutRequest(h, "u-alice"), "")
			_, sigPart, _ := strings.Cut(signed, "&SigAlg=")
			return swapped + "&SigAlg=" + sigPart
		}},
		{name: "a Redirect-binding LogoutRequest with a parameter given twice", query: func(h *samlHarness) string {
			return redirectQuery(t, h.idp.Signer(), logoutRequest(h, "u-alice"), "") + "&SAMLRequest=x"
		}},
	}
	for _, tt := range refused {
		t.Run(tt.name+" is refused with 403 and ends nothing", func(t *testing.T) {
			w := newSLOWorld(t, samlOptions{})
			var (
				resp *http.Response
				err  error
			)
			if tt.post != nil {
				resp, err = w.h.browser().PostForm(w.h.urls.SLO, tt.post(w.h))
			} else {
				resp, err = w.alice1.Get(w.h.urls.SLO + "?" + tt.query(w.h))
			}
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("SLO = %s: %s", resp.Status, body)
			}
			w.check(t, true)
		})
	}

	t.Run("a signed Redirect-binding LogoutRequest ends the subject's sessions and expires this browser's cookie", func(t *testing.T) {
		w := newSLOWorld(t, samlOptions{})
		h := w.h
		resp, err := w.alice1.Get(h.urls.SLO + "?" + redirectQuery(t, h.idp.Signer(), logoutRequest(h, "u-alice"), "state-a"))
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("SLO = %s: %s", resp.Status, body)
		}
		if h.cookie(w.alice1) != "" {
			t.Error("the browser's session cookie was not expired")
		}
		w.check(t, false)
	})

	t.Run("the same signed LogoutRequest is accepted once", func(t *testing.T) {
		w := newSLOWorld(t, samlOptions{})
		h := w.h
		q := redirectQuery(t, h.idp.Signer(), logoutRequest(h, "u-alice"), "")
		for i, want := range []int{http.StatusSeeOther, http.StatusBadRequest} {
			resp, err := h.browser().Get(h.urls.SLO + "?" + q)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if resp.StatusCode != want {
				t.Fatalf("attempt %d = %s, want %d", i+1, resp.Status, want)
			}
		}
	})
}
