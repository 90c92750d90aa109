package web_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
)

// TestSAMLPendingLoginSurvivesJunkNamingItsRequestID: the AuthnRequest ID
// is visible to the browser, the IdP and their logs; a POST to the ACS of
// a tampered response naming it must not burn the victim's pending login.
func TestSAMLPendingLoginSurvivesJunkNamingItsRequestID(t *testing.T) {
	h := newSAMLHarness(t, nil)
	victim := h.browser()
	resp, err := victim.Get(h.urls.Login)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusFound {
		resp.Body.Close()
		if resp, err = victim.Get(resp.Header.Get("Location")); err != nil {
			t.Fatal(err)
		}
	}
	action, fields := h.form(resp)
	fields.Set("username", "alice")
	fields.Set("password", "alice-password")
	target, _ := url.Parse(h.base)
	target, _ = target.Parse(action)
	if resp, err = victim.PostForm(target.String(), fields); err != nil {
		t.Fatal(err)
	}
	acs, posted := h.form(resp)
	genuine := posted.Get("SAMLResponse")
	raw, err := base64.StdEncoding.DecodeString(genuine)
	if err != nil || !bytes.Contains(raw, []byte("InResponseTo=")) {
		t.Fatalf("the IdP's response answers no request: %v", err)
	}

	// The attacker posts the same response readdressed: it names the
	// victim's request ID but does not verify.
	forged := bytes.ReplaceAll(raw, []byte(`Destination="`+h.urls.ACS+`"`), []byte(`Destination="https://evil.example/acs"`))
	if bytes.Equal(forged, raw) {
		t.Fatal("the IdP's response names no Destination to change")
	}
	resp, err = h.browser().PostForm(acs, url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(forged)}})
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged response = %s, want 403", resp.Status)
	}

	resp, err = victim.PostForm(acs, posted)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the victim's genuine response after the attack = %s, want 303:\n%s", resp.Status, body)
	}
	if st := h.auth(victim); st != http.StatusOK {
		t.Fatalf("/auth for the victim = %d, want 200", st)
	}
}
