package saml

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	saml2 "github.com/russellhaering/gosaml2"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/groupgate/groupgate"
)

const nameIDUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"

// LogoutURL returns the IdP's SLO URL carrying a LogoutRequest for nameID,
// signed over the query (HTTP-Redirect binding, SAML bindings §3.4.4.1);
// ok is false when the IdP advertises no HTTP-Redirect SLO endpoint.
func (c *Connector) LogoutURL(_ context.Context, nameID, sessionIndex, relayState string) (string, bool, error) {
	m := c.idp.Load()
	if m.sloURL == "" || m.sloBinding != saml2.BindingHttpRedirect {
		return "", false, nil
	}
	sp := c.serviceProvider(m, c.now())
	sp.NameIdFormat = nameIDUnspecified
	doc, err := sp.BuildLogoutRequestDocumentNoSig(nameID, sessionIndex)
	if err != nil {
		return "", false, groupgate.WrapError(groupgate.Internal, err, "cannot build the SAML logout request")
	}
	u, err := sp.BuildLogoutURLRedirect(relayState, doc)
	if err != nil {
		return "", false, groupgate.WrapError(groupgate.Internal, err, "cannot build the SAML logout redirect")
	}
	return u, true, nil
}

// LogoutRequest is a verified IdP-initiated logout.
type LogoutRequest struct {
	ID     string
	NameID string
	// RelayState came with the request and is covered by its signature
	// (Redirect binding) or was posted beside it (POST binding, where SAML
	// bindings §3.5.3 leaves it unsigned); it is only echoed to the IdP.
	RelayState string
}

// maxLogoutAge bounds how old an incoming LogoutRequest may be.
const maxLogoutAge = 5 * time.Minute

