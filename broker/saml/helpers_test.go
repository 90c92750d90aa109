package saml_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/groupgate/groupgate/broker/saml"
	"github.com/groupgate/groupgate/session"
)

const (
	nsP = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsA = "urn:oasis:names:tc:SAML:2.0:assertion"

	spEntity  = "https://gg.example.com/saml/corp/metadata"
	acsURL    = "https://gg.example.com/saml/corp/acs"
	sloURL    = "https://gg.example.com/saml/corp/slo"
	idpEntity = "https://idp.example.com/metadata"
	idpSSO    = "https://idp.example.com/sso"
	idpSLO    = "https://idp.example.com/slo"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// keyPair returns a fresh RSA key with a self-signed certificate valid
// around now.
func keyPair(t *testing.T, cn string, now time.Time) tls.Certificate {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// testIdP forges IdP messages with its own key, so every field and the
// signature placement is under the test's control.
type testIdP struct {
	key tls.Certificate
}

func (i testIdP) metadata(withSLO bool) string {
	cert := base64.StdEncoding.EncodeToString(i.key.Certificate[0])
	slo := ""
	if withSLO {
		slo = `<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="` + idpSLO + `"/>`
	}
	return `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="` + idpEntity + `">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>` + cert + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
` + slo + `
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="` + idpSSO + `"/>
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="` + idpSSO + `"/>
</md:IDPSSODescriptor></md:EntityDescriptor>`
}

// assertionSpec describes a response; zero fields take sane defaults from
// newSpec.
type assertionSpec struct {
	InResponseTo  string
	SCDInResponse string
	Destination   string
	Recipient     string
	Audience      string
	Issuer        string
	NameID        string
	NotBefore     time.Time
	NotOnOrAfter  time.Time
	Attrs         map[string][]string
	AssertionID   string
	SignAssertion bool
	SignResponse  bool
	// Signer overrides the IdP's key.
	Signer *tls.Certificate
}

func newSpec(now time.Time, requestID string) assertionSpec {
	return assertionSpec{
		InResponseTo:  requestID,
		SCDInResponse: requestID,
		Destination:   acsURL,
		Recipient:     acsURL,
		Audience:      spEntity,
		Issuer:        idpEntity,
		NameID:        "u-alice",
		NotBefore:     now.Add(-time.Minute),
		NotOnOrAfter:  now.Add(5 * time.Minute),
		Attrs:         map[string][]string{"groups": {"eng", "platform-admins"}, "email": {"alice@example.com"}, "username": {"alice"}},
		AssertionID:   fmt.Sprintf("_a%x", randBytes(12)),
		SignAssertion: true,
		SignResponse:  true,
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// build returns the response document, signed as s says.
func (i testIdP) build(t *testing.T, now time.Time, s assertionSpec) *etree.Document {
	t.Helper()
	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", nsA)
	a.CreateAttr("ID", s.AssertionID)
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("IssueInstant", ts(now))
	a.CreateElement("saml:Issuer").SetText(s.Issuer)
	subj := a.CreateElement("saml:Subject")
	subj.CreateElement("saml:NameID").SetText(s.NameID)
	sc := subj.CreateElement("saml:SubjectConfirmation")
	sc.CreateAttr("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
	scd := sc.CreateElement("saml:SubjectConfirmationData")
	if s.SCDInResponse != "" {
		scd.CreateAttr("InResponseTo", s.SCDInResponse)
	}
	scd.CreateAttr("NotOnOrAfter", ts(s.NotOnOrAfter))
	scd.CreateAttr("Recipient", s.Recipient)
	cond := a.CreateElement("saml:Conditions")
	cond.CreateAttr("NotBefore", ts(s.NotBefore))
	cond.CreateAttr("NotOnOrAfter", ts(s.NotOnOrAfter))
	cond.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText(s.Audience)
	as := a.CreateElement("saml:AuthnStatement")
	as.CreateAttr("AuthnInstant", ts(now))
	as.CreateAttr("SessionIndex", "_s1")
	as.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").SetText("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
	if len(s.Attrs) > 0 {
		st := a.CreateElement("saml:AttributeStatement")
		for _, name := range sortedKeys(s.Attrs) {
			at := st.CreateElement("saml:Attribute")
			at.CreateAttr("Name", name)
			for _, v := range s.Attrs[name] {
				at.CreateElement("saml:AttributeValue").SetText(v)
			}
		}
	}
	signer := i.key
	if s.Signer != nil {
		signer = *s.Signer
	}
	if s.SignAssertion {
		a = sign(t, signer, a)
	}
	r := etree.NewElement("samlp:Response")
	r.CreateAttr("xmlns:samlp", nsP)
	r.CreateAttr("xmlns:saml", nsA)
	r.CreateAttr("ID", fmt.Sprintf("_r%x", randBytes(12)))
	r.CreateAttr("Version", "2.0")
	r.CreateAttr("IssueInstant", ts(now))
	if s.Destination != "" {
		r.CreateAttr("Destination", s.Destination)
	}
	if s.InResponseTo != "" {
		r.CreateAttr("InResponseTo", s.InResponseTo)
	}
	r.CreateElement("saml:Issuer").SetText(s.Issuer)
	r.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Success")
	r.AddChild(a)
	if s.SignResponse {
		r = sign(t, signer, r)
	}
	doc := etree.NewDocument()
	doc.SetRoot(r)
	return doc
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

func sign(t *testing.T, key tls.Certificate, el *etree.Element) *etree.Element {
	t.Helper()
	ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(key))
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	// Exclusive C14N, as IdPs use: the signed element keeps its digest when
	// it sits inside a Response that declares more namespaces.
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func encode(t *testing.T, doc *etree.Document) string {
	t.Helper()
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// env is one connector over a forged IdP, on an in-process session
// backend and a test clock.
type env struct {
	clk     *clock
	idp     testIdP
	backend *session.Memory
	conn    *saml.Connector
	spKey   tls.Certificate
}

func newEnv(t *testing.T, mutate func(*saml.Config)) *env {
	t.Helper()
	clk := &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	e := &env{clk: clk, idp: testIdP{key: keyPair(t, "idp", clk.Now())}, spKey: keyPair(t, "sp", clk.Now())}
	e.backend = session.NewMemory(session.WithNow(clk.Now))
	cfg := saml.Config{
		IDPMetadataXML:    e.idp.metadata(true),
		EntityID:          spEntity,
		ACSURL:            acsURL,
		SLOURL:            sloURL,
		KeyPair:           e.spKey,
		GroupsAttribute:   "groups",
		EmailAttribute:    "email",
		UsernameAttribute: "username",
	}
	if mutate != nil {
		mutate(&cfg)
	}
	conn, err := cfg.Open(context.Background(), "corp", e.backend, e.backend, saml.WithNow(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.conn = conn
	return e
}

// begin starts a login and returns its request ID.
func (e *env) begin(t *testing.T) string {
	t.Helper()
	req, err := e.conn.Begin(context.Background(), "https://app.example.com/", false)
	if err != nil {
		t.Fatal(err)
	}
	return req.RequestID
}
