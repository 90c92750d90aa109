package saml_test

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
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker/saml"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
)

// TestPendingLoginIsConsumedOnlyByAVerifiedBoundResponse: anyone who
// learns a request ID (it travels through the browser's URL bar, the IdP's
// logs, a Referer) must not be able to burn the pending login by posting
// junk that names it; only a response that verifies, from the browser
// holding the binding cookie, consumes the attempt.
func TestPendingLoginIsConsumedOnlyByAVerifiedBoundResponse(t *testing.T) {
	ctx := context.Background()
	type attack func(t *testing.T, e *env, req saml.Request, genuine string) saml.Response
	withCookie := func(name, value string) func(string) (string, bool) {
		return func(n string) (string, bool) {
			if n == name {
				return value, true
			}
			return "", false
		}
	}
	cases := []struct {
		name string
		bind bool
		// attack is the attacker's post; genuine is the IdP's real response.
		attack attack
		code   groupgate.ErrorCode
	}{
		{name: "an unsigned response naming the request ID", attack: func(t *testing.T, e *env, req saml.Request, _ string) saml.Response {
			s := newSpec(e.clk.Now(), req.RequestID)
			s.SignAssertion, s.SignResponse = false, false
			return saml.Response{SAMLResponse: encode(t, e.idp.build(t, e.clk.Now(), s))}
		}, code: groupgate.Unauthenticated},
		{name: "a response signed by another key naming the request ID", attack: func(t *testing.T, e *env, req saml.Request, _ string) saml.Response {
			other := keyPair(t, "evil", e.clk.Now())
			s := newSpec(e.clk.Now(), req.RequestID)
			s.Signer = &other
			return saml.Response{SAMLResponse: encode(t, e.idp.build(t, e.clk.Now(), s))}
		}, code: groupgate.Unauthenticated},
		{name: "a bound login's response posted without the binding cookie", bind: true, attack: func(t *testing.T, e *env, req saml.Request, genuine string) saml.Response {
			return saml.Response{SAMLResponse: genuine}
		}, code: groupgate.Invalid},
		{name: "a bound login's response posted with a wrong binding cookie", bind: true, attack: func(t *testing.T, e *env, req saml.Request, genuine string) saml.Response {
			return saml.Response{SAMLResponse: genuine, Cookie: withCookie(saml.BindingCookieName(req.RequestID), "not-the-token")}
		}, code: groupgate.Invalid},
		{name: "a bound login's unsigned response posted with the right cookie", bind: true, attack: func(t *testing.T, e *env, req saml.Request, _ string) saml.Response {
			s := newSpec(e.clk.Now(), req.RequestID)
			s.SignAssertion, s.SignResponse = false, false
			return saml.Response{SAMLResponse: encode(t, e.idp.build(t, e.clk.Now(), s)), Cookie: withCookie(saml.BindingCookieName(req.RequestID), req.BindingToken)}
		}, code: groupgate.Unauthenticated},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused and the real login still succeeds", func(t *testing.T) {
			e := newEnv(t, nil)
			req, err := e.conn.Begin(ctx, "https://app.example.com/", tc.bind)
			if err != nil {
				t.Fatal(err)
			}
			genuine := encode(t, e.idp.build(t, e.clk.Now(), newSpec(e.clk.Now(), req.RequestID)))
			if _, err := e.conn.HandleResponse(ctx, tc.attack(t, e, req, genuine)); !groupgate.IsCode(err, tc.code) {
				t.Fatalf("attacker's post: %v, want %s", err, tc.code)
			}
			in := saml.Response{SAMLResponse: genuine}
			if tc.bind {
				in.Cookie = withCookie(saml.BindingCookieName(req.RequestID), req.BindingToken)
			}
			res, err := e.conn.HandleResponse(ctx, in)
			if err != nil {
				t.Fatalf("the victim's genuine response after the attack: %v", err)
			}
			if res.RequestID != req.RequestID || res.ReturnTo != "https://app.example.com/" {
				t.Fatalf("result = %+v", res)
			}
			if _, err := e.conn.HandleResponse(ctx, in); !groupgate.IsCode(err, groupgate.Invalid) {
				t.Fatalf("the genuine response replayed: %v, want Invalid", err)
			}
		})
	}
}

