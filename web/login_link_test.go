package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
)

// A login the account-linking rules refuse (here: the IdP's user name
// belongs to another account and its verified email to none) ends on a
// clear page, without a session.
func TestARefusedAccountLinkShowsAPageAndStartsNoSession(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0]})
	// Someone else's account already has the user name "alice".
	if _, _, err := h.syncer.Login(t.Context(), groupgate.Identity{Provider: "elsewhere", Subject: "x", Username: "alice", Email: "someone@example.com", EmailVerified: true}); err != nil {
		t.Fatal(err)
	}
	c := h.browser()
	resp := h.signIn(c, h.srv.URL+"/login?provider=demo", "alice", nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "belongs to another account") {
		t.Fatalf("callback = %s, want 409 with the reason:\n%s", resp.Status, body)
	}
	u, _ := url.Parse(h.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "_groupgate" {
			t.Fatalf("a refused login left a session cookie")
		}
	}
}
