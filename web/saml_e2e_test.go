package web_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/oidc"
	"github.com/groupgate/groupgate/broker/saml"
	"github.com/groupgate/groupgate/devidp"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/sqlite"
	"github.com/groupgate/groupgate/sync"
	"github.com/groupgate/groupgate/web"
)

// samlHarness is groupgate with one SAML provider, "corp", logging in
// through the embedded crewjam/saml IdP under the same httptest origin,
// optionally next to the demo OIDC provider "demo".
type samlHarness struct {
	t       *testing.T
	srv     *httptest.Server
	store   *sqlite.Store
	backend *session.Memory
	idp     *devidp.SAMLProvider
	conn    *saml.Connector
	spKey   tls.Certificate
	reg     *prometheus.Registry
	urls    web.SAMLURLs
	base    string
	// posted is the last SAMLResponse the IdP had the browser post.
	posted string
	// sloRequests are the LogoutRequests the IdP's SLO endpoint received
	// with a valid SP signature (samlOptions.slo).
	sloMu       stdsync.Mutex
	sloRequests []string
}

// samlOptions vary the SAML harness.
type samlOptions struct {
	mutate func(*saml.Config)
	// bind is SAMLConfig.BindBrowser.
	bind *bool
	// slo makes the IdP advertise an HTTP-Redirect SLO endpoint at
	// /saml-idp-slo, served by the harness (crewjam's IdP has none).
	slo bool
	// providers is Config.Providers (default: corp alone); "demo" in it
	// adds the demo OIDC provider.
	providers []string
}

func newSAMLHarness(t *testing.T, mutate func(*saml.Config)) *samlHarness {
	return newSAMLHarnessWith(t, samlOptions{mutate: mutate})
}

func newSAMLHarnessBound(t *testing.T, mutate func(*saml.Config), bind *bool) *samlHarness {
	return newSAMLHarnessWith(t, samlOptions{mutate: mutate, bind: bind})
}