// idpKeyValidFrom is an IdP key pair whose certificate's validity starts
// at notBefore and ends at notAfter.
func idpKeyValidFrom(t *testing.T, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(notBefore.UnixNano()),
		Subject:      pkix.Name{CommonName: "rotated-idp"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// TestIdPCertificateValidityUsesTheRealClock: clock_skew widens the
// assertion's own time conditions only (SAML core §2.5.1.2); whether the
// IdP's certificate is valid is judged at the real time, so a key created
// or rotated seconds ago signs valid logins, and an expired one does not
// get clock_skew of grace.
func TestIdPCertificateValidityUsesTheRealClock(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name                string
		notBefore, notAfter time.Duration // relative to now
		ok                  bool
	}{
		{name: "a certificate issued 5 seconds ago is accepted", notBefore: -5 * time.Second, notAfter: 365 * 24 * time.Hour, ok: true},
		{name: "a certificate issued 1 second ago is accepted", notBefore: -time.Second, notAfter: 365 * 24 * time.Hour, ok: true},
		{name: "a certificate valid only from 5 seconds from now is refused", notBefore: 5 * time.Second, notAfter: 365 * 24 * time.Hour},
		{name: "a certificate that expired 5 seconds ago is refused", notBefore: -24 * time.Hour, notAfter: -5 * time.Second},
		{name: "a certificate valid for 5 more seconds is accepted", notBefore: -24 * time.Hour, notAfter: 5 * time.Second, ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			now := e.clk.Now()
			e.idp = testIdP{key: idpKeyValidFrom(t, now.Add(tc.notBefore), now.Add(tc.notAfter))}
			conn, err := saml.Config{
				IDPMetadataXML: e.idp.metadata(true), EntityID: spEntity, ACSURL: acsURL, SLOURL: sloURL, KeyPair: e.spKey,
				GroupsAttribute: "groups", EmailAttribute: "email", UsernameAttribute: "username",
			}.Open(ctx, "corp", e.backend, e.backend, saml.WithNow(e.clk.Now))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			req, err := conn.Begin(ctx, "/", false)
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.HandleResponse(ctx, saml.Response{SAMLResponse: encode(t, e.idp.build(t, now, newSpec(now, req.RequestID)))})
			switch {
			case tc.ok && err != nil:
				t.Fatalf("login: %v", err)
			case !tc.ok && !groupgate.IsCode(err, groupgate.Unauthenticated):
				t.Fatalf("login: %v, want Unauthenticated", err)
			}
		})
	}
}

