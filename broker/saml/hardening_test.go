package saml_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker/saml"
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