func newSAMLHarnessWith(t *testing.T, o samlOptions) *samlHarness {
	t.Helper()
	ctx := context.Background()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	h := &samlHarness{t: t, srv: srv, base: srv.URL, spKey: samlKeyPair(t), reg: prometheus.NewRegistry()}
	discard := slog.New(slog.DiscardHandler)

	idp, err := devidp.NewSAML(srv.URL+"/saml-idp", devidp.SAMLConfig{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	h.idp = idp
	mux.Handle("/saml-idp/", idp)

	pub, _ := url.Parse(srv.URL)
	h.urls = web.SAMLProviderURLs(pub, "corp")
	cfg := saml.Config{
		IDPMetadataURL:    idp.MetadataURL(),
		EntityID:          h.urls.EntityID,
		ACSURL:            h.urls.ACS,
		SLOURL:            h.urls.SLO,
		KeyPair:           h.spKey,
		GroupsAttribute:   devidp.SAMLGroupsAttribute,
		EmailAttribute:    devidp.SAMLEmailAttribute,
		UsernameAttribute: devidp.SAMLUsernameAttribute,
		NameAttribute:     devidp.SAMLDisplayNameAttribute,
	}
	if o.slo {
		md, err := idp.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		slo := `<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="` + srv.URL + `/saml-idp-slo"></SingleLogoutService>`
		cfg.IDPMetadataURL, cfg.IDPMetadataXML = "", strings.Replace(string(md), "<NameIDFormat>", slo+"<NameIDFormat>", 1)
		mux.HandleFunc("/saml-idp-slo", h.serveIdPSLO)
	}
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	h.backend = session.NewMemory()
	conn, err := cfg.Open(ctx, "corp", h.backend, h.backend, saml.WithHTTPClient(srv.Client()), saml.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	h.conn = conn

	st, err := sqlite.Open(ctx, "file:"+filepath.Join(t.TempDir(), "gg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	h.store = st
	syncer := sync.New(st, h.backend)

	providers := o.providers
	if providers == nil {
		providers = []string{"corp"}
	}
	var oidcConns []broker.Connector
	if slices.Contains(providers, "demo") {
		op, err := devidp.NewOIDC(srv.URL+"/idp", devidp.OIDCConfig{Logger: discard, Clients: []devidp.OIDCClient{
			{ID: clientID, Secret: clientSecret, RedirectURIs: []string{srv.URL + "/callback/demo"}, PostLogoutRedirectURIs: []string{srv.URL + "/logged-out"}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		mux.Handle("/idp/", op)
		c, err := oidc.Config{
			Issuer: srv.URL + "/idp", ClientID: clientID, ClientSecret: clientSecret,
			Scopes: []string{"openid", "email", "profile", "groups"}, RedirectURL: srv.URL + "/callback/demo",
		}.Open(ctx, "demo", discard, oidc.WithHTTPClient(srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		oidcConns = append(oidcConns, c)
	}
	login, err := broker.NewLogin(h.backend, oidcConns, broker.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewStore(h.backend, []byte("0123456789abcdef0123456789abcdef-saml-tests"), session.WithTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := web.NewRedirectPolicy(pub, []string{"bsr.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	deps := web.Deps{Login: login, Sessions: sessions, Accounts: syncer, Redirects: policy, SessionBackend: h.backend, Users: st}
	endpoints, err := web.NewSAMLEndpoints(web.SAMLConfig{PublicURL: pub, SessionTTL: time.Hour, BindBrowser: o.bind}, deps, []web.SAMLConnector{conn}, web.WithSAMLLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	server, err := web.NewServer(web.Config{PublicURL: pub, Providers: providers, SessionTTL: time.Hour}, deps,
		web.WithRegistry(h.reg), web.WithSAML(endpoints))
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", server.Handler())
	return h
}

// serveIdPSLO plays the IdP's SLO endpoint: it checks the SP's query
// signature (SAML bindings §3.4.4.1) against the SP certificate, records
// the LogoutRequest and answers the browser back to the SP's SLO URL with
// a LogoutResponse. A LogoutResponse to an IdP-initiated logout ends here.
func (h *samlHarness) serveIdPSLO(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("SAMLResponse") != "" {
		_, _ = io.WriteString(w, "the IdP got a LogoutResponse")
		return
	}
	signed, sig, ok := splitSignedQuery(r.URL.RawQuery)
	cert, err := x509.ParseCertificate(h.spKey.Certificate[0])
	if err != nil || !ok {
		http.Error(w, "unsigned", http.StatusBadRequest)
		return
	}
	digest := sha256.Sum256([]byte(signed))
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	raw, err := inflateParam(r.URL.Query().Get("SAMLRequest"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.sloMu.Lock()
	h.sloRequests = append(h.sloRequests, string(raw))
	h.sloMu.Unlock()
	resp := `<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="2.0"><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>`
	http.Redirect(w, r, h.urls.SLO+"?SAMLResponse="+url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(resp))), http.StatusFound)
}

// splitSignedQuery returns the signed part of an HTTP-Redirect binding
// query, exactly as received, and the decoded signature.
func splitSignedQuery(rawQuery string) (string, []byte, bool) {
	parts := map[string]string{}
	for kv := range strings.SplitSeq(rawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		parts[k] = v
	}
	msg := "SAMLRequest"
	if _, ok := parts[msg]; !ok {
		msg = "SAMLResponse"
	}
	signed := msg + "=" + parts[msg]
	if rs, ok := parts["RelayState"]; ok {
		signed += "&RelayState=" + rs
	}
	signed += "&SigAlg=" + parts["SigAlg"]
	text, err := url.QueryUnescape(parts["Signature"])
	if err != nil {
		return "", nil, false
	}
	sig, err := base64.StdEncoding.DecodeString(text)
	return signed, sig, err == nil && len(sig) > 0
}

// inflateParam decodes an HTTP-Redirect binding message: base64, then
// raw DEFLATE.
func inflateParam(v string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), 1<<20))
}

func samlKeyPair(t *testing.T) tls.Certificate {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "groupgate SP"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

func (h *samlHarness) browser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &http.Client{Jar: jar, Transport: h.srv.Client().Transport, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var (
	samlFormAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	samlHidden     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
)

// form reads the first form of an HTML page: its action and hidden fields.
func (h *samlHarness) form(resp *http.Response) (string, url.Values) {
	h.t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := samlFormAction.FindStringSubmatch(string(b))
	if m == nil {
		h.t.Fatalf("no form in %d page: %s", resp.StatusCode, b)
	}
	v := url.Values{}
	for _, f := range samlHidden.FindAllStringSubmatch(string(b), -1) {
		v.Add(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	return html.UnescapeString(m[1]), v
}

// signIn drives c from start through the IdP's login form as user and
// posts the IdP's HTTP-POST binding form to groupgate's ACS, returning the
// ACS's answer.
func (h *samlHarness) signIn(c *http.Client, start, user string) *http.Response {
	h.t.Helper()
	return h.signInPostingFrom(c, c, start, user)
}

// signInPostingFrom is signIn with the final ACS POST sent by poster, a
// browser that did not start the login (login CSRF).
func (h *samlHarness) signInPostingFrom(c, poster *http.Client, start, user string) *http.Response {
	h.t.Helper()
	resp, err := c.Get(start)
	if err != nil {
		h.t.Fatal(err)
	}
	if resp.StatusCode == http.StatusFound {
		resp.Body.Close()
		if resp, err = c.Get(resp.Header.Get("Location")); err != nil {
			h.t.Fatal(err)
		}
	}
	action, fields := h.form(resp)
	fields.Set("username", user)
	fields.Set("password", user+"-password")
	target, err := url.Parse(h.base)
	if err != nil {
		h.t.Fatal(err)
	}
	target, _ = target.Parse(action)
	resp, err = c.PostForm(target.String(), fields)
	if err != nil {
		h.t.Fatal(err)
	}
	acs, posted := h.form(resp)
	if acs != h.urls.ACS || posted.Get("SAMLResponse") == "" {
		h.t.Fatalf("IdP posts to %q with %v, want the ACS with a SAMLResponse", acs, posted)
	}
	h.posted = posted.Get("SAMLResponse")
	resp, err = poster.PostForm(acs, posted)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

func (h *samlHarness) sessionCookie(c *http.Client) bool {
	u, _ := url.Parse(h.base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "_groupgate" {
			return true
		}
	}
	return false
}

func TestSAMLEndToEnd(t *testing.T) {
	h := newSAMLHarness(t, nil)

	t.Run("alice signs in through the embedded SAML IdP and /auth shows her groups", func(t *testing.T) {
		c := h.browser()
		resp := h.signIn(c, h.urls.Login+"?rd="+url.QueryEscape("https://bsr.example.com/acme"), "alice")
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://bsr.example.com/acme" {
			t.Fatalf("ACS answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		// crewjam encrypts to the certificate in our metadata, so this
		// login also proved decryption with the SP key.
		if raw, _ := base64.StdEncoding.DecodeString(h.posted); !strings.Contains(string(raw), "EncryptedAssertion") {
			t.Errorf("the IdP sent no encrypted assertion: %s", raw)
		}
		auth, err := c.Get(h.base + "/auth")
		if err != nil {
			t.Fatal(err)
		}
		auth.Body.Close()
		if auth.StatusCode != http.StatusOK || auth.Header.Get("X-Auth-Request-Groups") != "eng,platform-admins" ||
			auth.Header.Get("X-Auth-Request-User") != "alice" || auth.Header.Get("X-Auth-Request-Email") != "alice@example.com" {
			t.Fatalf("/auth = %d %v", auth.StatusCode, auth.Header)
		}
	})

	t.Run("carol, whom the IdP sends without groups, is refused with 403 and nothing is stored", func(t *testing.T) {
		c := h.browser()
		resp := h.signIn(c, h.urls.Login, "carol")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "sent no group information") ||
			!strings.Contains(string(b), "ask its administrator") {
			t.Fatalf("ACS answered %d: %s", resp.StatusCode, b)
		}
		if _, err := store.UserByEmail(context.Background(), h.store, "carol@example.com"); !groupgate.IsCode(err, groupgate.NotFound) {
			t.Fatalf("carol's user row: %v, want NotFound", err)
		}
		if h.sessionCookie(c) {
			t.Fatal("a refused login set a session cookie")
		}
		auth, _ := c.Get(h.base + "/auth")
		auth.Body.Close()
		if auth.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/auth after the refusal = %d", auth.StatusCode)
		}
	})

	t.Run("an IdP-initiated login is refused while it is not allowed", func(t *testing.T) {
		c := h.browser()
		resp := h.signIn(c, h.base+"/saml-idp/idp-initiated?sp="+url.QueryEscape(h.urls.EntityID), "alice")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "IdP-initiated login is off") || h.sessionCookie(c) {
			t.Fatalf("ACS answered %d: %s", resp.StatusCode, b)
		}
	})

	t.Run("the SP metadata is served with the ACS and certificates", func(t *testing.T) {
		resp, err := http.Get(h.urls.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`entityID="` + h.urls.EntityID + `"`, `Location="` + h.urls.ACS + `"`, `use="encryption"`, `use="signing"`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("metadata lacks %s:\n%s", want, b)
			}
		}
	})
}

func TestSAMLEndToEndIDPInitiated(t *testing.T) {
	h := newSAMLHarness(t, func(c *saml.Config) { c.AllowIDPInitiated = true })
	c := h.browser()
	resp := h.signIn(c, h.base+"/saml-idp/idp-initiated?sp="+url.QueryEscape(h.urls.EntityID)+"&RelayState="+url.QueryEscape("https://evil.example.net/"), "bob")
	resp.Body.Close()
	// The RelayState of an unsolicited response is validated like any rd.
	if resp.StatusCode != http.StatusSeeOther || strings.Contains(resp.Header.Get("Location"), "evil") || !h.sessionCookie(c) {
		t.Fatalf("ACS answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
