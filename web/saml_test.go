package web_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestSAMLEndpoints(t *testing.T) {
	t.Run("a bound login sets a SameSite=None; Secure cookie, which the cross-site ACS POST needs", func(t *testing.T) {
		bind := true
		h := newSAMLHarnessBound(t, nil, &bind)
		resp, err := h.browser().Get(h.urls.Login)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var found bool
		for _, sc := range resp.Header.Values("Set-Cookie") {
			if strings.HasPrefix(sc, "_groupgate_saml_") {
				found = strings.Contains(sc, "SameSite=None") && strings.Contains(sc, "Secure") && strings.Contains(sc, "HttpOnly")
			}
		}
		if resp.StatusCode != http.StatusFound || !found {
			t.Fatalf("login answered %d with cookies %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
		// Go's cookie jar, like browsers, treats loopback http as a secure
		// context, so the browser that began the login gets through ...
		resp = h.signIn(h.browser(), h.urls.Login, "alice")
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("bound login answered %d", resp.StatusCode)
		}
		// ... and another browser posting the same kind of response (login
		// CSRF: the attacker's own response) is refused.
		resp = h.signInPostingFrom(h.browser(), h.browser(), h.urls.Login, "alice")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "not started in this browser") {
			t.Fatalf("ACS without the binding cookie answered %d: %s", resp.StatusCode, b)
		}
	})

	t.Run("an unsigned LogoutRequest at the SLO endpoint is refused", func(t *testing.T) {
		h := newSAMLHarness(t, nil)
		lr := `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_x" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>x</saml:Issuer><saml:NameID>u-alice</saml:NameID></samlp:LogoutRequest>`
		resp, err := h.browser().PostForm(h.urls.SLO, url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString([]byte(lr))}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("unsigned LogoutRequest answered %d", resp.StatusCode)
		}
	})

	t.Run("an unknown SAML provider is not found", func(t *testing.T) {
		h := newSAMLHarness(t, nil)
		resp, err := http.Get(h.base + "/saml/nope/metadata")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("answered %d", resp.StatusCode)
		}
	})
}
