package saml

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/beevik/etree"
	"github.com/russellhaering/gosaml2/types"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
)

type samlAssertion = types.Assertion

const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
)

// unverifiedResponse is what may be read before the signature check: only
// enough to find the pending attempt, which is re-checked once verified.
type unverifiedResponse struct {
	InResponseTo string
}

// inspect parses the raw response and refuses shapes no honest IdP sends
// before any cryptography runs: XML comments anywhere (the comment
// injection that truncates a NameID under a signature that still holds),
// a root that is not a Response, and more than one Response, Assertion or
// EncryptedAssertion element anywhere in the document (every XML signature
// wrapping shape, XSW1–XSW8, adds a second copy of one of them). gosaml2
// and goxmldsig check the signatures themselves; this is the second wall.
func inspect(raw []byte) (unverifiedResponse, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return unverifiedResponse{}, groupgate.WrapError(groupgate.Invalid, err, "the SAML response is not well-formed XML")
	}
	root := doc.Root()
	if root == nil || root.Tag != "Response" || root.NamespaceURI() != nsProtocol {
		return unverifiedResponse{}, groupgate.Errorf(groupgate.Invalid, "the SAML message is not a Response")
	}
	counts := map[string]int{}
	var walk func(el *etree.Element) error
	walk = func(el *etree.Element) error {
		for _, tok := range el.Child {
			switch t := tok.(type) {
			case *etree.Comment:
				return groupgate.Errorf(groupgate.Unauthenticated, "the SAML response contains XML comments, which are refused")
			case *etree.Element:
				switch ns := t.NamespaceURI(); {
				case ns == nsProtocol && t.Tag == "Response",
					ns == nsAssertion && (t.Tag == "Assertion" || t.Tag == "EncryptedAssertion"):
					counts[t.Tag]++
				}
				if err := walk(t); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return unverifiedResponse{}, err
	}
	for _, tok := range doc.Child {
		if _, ok := tok.(*etree.Comment); ok {
			return unverifiedResponse{}, groupgate.Errorf(groupgate.Unauthenticated, "the SAML response contains XML comments, which are refused")
		}
	}
	// An IdP that refuses a login (a wrong password at the IdP is not
	// one: it asks again) answers a Response with an error status and no
	// assertion. The status is read unverified: it only picks the page
	// that says so, and the login is refused either way.
	if status, ok := errorStatus(root); ok {
		return unverifiedResponse{}, groupgate.WrapError(groupgate.Unauthenticated, broker.ErrIdPRefused,
			"the identity provider refused the login (status %s)", status)
	}
	if counts["Response"] > 0 {
		return unverifiedResponse{}, groupgate.Errorf(groupgate.Unauthenticated, "the SAML response contains a nested Response (signature wrapping)")
	}
	if n := counts["Assertion"] + counts["EncryptedAssertion"]; n != 1 {
		return unverifiedResponse{}, groupgate.Errorf(groupgate.Unauthenticated,
			"the SAML response must carry exactly one assertion, it has %d (signature wrapping?)", n)
	}
	return unverifiedResponse{InResponseTo: root.SelectAttrValue("InResponseTo", "")}, nil
}

// stripResponseSignature returns raw without the Response's own enveloped
// signature (the direct ds:Signature child of the root).
func stripResponseSignature(raw []byte) ([]byte, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, fmt.Errorf("parse SAML response: %w", err)
	}
	root := doc.Root()
	for _, el := range root.ChildElements() {
		if el.Tag == "Signature" && el.NamespaceURI() == nsDSig {
			root.RemoveChild(el)
		}
	}
	b, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("encode SAML response: %w", err)
	}
	return b, nil
}

// statusSuccess is SAML core §3.2.2.2's top-level success code.
const statusSuccess = "urn:oasis:names:tc:SAML:2.0:status:Success"

// statusWord is what is shown of a status code URI: its last word, and
// only when it is a plain one, since the value is unverified.
var statusWord = regexp.MustCompile(`^[A-Za-z]{1,40}$`)

// errorStatus reports whether the Response's top-level status is other
// than Success (SAML core §3.2.2.2), naming the most specific code.
func errorStatus(root *etree.Element) (string, bool) {
	code := root.FindElement("./Status/StatusCode")
	if code == nil {
		return "", false
	}
	top := code.SelectAttrValue("Value", "")
	if top == "" || top == statusSuccess {
		return "", false
	}
	word := top
	if sub := code.FindElement("./StatusCode"); sub != nil && sub.SelectAttrValue("Value", "") != "" {
		word = sub.SelectAttrValue("Value", "")
	}
	word = word[strings.LastIndex(word, ":")+1:]
	if !statusWord.MatchString(word) {
		word = "unknown"
	}
	return word, true
}