// TestLogoutRequestIsAcceptedOnceAcrossReplicas: the replay cache that
// remembers LogoutRequest IDs is the session backend's; under serve that
// is Redis, shared by every replica, so a signed request accepted by one
// replica is refused by another, by both bindings.
func TestLogoutRequestIsAcceptedOnceAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	client, prefix := testenv.Redis(t)
	replica := func() *saml.Connector {
		backend, err := session.NewRedis(client, prefix, session.WithNow(e.clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := saml.Config{
			IDPMetadataXML: e.idp.metadata(true), EntityID: spEntity, ACSURL: acsURL, SLOURL: sloURL, KeyPair: e.spKey,
			GroupsAttribute: "groups",
		}.Open(ctx, "corp", backend, backend, saml.WithNow(e.clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	a, b := replica(), replica()
	for _, tc := range []struct {
		name string
		req  func(id string) func() *http.Request
	}{
		{"HTTP-Redirect", func(id string) func() *http.Request {
			q := signedRedirectQuery(t, e, logoutRequestFor(e, id, "u-alice", nil))
			return func() *http.Request { return httptest.NewRequest(http.MethodGet, sloURL+"?"+q, nil) }
		}},
		{"HTTP-POST", func(id string) func() *http.Request {
			return postLogout(t, sign(t, e.idp.key, logoutRequestFor(e, id, "u-alice", nil)))
		}},
	} {
		t.Run("a signed "+tc.name+" LogoutRequest accepted by one replica is refused by the other", func(t *testing.T) {
			req := tc.req("_lr-" + tc.name)
			if _, err := a.HandleLogoutRequest(ctx, req()); err != nil {
				t.Fatalf("first replica: %v", err)
			}
			if _, err := b.HandleLogoutRequest(ctx, req()); !groupgate.IsCode(err, groupgate.Invalid) {
				t.Fatalf("second replica: %v, want Invalid (already used)", err)
			}
		})
	}
}

// TestRedirectLogoutRequestRefusals covers the parsing rules of the
// HTTP-Redirect binding at the connector.
func TestRedirectLogoutRequestRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	cases := []struct {
		name string
		req  func() *http.Request
		code groupgate.ErrorCode
	}{
		{"a signed query with a body", func() *http.Request {
			q := signedRedirectQuery(t, e, logoutRequestFor(e, "_b1", "u-alice", nil))
			return httptest.NewRequest(http.MethodGet, sloURL+"?"+q, strings.NewReader("SAMLRequest=x"))
		}, groupgate.Invalid},
		{"a signed query with SAMLRequest given twice once decoded", func() *http.Request {
			q := signedRedirectQuery(t, e, logoutRequestFor(e, "_b2", "u-alice", nil))
			return httptest.NewRequest(http.MethodGet, sloURL+"?"+q+"&SAMLReques%74=x", nil)
		}, groupgate.Unauthenticated},
		{"a signed query with RelayState given twice once decoded", func() *http.Request {
			q := signedRedirectQuery(t, e, logoutRequestFor(e, "_b3", "u-alice", nil))
			return httptest.NewRequest(http.MethodGet, sloURL+"?"+q+"&Relay%53tate=x", nil)
		}, groupgate.Unauthenticated},
		{"a query without a signature", func() *http.Request {
			q, _, _ := strings.Cut(signedRedirectQuery(t, e, logoutRequestFor(e, "_b4", "u-alice", nil)), "&SigAlg=")
			return httptest.NewRequest(http.MethodGet, sloURL+"?"+q, nil)
		}, groupgate.Unauthenticated},
		{"a signed request whose NotOnOrAfter has passed", func() *http.Request {
			noa := e.clk.Now().Add(-saml.DefaultClockSkew - time.Second)
			q := signedRedirectQuery(t, e, logoutRequestFor(e, "_b5", "u-alice", &noa))
			return httptest.NewRequest(http.MethodGet, sloURL+"?"+q, nil)
		}, groupgate.Invalid},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			if _, err := e.conn.HandleLogoutRequest(ctx, tc.req()); !groupgate.IsCode(err, tc.code) {
				t.Fatalf("HandleLogoutRequest = %v, want %s", err, tc.code)
			}
		})
	}
	t.Run("a signed query's RelayState is the one handed back", func(t *testing.T) {
		q := signedRedirectQueryRelay(t, e, logoutRequestFor(e, "_b6", "u-alice", nil), "idp-state")
		lr, err := e.conn.HandleLogoutRequest(ctx, httptest.NewRequest(http.MethodGet, sloURL+"?"+q, nil))
		if err != nil || lr.RelayState != "idp-state" || lr.NameID != "u-alice" {
			t.Fatalf("HandleLogoutRequest = %+v, %v", lr, err)
		}
	})
}

// logoutRequestFor is an IdP LogoutRequest for nameID issued now, with a
// NotOnOrAfter when noa is set.
func logoutRequestFor(e *env, id, nameID string, noa *time.Time) *etree.Element {
	r := etree.NewElement("samlp:LogoutRequest")
	r.CreateAttr("xmlns:samlp", nsP)
	r.CreateAttr("xmlns:saml", nsA)
	r.CreateAttr("ID", id)
	r.CreateAttr("Version", "2.0")
	r.CreateAttr("IssueInstant", ts(e.clk.Now()))
	if noa != nil {
		r.CreateAttr("NotOnOrAfter", ts(*noa))
	}
	r.CreateAttr("Destination", sloURL)
	r.CreateElement("saml:Issuer").SetText(idpEntity)
	r.CreateElement("saml:NameID").SetText(nameID)
	return r
}

func signedRedirectQuery(t *testing.T, e *env, el *etree.Element) string {
	return signedRedirectQueryRelay(t, e, el, "")
}

// signedRedirectQueryRelay encodes el for the HTTP-Redirect binding and
// signs the query with the IdP's key (SAML bindings §3.4.4.1).
func signedRedirectQueryRelay(t *testing.T, e *env, el *etree.Element, relayState string) string {
	t.Helper()
	d := etree.NewDocument()
	d.SetRoot(el)
	b, err := d.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	_, _ = fw.Write(b)
	_ = fw.Close()
	q := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	q += "&SigAlg=" + url.QueryEscape(dsig.RSASHA256SignatureMethod)
	digest := sha256.Sum256([]byte(q))
	sig, err := rsa.SignPKCS1v15(rand.Reader, e.idp.key.PrivateKey.(*rsa.PrivateKey), crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return q + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
}

// postLogout returns a maker of HTTP-POST binding requests carrying el.
func postLogout(t *testing.T, el *etree.Element) func() *http.Request {
	t.Helper()
	d := etree.NewDocument()
	d.SetRoot(el)
	body := url.Values{"SAMLRequest": {encode(t, d)}}.Encode()
	return func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, sloURL, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
}
