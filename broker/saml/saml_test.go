package saml_test

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker/saml"
	"github.com/groupgate/groupgate/claims"
)

func TestLogin(t *testing.T) {
	ctx := context.Background()

	t.Run("a signed response to a pending request logs alice in with her groups", func(t *testing.T) {
		e := newEnv(t, nil)
		id := e.begin(t)
		res, err := e.conn.HandleResponse(ctx, saml.Response{SAMLResponse: encode(t, e.idp.build(t, e.clk.Now(), newSpec(e.clk.Now(), id)))})
		if err != nil {
			t.Fatal(err)
		}
		got := res.Identity
		if got.Subject != "u-alice" || got.Username != "alice" || got.Email != "alice@example.com" || !got.GroupsPresent ||
			!slices.Equal(got.Groups, []string{"eng", "platform-admins"}) || res.ReturnTo != "https://app.example.com/" || res.RequestID != id {
			t.Fatalf("result = %+v", res)
		}
	})

	t.Run("a response signed only at the assertion is accepted by default", func(t *testing.T) {
		e := newEnv(t, nil)
		s := newSpec(e.clk.Now(), e.begin(t))
		s.SignResponse = false
		if _, err := e.conn.HandleResponse(ctx, saml.Response{SAMLResponse: encode(t, e.idp.build(t, e.clk.Now(), s))}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a response signed only at the envelope is accepted by default", func(t *testing.T) {
		e := newEnv(t, nil)
		s := newSpec(e.clk.Now(), e.begin(t))
		s.SignAssertion = false
		if _, err := e.conn.HandleResponse(ctx, saml.Response{SAMLResponse: encode(t, e.idp.build(t, e.clk.Now(), s))}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("both signatures pass when both are required", func(t *testing.T) {
		e := newEnv(t, func(c *saml.Config) { c.RequireSignedResponseAndAssertion = true })
		s := newSpec(e.clk.Now(), e.begin(t))
		if _, err := e.conn.HandleResponse(ctx, saml.Response{SAMLResponse: encode(t, e.idp.build(t, e.clk.Now(), s))}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("an assertion within the clock skew of its window is accepted", func(t *testing.T) {
		e := newEnv(t, func(c *saml.Config) { c.ClockSkew = time.Minute })
		now := e.clk.Now()
		s := newSpec(now, e.begin(t))
		s.NotBefore = now.Add(50 * time.Second)
		if _, err := e.conn.HandleResponse(ctx, saml.Response{SAMLResponse: encode(t, e.idp.build(t, now, s))}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("an IdP-initiated response is accepted when allowed and returns the RelayState", func(t *testing.T) {
		e := newEnv(t, func(c *saml.Config) { c.AllowIDPInitiated = true })
		s := newSpec(e.clk.Now(), "")
		res, err := e.conn.HandleResponse(ctx, saml.Response{SAMLResponse: encode(t, e.idp.build(t, e.clk.Now(), s)), RelayState: "https://app.example.com/x"})
		if err != nil {
			t.Fatal(err)
		}
		if !res.IDPInitiated || res.ReturnTo != "https://app.example.com/x" {
			t.Fatalf("result = %+v", res)
		}
	})

	t.Run("a login bound to the browser needs its binding cookie", func(t *testing.T) {
		e := newEnv(t, nil)
		req, err := e.conn.Begin(ctx, "/", true)
		if err != nil || req.BindingToken == "" {
			t.Fatalf("Begin = %+v, %v", req, err)
		}
		body := encode(t, e.idp.build(t, e.clk.Now(), newSpec(e.clk.Now(), req.RequestID)))
		cookie := func(name string) (string, bool) {
			if name == saml.BindingCookieName(req.RequestID) {
				return req.BindingToken, true
			}
			return "", false
		}
		if _, err := e.conn.HandleResponse(ctx, saml.Response{SAMLResponse: body, Cookie: cookie}); err != nil {
			t.Fatal(err)
		}
		req2, _ := e.conn.Begin(ctx, "/", true)
		body2 := encode(t, e.idp.build(t, e.clk.Now(), newSpec(e.clk.Now(), req2.RequestID)))
		_, err = e.conn.HandleResponse(ctx, saml.Response{SAMLResponse: body2})
		if !groupgate.IsCode(err, groupgate.Invalid) {
			t.Fatalf("without the cookie: %v, want Invalid", err)
		}
	})
}

// TestRefusals is the negative suite: each response is refused with a
// clear error.
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	type build func(t *testing.T, e *env) saml.Response
	spec := func(f func(s *assertionSpec, now time.Time)) build {
		return func(t *testing.T, e *env) saml.Response {
			now := e.clk.Now()
			s := newSpec(now, e.begin(t))
			f(&s, now)
			return saml.Response{SAMLResponse: encode(t, e.idp.build(t, now, s))}
		}
	}
	doc := func(f func(t *testing.T, d *etree.Document)) build {
		return func(t *testing.T, e *env) saml.Response {
			d := e.idp.build(t, e.clk.Now(), newSpec(e.clk.Now(), e.begin(t)))
			f(t, d)
			return saml.Response{SAMLResponse: encode(t, d)}
		}
	}
	cases := []struct {
		name   string
		cfg    func(*saml.Config)
		build  build
		code   groupgate.ErrorCode
		reason string
	}{
		{name: "an unsigned response is refused", build: spec(func(s *assertionSpec, _ time.Time) { s.SignAssertion, s.SignResponse = false, false }),
			code: groupgate.Unauthenticated, reason: "does not verify"},
		{name: "a response signed by another key is refused", build: func(t *testing.T, e *env) saml.Response {
			other := keyPair(t, "evil", e.clk.Now())
			s := newSpec(e.clk.Now(), e.begin(t))
			s.Signer = &other
			return saml.Response{SAMLResponse: encode(t, e.idp.build(t, e.clk.Now(), s))}
		}, code: groupgate.Unauthenticated, reason: "does not verify"},
		{name: "an attribute changed after signing is refused", build: doc(func(t *testing.T, d *etree.Document) {
			v := d.FindElement("//Attribute[@Name='groups']/AttributeValue")
			v.SetText("superadmins")
		}), code: groupgate.Unauthenticated, reason: "does not verify"},
		{name: "a NameID with an injected comment is refused", build: doc(func(t *testing.T, d *etree.Document) {
			n := d.FindElement("//NameID")
			n.SetText("alice")
			n.CreateComment("")
			n.CreateText("@evil")
		}), code: groupgate.Unauthenticated, reason: "comments"},
		{name: "an expired assertion is refused", build: func(t *testing.T, e *env) saml.Response {
			r := spec(func(*assertionSpec, time.Time) {})(t, e)
			e.clk.Add(5*time.Minute + saml.DefaultClockSkew)
			return r
		}, code: groupgate.Unauthenticated, reason: "expired"},
		{name: "an assertion whose NotBefore is in the future is refused", build: spec(func(s *assertionSpec, now time.Time) {
			s.NotBefore = now.Add(saml.DefaultClockSkew + time.Minute)
		}), code: groupgate.Unauthenticated, reason: "not valid yet"},
		{name: "an assertion for another audience is refused", build: spec(func(s *assertionSpec, _ time.Time) { s.Audience = "https://other.example.com/sp" }),
			code: groupgate.Unauthenticated, reason: "audience"},
		{name: "an assertion for another recipient is refused", build: spec(func(s *assertionSpec, _ time.Time) { s.Recipient = "https://evil.example.com/acs" }),
			code: groupgate.Unauthenticated, reason: "does not verify"},
		{name: "a response to another destination is refused", build: spec(func(s *assertionSpec, _ time.Time) { s.Destination = "https://evil.example.com/acs" }),
			code: groupgate.Unauthenticated, reason: "does not verify"},
		{name: "a response from another issuer is refused", build: spec(func(s *assertionSpec, _ time.Time) { s.Issuer = "https://evil.example.com/idp" }),
			code: groupgate.Unauthenticated, reason: "does not verify"},
		{name: "a response answering no pending request is refused", build: spec(func(s *assertionSpec, _ time.Time) {
			s.InResponseTo, s.SCDInResponse = "_unknown", "_unknown"
		}), code: groupgate.Invalid, reason: "no pending login"},
		{name: "an assertion whose InResponseTo differs from the response's is refused", build: spec(func(s *assertionSpec, _ time.Time) {
			s.SCDInResponse = "_another"
		}), code: groupgate.Invalid, reason: "InResponseTo"},
		{name: "an IdP-initiated response is refused when not allowed", build: spec(func(s *assertionSpec, _ time.Time) {
			s.InResponseTo, s.SCDInResponse = "", ""
		}), code: groupgate.Invalid, reason: "IdP-initiated"},
		{name: "a response without groups is refused as forbidden", build: spec(func(s *assertionSpec, _ time.Time) { delete(s.Attrs, "groups") }),
			code: groupgate.Forbidden, reason: "no group information"},
		{name: "a response whose groups are all blank is refused as forbidden", build: spec(func(s *assertionSpec, _ time.Time) { s.Attrs["groups"] = []string{"", "  "} }),
			code: groupgate.Forbidden, reason: "no group information"},
		{name: "an Entra group overage without SCIM groups is refused as forbidden", build: spec(func(s *assertionSpec, _ time.Time) {
			delete(s.Attrs, "groups")
			s.Attrs[claims.EntraGroupsLinkAttribute] = []string{"https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}
		}), code: groupgate.Forbidden, reason: "link to the groups"},
		{name: "a response without its own signature is refused when both are required", cfg: func(c *saml.Config) { c.RequireSignedResponseAndAssertion = true },
			build: spec(func(s *assertionSpec, _ time.Time) { s.SignResponse = false }), code: groupgate.Unauthenticated, reason: "response itself must be signed"},
		{name: "an unsigned assertion in a signed response is refused when both are required", cfg: func(c *saml.Config) { c.RequireSignedResponseAndAssertion = true },
			build: spec(func(s *assertionSpec, _ time.Time) { s.SignAssertion = false }), code: groupgate.Unauthenticated, reason: "assertion must be signed"},
		{name: "a response that is not base64 is refused", build: func(*testing.T, *env) saml.Response { return saml.Response{SAMLResponse: "%%%"} },
			code: groupgate.Invalid, reason: "base64"},
	}
	for _, x := range xswCases() {
		cases = append(cases, struct {
			name   string
			cfg    func(*saml.Config)
			build  build
			code   groupgate.ErrorCode
			reason string
		}{name: x.name, build: x.build, code: groupgate.Unauthenticated, reason: "signature wrapping"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			_, err := e.conn.HandleResponse(ctx, tc.build(t, e))
			if got := groupgate.ErrorCodeOf(err); got != tc.code || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error = %v (code %q), want code %q mentioning %q", err, got, tc.code, tc.reason)
			}
			if tc.code == groupgate.Forbidden && !errors.Is(err, claims.ErrNoGroups) {
				t.Fatalf("error %v does not wrap claims.ErrNoGroups", err)
			}
		})
	}

	t.Run("a response replayed after an accepted login is refused", func(t *testing.T) {
		e := newEnv(t, func(c *saml.Config) { c.AllowIDPInitiated = true })
		// IdP-initiated, so that only the replay cache can stop the
		// second use (an SP-initiated replay also finds its attempt gone).
		body := encode(t, e.idp.build(t, e.clk.Now(), newSpec(e.clk.Now(), "")))
		if _, err := e.conn.HandleResponse(ctx, saml.Response{SAMLResponse: body}); err != nil {
			t.Fatal(err)
		}
		_, err := e.conn.HandleResponse(ctx, saml.Response{SAMLResponse: body})
		if !groupgate.IsCode(err, groupgate.Invalid) || !strings.Contains(err.Error(), "already used") {
			t.Fatalf("replay: %v", err)
		}
	})

	t.Run("an SP-initiated response replayed finds its attempt consumed", func(t *testing.T) {
		e := newEnv(t, nil)
		body := encode(t, e.idp.build(t, e.clk.Now(), newSpec(e.clk.Now(), e.begin(t))))
		if _, err := e.conn.HandleResponse(ctx, saml.Response{SAMLResponse: body}); err != nil {
			t.Fatal(err)
		}
		_, err := e.conn.HandleResponse(ctx, saml.Response{SAMLResponse: body})
		if !groupgate.IsCode(err, groupgate.Invalid) {
			t.Fatalf("replay: %v", err)
		}
	})

	t.Run("an overage passes when SCIM holds the user's groups", func(t *testing.T) {
		e := newEnv(t, nil)
		var asked groupgate.Identity
		cfg := saml.Config{IDPMetadataXML: e.idp.metadata(false), EntityID: spEntity, ACSURL: acsURL, KeyPair: e.spKey,
			EmailAttribute: "email"}
		conn, err := cfg.Open(ctx, "corp", e.backend, e.backend, saml.WithNow(e.clk.Now),
			saml.WithSCIMGroups(func(_ context.Context, id groupgate.Identity) (bool, error) { asked = id; return true, nil }))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req, _ := conn.Begin(ctx, "/", false)
		s := newSpec(e.clk.Now(), req.RequestID)
		delete(s.Attrs, "groups")
		s.Attrs[claims.EntraGroupsLinkAttribute] = []string{"https://graph.microsoft.com/x"}
		res, err := conn.HandleResponse(ctx, saml.Response{SAMLResponse: encode(t, e.idp.build(t, e.clk.Now(), s))})
		if err != nil {
			t.Fatal(err)
		}
		if asked.Email != "alice@example.com" || res.Identity.Subject != "u-alice" || len(res.Identity.Groups) != 0 {
			t.Fatalf("asked %+v, result %+v", asked, res)
		}
	})
}

type xswCase struct {
	name  string
	build func(t *testing.T, e *env) saml.Response
}

// xswCases are the eight XML signature wrapping shapes (Somorovsky et al.,
// "On Breaking SAML", 2012), each built from a validly signed response by
// moving the signed original and adding an evil copy that names mallory.
func xswCases() []xswCase {
	// signed returns a response signed as the shape needs and its parts.
	signed := func(t *testing.T, e *env, signResponse bool) (*etree.Document, *etree.Element, *etree.Element) {
		s := newSpec(e.clk.Now(), e.begin(t))
		s.SignResponse, s.SignAssertion = signResponse, !signResponse
		d := e.idp.build(t, e.clk.Now(), s)
		return d, d.Root(), d.Root().SelectElement("Assertion")
	}
	evilAssertion := func(a *etree.Element) *etree.Element {
		evil := a.Copy()
		evil.CreateAttr("ID", "_evil")
		if sig := evil.SelectElement("Signature"); sig != nil {
			evil.RemoveChild(sig)
		}
		evil.FindElement(".//NameID").SetText("u-mallory")
		return evil
	}
	finish := func(t *testing.T, d *etree.Document) saml.Response {
		return saml.Response{SAMLResponse: encode(t, d)}
	}
	return []xswCase{
		{"XSW1 (signed response copied into its own signature, evil response outside) is refused", func(t *testing.T, e *env) saml.Response {
			d, r, a := signed(t, e, true)
			orig := r.Copy()
			r.CreateAttr("ID", "_evilresponse")
			r.RemoveChild(a)
			r.AddChild(evilAssertion(a))
			r.SelectElement("Signature").AddChild(orig)
			return finish(t, d)
		}},
		{"XSW2 (signed response placed before the signature of an evil response) is refused", func(t *testing.T, e *env) saml.Response {
			d, r, a := signed(t, e, true)
			orig := r.Copy()
			if s := orig.SelectElement("Signature"); s != nil {
				orig.RemoveChild(s)
			}
			r.CreateAttr("ID", "_evilresponse")
			r.RemoveChild(a)
			r.AddChild(evilAssertion(a))
			sig := r.SelectElement("Signature")
			r.InsertChildAt(sig.Index(), orig)
			return finish(t, d)
		}},
		{"XSW3 (evil assertion inserted before the signed one) is refused", func(t *testing.T, e *env) saml.Response {
			d, r, a := signed(t, e, false)
			r.InsertChildAt(a.Index(), evilAssertion(a))
			return finish(t, d)
		}},
		{"XSW4 (signed assertion wrapped inside the evil one) is refused", func(t *testing.T, e *env) saml.Response {
			d, r, a := signed(t, e, false)
			evil := evilAssertion(a)
			r.RemoveChild(a)
			evil.AddChild(a)
			r.AddChild(evil)
			return finish(t, d)
		}},
		{"XSW5 (evil assertion keeps the signature, original appended) is refused", func(t *testing.T, e *env) saml.Response {
			d, r, a := signed(t, e, false)
			orig := a.Copy()
			if s := orig.SelectElement("Signature"); s != nil {
				orig.RemoveChild(s)
			}
			a.FindElement(".//NameID").SetText("u-mallory")
			r.AddChild(orig)
			return finish(t, d)
		}},
		{"XSW6 (original assertion hidden inside the evil assertion's signature) is refused", func(t *testing.T, e *env) saml.Response {
			d, _, a := signed(t, e, false)
			orig := a.Copy()
			if s := orig.SelectElement("Signature"); s != nil {
				orig.RemoveChild(s)
			}
			a.FindElement(".//NameID").SetText("u-mallory")
			a.SelectElement("Signature").AddChild(orig)
			return finish(t, d)
		}},
		{"XSW7 (original assertion in an Extensions element, evil one outside) is refused", func(t *testing.T, e *env) saml.Response {
			d, r, a := signed(t, e, false)
			ext := etree.NewElement("samlp:Extensions")
			r.RemoveChild(a)
			ext.AddChild(a)
			r.InsertChildAt(r.SelectElement("Status").Index(), ext)
			r.AddChild(evilAssertion(a))
			return finish(t, d)
		}},
		{"XSW8 (original assertion inside an Object of the evil assertion's signature) is refused", func(t *testing.T, e *env) saml.Response {
			d, _, a := signed(t, e, false)
			orig := a.Copy()
			if s := orig.SelectElement("Signature"); s != nil {
				orig.RemoveChild(s)
			}
			a.FindElement(".//NameID").SetText("u-mallory")
			obj := a.SelectElement("Signature").CreateElement("ds:Object")
			obj.AddChild(orig)
			return finish(t, d)
		}},
	}
}

func TestMetadata(t *testing.T) {
	e := newEnv(t, func(c *saml.Config) { c.SignAuthnRequests = true })
	b, err := e.conn.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		XMLName  xml.Name `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntityDescriptor"`
		EntityID string   `xml:"entityID,attr"`
		SP       struct {
			XMLName             xml.Name `xml:"urn:oasis:names:tc:SAML:2.0:metadata SPSSODescriptor"`
			Protocols           string   `xml:"protocolSupportEnumeration,attr"`
			AuthnRequestsSigned bool     `xml:"AuthnRequestsSigned,attr"`
			Keys                []struct {
				Use  string `xml:"use,attr"`
				Cert string `xml:"http://www.w3.org/2000/09/xmldsig# KeyInfo>X509Data>X509Certificate"`
			} `xml:"urn:oasis:names:tc:SAML:2.0:metadata KeyDescriptor"`
			ACS []struct {
				Binding  string `xml:"Binding,attr"`
				Location string `xml:"Location,attr"`
				Index    string `xml:"index,attr"`
			} `xml:"urn:oasis:names:tc:SAML:2.0:metadata AssertionConsumerService"`
			SLO []struct {
				Binding  string `xml:"Binding,attr"`
				Location string `xml:"Location,attr"`
			} `xml:"urn:oasis:names:tc:SAML:2.0:metadata SingleLogoutService"`
		}
	}
	if err := xml.Unmarshal(b, &md); err != nil {
		t.Fatalf("metadata does not parse as an md:EntityDescriptor: %v\n%s", err, b)
	}
	if md.EntityID != spEntity || !strings.Contains(md.SP.Protocols, "urn:oasis:names:tc:SAML:2.0:protocol") || !md.SP.AuthnRequestsSigned {
		t.Errorf("entity %q protocols %q signed %v", md.EntityID, md.SP.Protocols, md.SP.AuthnRequestsSigned)
	}
	if len(md.SP.ACS) != 1 || md.SP.ACS[0].Binding != "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" || md.SP.ACS[0].Location != acsURL || md.SP.ACS[0].Index == "" {
		t.Errorf("ACS = %+v", md.SP.ACS)
	}
	uses := map[string]string{}
	for _, k := range md.SP.Keys {
		uses[k.Use] = strings.Join(strings.Fields(k.Cert), "")
	}
	want := base64.StdEncoding.EncodeToString(e.spKey.Certificate[0])
	if uses["signing"] != want || uses["encryption"] != want {
		t.Errorf("key descriptors = %v, want the SP certificate for signing and encryption", uses)
	}
	if len(md.SP.SLO) != 1 || md.SP.SLO[0].Location != sloURL {
		t.Errorf("SLO = %+v", md.SP.SLO)
	}
}

func TestAuthnRequest(t *testing.T) {
	ctx := context.Background()
	t.Run("the redirect binding carries a signed, deflated request when signing is on", func(t *testing.T) {
		e := newEnv(t, func(c *saml.Config) { c.SignAuthnRequests = true })
		req, err := e.conn.Begin(ctx, "/", false)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(req.RedirectURL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if u.Scheme+"://"+u.Host+u.Path != idpSSO || q.Get("SAMLRequest") == "" || q.Get("Signature") == "" || q.Get("SigAlg") == "" {
			t.Fatalf("redirect URL = %s", req.RedirectURL)
		}
	})
	t.Run("the POST binding carries the request in a form", func(t *testing.T) {
		e := newEnv(t, func(c *saml.Config) { c.Binding = saml.BindingPost; c.SignAuthnRequests = true })
		req, err := e.conn.Begin(ctx, "/", false)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(req.Form.Get("SAMLRequest"))
		if err != nil || req.PostURL != idpSSO {
			t.Fatalf("POST request = %+v, %v", req, err)
		}
		if !strings.Contains(string(raw), `ID="`+req.RequestID+`"`) || !strings.Contains(string(raw), "SignatureValue") ||
			!strings.Contains(string(raw), `AssertionConsumerServiceURL="`+acsURL+`"`) {
			t.Fatalf("AuthnRequest = %s", raw)
		}
	})
}

func TestLogout(t *testing.T) {
	ctx := context.Background()
	logoutRequest := func(e *env, id string) *etree.Element {
		r := etree.NewElement("samlp:LogoutRequest")
		r.CreateAttr("xmlns:samlp", nsP)
		r.CreateAttr("xmlns:saml", nsA)
		r.CreateAttr("ID", id)
		r.CreateAttr("Version", "2.0")
		r.CreateAttr("IssueInstant", ts(e.clk.Now()))
		r.CreateAttr("Destination", sloURL)
		r.CreateElement("saml:Issuer").SetText(idpEntity)
		r.CreateElement("saml:NameID").SetText("u-alice")
		return r
	}
	form := func(t *testing.T, el *etree.Element) func() *http.Request {
		d := etree.NewDocument()
		d.SetRoot(el)
		body := url.Values{"SAMLRequest": {encode(t, d)}}.Encode()
		return func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, sloURL, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}
	}

	t.Run("SP-initiated logout goes to the IdP's SLO endpoint with a signed request", func(t *testing.T) {
		e := newEnv(t, nil)
		u, ok, err := e.conn.LogoutURL(ctx, "u-alice", "_s1", "")
		if err != nil || !ok || !strings.HasPrefix(u, idpSLO+"?") || !strings.Contains(u, "Signature=") {
			t.Fatalf("LogoutURL = %q, %v, %v", u, ok, err)
		}
	})
	t.Run("an IdP without SLO gets no logout request", func(t *testing.T) {
		e := newEnv(t, func(c *saml.Config) { c.IDPMetadataXML = testIdP{key: keyPair(t, "x", time.Now())}.metadata(false) })
		if _, ok, err := e.conn.LogoutURL(ctx, "u-alice", "", ""); ok || err != nil {
			t.Fatalf("ok = %v, err = %v", ok, err)
		}
	})
	t.Run("a signed LogoutRequest is accepted once", func(t *testing.T) {
		e := newEnv(t, nil)
		f := form(t, sign(t, e.idp.key, logoutRequest(e, "_lr1")))
		lr, err := e.conn.HandleLogoutRequest(ctx, f())
		if err != nil || lr.NameID != "u-alice" || lr.ID != "_lr1" {
			t.Fatalf("HandleLogoutRequest = %+v, %v", lr, err)
		}
		if _, err := e.conn.HandleLogoutRequest(ctx, f()); !groupgate.IsCode(err, groupgate.Invalid) {
			t.Fatalf("replayed logout request: %v", err)
		}
		if _, ok, err := e.conn.LogoutResponseURL(lr.ID, ""); !ok || err != nil {
			t.Fatalf("LogoutResponseURL: %v %v", ok, err)
		}
	})
	t.Run("an unsigned LogoutRequest is refused", func(t *testing.T) {
		e := newEnv(t, nil)
		_, err := e.conn.HandleLogoutRequest(ctx, form(t, logoutRequest(e, "_lr2"))())
		if !groupgate.IsCode(err, groupgate.Unauthenticated) || !strings.Contains(err.Error(), "unsigned") {
			t.Fatalf("unsigned logout request: %v", err)
		}
	})
	t.Run("a LogoutRequest signed by another key is refused", func(t *testing.T) {
		e := newEnv(t, nil)
		_, err := e.conn.HandleLogoutRequest(ctx, form(t, sign(t, keyPair(t, "evil", e.clk.Now()), logoutRequest(e, "_lr3")))())
		if !groupgate.IsCode(err, groupgate.Unauthenticated) {
			t.Fatalf("forged logout request: %v", err)
		}
	})
}