// HandleLogoutRequest verifies an incoming LogoutRequest and reads it from
// exactly what was verified. The binding is the method: a GET is the
// HTTP-Redirect binding, whose query signature (SAML bindings §3.4.4.1)
// must cover every value acted on, so the query is parsed once, by this
// function, and a parameter given twice (after percent-decoding, so
// "SAMLReques%74" counts as SAMLRequest) or any body is refused; a POST is
// the HTTP-POST binding, whose message must carry the IdP's XML signature,
// read from the body alone (the query is ignored). Unsigned requests are
// refused, since anyone could otherwise end a user's sessions, and each
// request ID is accepted once while its IssueInstant/NotOnOrAfter window
// lasts (the replay cache is shared by every replica). Errors are
// *groupgate.Error: Unauthenticated for an unsigned or invalid request,
// Invalid for a malformed, replayed or stale one, Unavailable when the
// replay cache cannot be reached.
func (c *Connector) HandleLogoutRequest(ctx context.Context, r *http.Request) (LogoutRequest, error) {
	now := c.now()
	m := c.idp.Load()
	sp := c.serviceProvider(m, now)
	var encoded, relayState string
	switch r.Method {
	case http.MethodGet:
		if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
			return LogoutRequest{}, groupgate.Errorf(groupgate.Invalid, "a Redirect-binding SAML logout request carries no body")
		}
		q, err := parseSignedQuery(r.URL.RawQuery)
		if err != nil {
			return LogoutRequest{}, groupgate.WrapError(groupgate.Unauthenticated, err, "the SAML logout request's query cannot be verified")
		}
		if q.values["Signature"] == "" {
			return LogoutRequest{}, groupgate.Errorf(groupgate.Unauthenticated, "unsigned SAML logout requests are refused")
		}
		if err := q.verify("SAMLRequest", m); err != nil {
			return LogoutRequest{}, groupgate.WrapError(groupgate.Unauthenticated, err, "the SAML logout request's signature does not verify")
		}
		encoded, relayState = q.values["SAMLRequest"], q.values["RelayState"]
		// The query signature covers the whole message.
		sp.SkipSignatureValidation = true
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			return LogoutRequest{}, groupgate.WrapError(groupgate.Invalid, err, "the SAML logout request could not be read")
		}
		for k, vs := range r.PostForm {
			if len(vs) > 1 {
				return LogoutRequest{}, groupgate.Errorf(groupgate.Invalid, "the SAML logout request gives %s twice", k)
			}
		}
		if r.PostForm.Has("Signature") || r.PostForm.Has("SigAlg") {
			return LogoutRequest{}, groupgate.Errorf(groupgate.Unauthenticated,
				"a POST-binding SAML logout request must be signed in its XML, not by a Signature parameter")
		}
		encoded, relayState = r.PostForm.Get("SAMLRequest"), r.PostForm.Get("RelayState")
	default:
		return LogoutRequest{}, groupgate.Errorf(groupgate.Invalid, "SAML logout requests come by GET (Redirect binding) or POST")
	}
	if encoded == "" {
		return LogoutRequest{}, groupgate.Errorf(groupgate.Invalid, "the request carries no SAML LogoutRequest")
	}
	req, err := sp.ValidateEncodedLogoutRequestPOST(encoded)
	if err != nil {
		return LogoutRequest{}, groupgate.WrapError(groupgate.Unauthenticated, err, "the SAML logout request does not verify")
	}
	if !sp.SkipSignatureValidation && !req.SignatureValidated {
		return LogoutRequest{}, groupgate.Errorf(groupgate.Unauthenticated, "unsigned SAML logout requests are refused")
	}
	if req.NameID == nil || req.NameID.Value == "" || req.ID == "" {
		return LogoutRequest{}, groupgate.Errorf(groupgate.Unauthenticated, "the SAML logout request names no subject")
	}
	// SAML core §3.7.1: IssueInstant, and NotOnOrAfter when given, bound
	// the request's life; the replay cache remembers its ID that long.
	if d := now.Sub(req.IssueInstant); d > maxLogoutAge+c.cfg.ClockSkew || d < -c.cfg.ClockSkew {
		return LogoutRequest{}, groupgate.Errorf(groupgate.Invalid, "the SAML logout request is stale or from the future")
	}
	until := req.IssueInstant.Add(maxLogoutAge + 2*c.cfg.ClockSkew)
	if noa, ok, err := logoutNotOnOrAfter(encoded); err != nil {
		return LogoutRequest{}, groupgate.WrapError(groupgate.Invalid, err, "the SAML logout request's NotOnOrAfter is malformed")
	} else if ok {
		if !now.Add(-c.cfg.ClockSkew).Before(noa) {
			return LogoutRequest{}, groupgate.Errorf(groupgate.Invalid, "the SAML logout request has expired (NotOnOrAfter)")
		}
		until = latest(until, noa.Add(c.cfg.ClockSkew))
	}
	fresh, err := c.replay.Remember(ctx, "saml-logout:"+c.name+":"+req.ID, until)
	if err != nil {
		return LogoutRequest{}, groupgate.WrapError(groupgate.Unavailable, err, "cannot check the SAML logout request right now; try again")
	}
	if !fresh {
		return LogoutRequest{}, groupgate.Errorf(groupgate.Invalid, "this SAML logout request was already used")
	}
	return LogoutRequest{ID: req.ID, NameID: req.NameID.Value, RelayState: relayState}, nil
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// logoutNotOnOrAfter reads the optional NotOnOrAfter of the LogoutRequest
// that encoded carries (base64, deflated in the Redirect binding), which
// gosaml2 does not parse. It reads the root element only: the element
// whose signature was just verified.
func logoutNotOnOrAfter(encoded string) (time.Time, bool, error) {
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return time.Time{}, false, err
	}
	doc := etree.NewDocument()
	if doc.ReadFromBytes(raw) != nil {
		b, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(raw)), 1<<20))
		if err != nil {
			return time.Time{}, false, err
		}
		doc = etree.NewDocument()
		if err := doc.ReadFromBytes(b); err != nil {
			return time.Time{}, false, err
		}
	}
	root := doc.Root()
	if root == nil {
		return time.Time{}, false, fmt.Errorf("no root element")
	}
	v := root.SelectAttrValue("NotOnOrAfter", "")
	if v == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil, err
}

