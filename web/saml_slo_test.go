package web_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestSAMLLogoutRequestActsOnlyOnWhatItsSignatureCovers: an IdP-signed
// LogoutRequest about one user must not carry an unsigned one about
// another past the signature check, whether smuggled in the query under a
// percent-encoded duplicate name or in a POST body, and a signed query
// cannot be reused with fresh smuggled requests.
func TestSAMLLogoutRequestActsOnlyOnWhatItsSignatureCovers(t *testing.T) {
	// unsignedValue is the SAMLRequest value (as sent) of an unsigned
	// Redirect-binding LogoutRequest for nameID.
	unsignedValue := func(h *samlHarness, nameID string) string {
		_, v, _ := strings.Cut(redirectQuery(t, nil, logoutRequest(h, nameID), ""), "SAMLRequest=")
		return v
	}
	signedBob := func(h *samlHarness) string { return redirectQuery(t, h.idp.Signer(), logoutRequest(h, "u-bob"), "") }
	cases := []struct {
		name string
		send func(w *sloWorld) (*http.Response, error)
	}{
		{name: "an unsigned request for alice before bob's signed one, under the name SAMLReques%74", send: func(w *sloWorld) (*http.Response, error) {
			return w.h.browser().Get(w.h.urls.SLO + "?SAMLReques%74=" + unsignedValue(w.h, "u-alice") + "&" + signedBob(w.h))
		}},
		{name: "an unsigned request for alice after bob's signed one, under the name SAMLReques%74", send: func(w *sloWorld) (*http.Response, error) {
			return w.h.browser().Get(w.h.urls.SLO + "?" + signedBob(w.h) + "&SAMLReques%74=" + unsignedValue(w.h, "u-alice"))
		}},
		{name: "an unsigned request for alice under the name %53AMLRequest", send: func(w *sloWorld) (*http.Response, error) {
			return w.h.browser().Get(w.h.urls.SLO + "?%53AMLRequest=" + unsignedValue(w.h, "u-alice") + "&" + signedBob(w.h))
		}},
		{name: "a POST body with an unsigned request for alice beside bob's signed query", send: func(w *sloWorld) (*http.Response, error) {
			body := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(xmlBytes(t, logoutRequest(w.h, "u-alice")))}}
			return w.h.browser().PostForm(w.h.urls.SLO+"?"+signedBob(w.h), body)
		}},
		{name: "a POST body with a deflated unsigned request for alice beside bob's signed query", send: func(w *sloWorld) (*http.Response, error) {
			v, _ := url.QueryUnescape(unsignedValue(w.h, "u-alice"))
			return w.h.browser().PostForm(w.h.urls.SLO+"?"+signedBob(w.h), url.Values{"SAMLRequest": {v}})
		}},
		{name: "a POST body with bob's query signature parameters and an unsigned request for alice", send: func(w *sloWorld) (*http.Response, error) {
			q, _ := url.ParseQuery(signedBob(w.h))
			v, _ := url.QueryUnescape(unsignedValue(w.h, "u-alice"))
			q.Set("SAMLRequest", v)
			return w.h.browser().PostForm(w.h.urls.SLO, q)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused and ends nobody's session", func(t *testing.T) {
			w := newSLOWorld(t, samlOptions{})
			resp, err := tc.send(w)
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("SLO = %s, want a 4xx refusal: %s", resp.Status, body)
			}
			w.check(t, true)
		})
	}

	t.Run("a signed query, once used, cannot carry fresh unsigned requests", func(t *testing.T) {
		w := newSLOWorld(t, samlOptions{})
		signed := signedBob(w.h)
		resp, err := w.h.browser().Get(w.h.urls.SLO + "?" + signed)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther || w.h.auth(w.bob) != http.StatusUnauthorized {
			t.Fatalf("bob's signed logout = %s, bob's /auth %d", resp.Status, w.h.auth(w.bob))
		}
		for i := range 3 {
			resp, err := w.h.browser().Get(w.h.urls.SLO + "?SAMLReques%74=" + unsignedValue(w.h, "u-alice") + "&" + signed)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if resp.StatusCode < 400 {
				t.Errorf("replay %d with a smuggled request = %s", i+1, resp.Status)
			}
		}
		for i, c := range []*http.Client{w.h.holding(w.aliceSession), w.alice2} {
			if st := w.h.auth(c); st != http.StatusOK {
				t.Errorf("/auth for alice's session %d = %d, want 200", i+1, st)
			}
		}
	})

	t.Run("a signed POST-binding request ignores the query", func(t *testing.T) {
		w := newSLOWorld(t, samlOptions{})
		h := w.h
		// The query names alice unsigned; the signed body names bob: only
		// bob's sessions end.
		target := h.urls.SLO + "?SAMLRequest=" + unsignedValue(h, "u-alice")
		resp, err := h.browser().PostForm(target, url.Values{"SAMLRequest": {postSigned(t, idpKey(h), logoutRequest(h, "u-bob"))}})
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("SLO = %s", resp.Status)
		}
		if st := h.auth(w.bob); st != http.StatusUnauthorized {
			t.Errorf("bob's /auth = %d, want 401", st)
		}
		if st := h.auth(w.alice2); st != http.StatusOK {
			t.Errorf("alice's /auth = %d, want 200", st)
		}
	})
}
