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
	"net/url"
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
}

// maxLogoutAge bounds how old an incoming LogoutRequest may be.
const maxLogoutAge = 5 * time.Minute

// HandleLogoutRequest verifies an incoming LogoutRequest: over HTTP-POST
// (form) it must carry an XML signature by the IdP, over HTTP-Redirect
// (query) a query signature; unsigned requests are refused, since anyone
// could otherwise end a user's sessions. Each request ID is accepted once.
// Errors are *groupgate.Error: Unauthenticated for an unsigned or invalid
// request, Invalid for a replayed or stale one.
func (c *Connector) HandleLogoutRequest(ctx context.Context, form url.Values, rawQuery string) (LogoutRequest, error) {
	now := c.now()
	m := c.idp.Load()
	sp := c.serviceProvider(m, now)
	encoded := form.Get("SAMLRequest")
	if encoded == "" {
		return LogoutRequest{}, groupgate.Errorf(groupgate.Invalid, "the request carries no SAML LogoutRequest")
	}
	if form.Get("Signature") != "" {
		if err := verifyQuerySignature(rawQuery, m); err != nil {
			return LogoutRequest{}, groupgate.WrapError(groupgate.Unauthenticated, err, "the SAML logout request's signature does not verify")
		}
		// The query signature covers the whole message.
		sp.SkipSignatureValidation = true
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
	if d := now.Sub(req.IssueInstant); d > maxLogoutAge+c.cfg.ClockSkew || d < -c.cfg.ClockSkew {
		return LogoutRequest{}, groupgate.Errorf(groupgate.Invalid, "the SAML logout request is stale or from the future")
	}
	fresh, err := c.replay.Remember(ctx, "saml-logout:"+c.name+":"+req.ID, req.IssueInstant.Add(maxLogoutAge+2*c.cfg.ClockSkew))
	if err != nil {
		return LogoutRequest{}, groupgate.WrapError(groupgate.Unavailable, err, "cannot check the SAML logout request right now; try again")
	}
	if !fresh {
		return LogoutRequest{}, groupgate.Errorf(groupgate.Invalid, "this SAML logout request was already used")
	}
	return LogoutRequest{ID: req.ID, NameID: req.NameID.Value}, nil
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

// verifyQuerySignature checks an HTTP-Redirect binding signature over the
// query exactly as received (SAML bindings §3.4.4.1), RSA-SHA256 only,
// against the IdP's metadata certificates.
func verifyQuerySignature(rawQuery string, m *idpMetadata) error {
	parts := map[string]string{}
	for _, kv := range bytes.Split([]byte(rawQuery), []byte("&")) {
		k, v, _ := bytes.Cut(kv, []byte("="))
		if _, dup := parts[string(k)]; dup {
			return fmt.Errorf("parameter %s given twice", k)
		}
		parts[string(k)] = string(v)
	}
	alg, err := url.QueryUnescape(parts["SigAlg"])
	if err != nil || alg != dsig.RSASHA256SignatureMethod {
		return fmt.Errorf("signature algorithm %q is not supported (RSA-SHA256 only)", parts["SigAlg"])
	}
	sigText, err := url.QueryUnescape(parts["Signature"])
	if err != nil {
		return fmt.Errorf("signature parameter: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	signed := "SAMLRequest=" + parts["SAMLRequest"]
	if rs, ok := parts["RelayState"]; ok {
		signed += "&RelayState=" + rs
	}
	signed += "&SigAlg=" + parts["SigAlg"]
	digest := sha256.Sum256([]byte(signed))
	for _, cert := range m.certs {
		if pub, ok := cert.PublicKey.(*rsa.PublicKey); ok && rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil {
			return nil
		}
	}
	return fmt.Errorf("no IdP certificate verifies the signature")
}