// LogoutResponseURL answers a LogoutRequest with a signed LogoutResponse
// over HTTP-Redirect; ok is false when the IdP has no redirect SLO endpoint.
func (c *Connector) LogoutResponseURL(inResponseTo, relayState string) (string, bool, error) {
	m := c.idp.Load()
	if m.sloURL == "" || m.sloBinding != saml2.BindingHttpRedirect {
		return "", false, nil
	}
	sp := c.serviceProvider(m, c.now())
	doc, err := sp.BuildLogoutResponseDocumentNoSig(saml2.StatusCodeSuccess, inResponseTo)
	if err != nil {
		return "", false, groupgate.WrapError(groupgate.Internal, err, "cannot build the SAML logout response")
	}
	u, err := redirectURL(m.sloURL, "SAMLResponse", doc, relayState, sp.SigningContext())
	if err != nil {
		return "", false, groupgate.WrapError(groupgate.Internal, err, "cannot build the SAML logout response")
	}
	return u, true, nil
}

// redirectURL encodes doc for the HTTP-Redirect binding and signs the query
// (SAML bindings §3.4.4.1: param=…&RelayState=…&SigAlg=…, in that order).
func redirectURL(endpoint, param string, doc *etree.Document, relayState string, sc *dsig.SigningContext) (string, error) {
	xmlBytes, err := doc.WriteToBytes()
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err != nil {
		return "", err
	}
	if _, err := fw.Write(xmlBytes); err != nil {
		return "", err
	}
	if err := fw.Close(); err != nil {
		return "", err
	}
	q := url.QueryEscape(param) + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	q += "&SigAlg=" + url.QueryEscape(sc.GetSignatureMethodIdentifier())
	sig, err := sc.SignString(q)
	if err != nil {
		return "", err
	}
	q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" {
		q = u.RawQuery + "&" + q
	}
	u.RawQuery = q
	return u.String(), nil
}

// signedQuery is an HTTP-Redirect binding query parsed once: every value
// acted on comes from values, and the signed octets from raw, so what is
// verified is what is processed.
type signedQuery struct {
	// values are the decoded parameters, each given once.
	values map[string]string
	// raw are the parameters as received, for the signed octets (SAML
	// bindings §3.4.4.1 signs the URL-encoded form as sent).
	raw map[string]string
}

// parseSignedQuery splits rawQuery and refuses any parameter name given
// twice once percent-decoded: Go's url.Values (and many frameworks) would
// read "SAMLReques%74=..." as a second SAMLRequest, so a parser that
// compared raw names would check one value and hand on another.
func parseSignedQuery(rawQuery string) (signedQuery, error) {
	q := signedQuery{values: map[string]string{}, raw: map[string]string{}}
	for _, kv := range strings.Split(rawQuery, "&") {
		if kv == "" {
			continue
		}
		rk, rv, _ := strings.Cut(kv, "=")
		k, err := url.QueryUnescape(rk)
		if err != nil {
			return signedQuery{}, fmt.Errorf("parameter name %q: %w", rk, err)
		}
		v, err := url.QueryUnescape(rv)
		if err != nil {
			return signedQuery{}, fmt.Errorf("parameter %s: %w", k, err)
		}
		if _, dup := q.values[k]; dup {
			return signedQuery{}, fmt.Errorf("parameter %s given twice", k)
		}
		q.values[k], q.raw[k] = v, rv
	}
	return q, nil
}

// verify checks the query signature over param (SAMLRequest or
// SAMLResponse), RelayState and SigAlg exactly as received (SAML bindings
// §3.4.4.1), RSA-SHA256 only, against the IdP's metadata certificates.
func (q signedQuery) verify(param string, m *idpMetadata) error {
	if q.values["SigAlg"] != dsig.RSASHA256SignatureMethod {
		return fmt.Errorf("signature algorithm %q is not supported (RSA-SHA256 only)", q.values["SigAlg"])
	}
	sig, err := base64.StdEncoding.DecodeString(q.values["Signature"])
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	if _, ok := q.raw[param]; !ok {
		return fmt.Errorf("no %s parameter", param)
	}
	signed := param + "=" + q.raw[param]
	if rs, ok := q.raw["RelayState"]; ok {
		signed += "&RelayState=" + rs
	}
	signed += "&SigAlg=" + q.raw["SigAlg"]
	digest := sha256.Sum256([]byte(signed))
	for _, cert := range m.certs {
		if pub, ok := cert.PublicKey.(*rsa.PublicKey); ok && rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil {
			return nil
		}
	}
	return fmt.Errorf("no IdP certificate verifies the signature")
}
