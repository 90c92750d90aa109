package web_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

// failurePage checks one refused sign-in's page: its status, its kind
// (data-reason), and that it says what happened and what to do.
func failurePage(t *testing.T, resp *http.Response, body string, status int, reason string, says ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %s, want %d", resp.Status, status)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("Content-Type %q, want an HTML page", resp.Header.Get("Content-Type"))
	}
	for _, want := range append([]string{`data-reason="` + reason + `"`, "<h2>What to do</h2>"}, says...) {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
}

// TestEveryRefusedSignInHasItsOwnPage: SAML without groups, a deactivated
// account, an IdP error, an expired or replayed attempt and a refused
// account link each get a page that says what happened and what to do
// (issue 13 point 2).
func TestEveryRefusedSignInHasItsOwnPage(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessConfig{backend: backends[0]})
	start := func() string {
		return h.srv.URL + "/login?" + url.Values{"provider": {"demo"}, "rd": {"/"}}.Encode()
	}

	t.Run("an error from the IdP says the IdP did not sign you in and offers to try again", func(t *testing.T) {
		c := h.browser()
		resp := h.get(c, start(), nil)
		readBody(t, resp)
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || loc.Query().Get("state") == "" {
			t.Fatalf("/login = %s to %q", resp.Status, resp.Header.Get("Location"))
		}
		resp = h.get(c, h.srv.URL+"/callback/demo?"+url.Values{"error": {"access_denied"}, "state": {loc.Query().Get("state")}}.Encode(), nil)
		failurePage(t, resp, readBody(t, resp), http.StatusForbidden, "idp-error",
			"Your identity provider did not sign you in", "access_denied", ">Try again</a>")
	})

	t.Run("a replayed callback says the attempt has expired and offers to start again", func(t *testing.T) {
		c := h.browser()
		first := h.signIn(c, start(), "alice", nil, nil)
		readBody(t, first)
		if first.StatusCode != http.StatusSeeOther {
			t.Fatalf("first callback = %s", first.Status)
		}
		resp := h.get(c, first.Request.URL.String(), nil)
		failurePage(t, resp, readBody(t, resp), http.StatusBadRequest, "attempt-gone",
			"This sign-in attempt has expired", ">Start again</a>")
	})

	t.Run("a callback after the attempt's lifetime says the attempt has expired", func(t *testing.T) {
		resp := h.signIn(h.browser(), start(), "alice", func(u *url.URL) {
			if strings.HasPrefix(u.Path, "/callback/") {
				h.clock.Advance(time.Hour)
			}
		}, nil)
		failurePage(t, resp, readBody(t, resp), http.StatusBadRequest, "attempt-gone", "This sign-in attempt has expired")
	})

	t.Run("a deactivated account is told so, with no sign-in link that cannot help", func(t *testing.T) {
		if _, err := h.syncer.SCIMCreateUser(ctx, "test", groupgate.User{UserName: "bob", Email: "bob@example.com", Active: false}, sync.MatchEmail); err != nil {
			t.Fatal(err)
		}
		resp := h.signIn(h.browser(), start(), "bob", nil, nil)
		body := readBody(t, resp)
		failurePage(t, resp, body, http.StatusForbidden, "deactivated", "Your account is deactivated", "reactivate")
		if strings.Contains(body, `class="button"`) {
			t.Errorf("the deactivated page offers a sign-in:\n%s", body)
		}
	})

	t.Run("a sign-in that cannot be linked to an account says an administrator must look", func(t *testing.T) {
		// Another account holds the user name carol's first sign-in would take.
		if _, err := h.syncer.SCIMCreateUser(ctx, "test", groupgate.User{UserName: "carol", Email: "someone-else@example.com", Active: true}, sync.MatchEmail); err != nil {
			t.Fatal(err)
		}
		resp := h.signIn(h.browser(), start(), "carol", nil, nil)
		failurePage(t, resp, readBody(t, resp), http.StatusConflict, "link-refused",
			"This sign-in cannot be linked to your account", "An administrator has to look", "belongs to another account")
	})
}

func TestSAMLRefusalsHaveTheirOwnPages(t *testing.T) {
	h := newSAMLHarness(t, nil)
	t.Run("a SAML login without groups says the IdP sent none and stores nothing", func(t *testing.T) {
		resp := h.signIn(h.browser(), h.urls.Login, "carol")
		failurePage(t, resp, readBody(t, resp), http.StatusForbidden, "no-groups",
			"Your identity provider sent no groups", "sent no group information", "release the groups attribute")
	})
	t.Run("a replayed SAML response says the attempt has expired", func(t *testing.T) {
		readBody(t, h.signIn(h.browser(), h.urls.Login, "alice"))
		resp, err := h.browser().PostForm(h.urls.ACS, url.Values{"SAMLResponse": {h.posted}})
		if err != nil {
			t.Fatal(err)
		}
		failurePage(t, resp, readBody(t, resp), http.StatusBadRequest, "attempt-gone", "This sign-in attempt has expired")
	})
	t.Run("a SAML error status from the IdP says the IdP did not sign you in", func(t *testing.T) {
		doc := `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="r1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">` +
			`<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder">` +
			`<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:RequestDenied"/></samlp:StatusCode></samlp:Status></samlp:Response>`
		resp, err := h.browser().PostForm(h.urls.ACS, url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte(doc))}})
		if err != nil {
			t.Fatal(err)
		}
		failurePage(t, resp, readBody(t, resp), http.StatusForbidden, "idp-error", "Your identity provider did not sign you in", "RequestDenied")
	})
}

func TestLoginWhenAlreadySignedIn(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0]})
	c := h.browser()
	h.login(c, "demo", "alice", "/", "/")
	t.Run("a bare /login names the person and offers to continue or sign out", func(t *testing.T) {
		resp := h.get(c, h.srv.URL+"/login?rd="+url.QueryEscape("https://bsr.example.com/x"), nil)
		body := readBody(t, resp)
		for _, want := range []string{"already signed in as <strong>alice (alice@example.com)</strong>",
			`href="https://bsr.example.com/x">Continue</a>`, `href="` + h.srv.URL + `/logout">Sign out`, "provider=demo-ui"} {
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
				t.Errorf("/login = %s without %q:\n%s", resp.Status, want, body)
			}
		}
	})
	t.Run("naming a provider still starts a new sign-in", func(t *testing.T) {
		resp := h.get(c, h.srv.URL+"/login?provider=demo", nil)
		readBody(t, resp)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("/login?provider=demo = %s", resp.Status)
		}
	})
	t.Run("without a session /login is the picker", func(t *testing.T) {
		resp := h.get(h.browser(), h.srv.URL+"/login", nil)
		if body := readBody(t, resp); strings.Contains(body, "already signed in") || !strings.Contains(body, "Choose how to sign in") {
			t.Fatalf("/login without a session:\n%s", body)
		}
	})
}

func TestSignedOutPage(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0]})
	resp := h.get(h.browser(), h.srv.URL+"/logged-out", nil)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "You are signed out of groupgate") ||
		!strings.Contains(body, `href="`+h.srv.URL+`/login">Sign in again`) {
		t.Fatalf("/logged-out = %s:\n%s", resp.Status, body)
	}
}
