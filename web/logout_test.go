package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var logoutForm = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

// post sends a POST with c to target with the given headers and returns
// the response, body read.
func post(t *testing.T, c *http.Client, target string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

// TestLogoutNeedsASameOriginPOST: a cross-site link, image or form must
// not sign anyone out (logout CSRF). GET /logout shows a confirm page whose
// form POSTs back, and only a same-origin POST ends the session.
func TestLogoutNeedsASameOriginPOST(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0]})
	crossSite := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}

	for _, hdr := range []struct {
		name   string
		header http.Header
	}{
		{"a cross-site GET to /logout", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Dest": {"image"}}},
		{"a top-level GET to /logout", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"navigate"}}},
		{"a GET to /logout without fetch metadata", nil},
	} {
		t.Run(hdr.name+" shows a confirm page and the session stays", func(t *testing.T) {
			c := h.browser()
			h.login(c, "demo", "alice", "/", "/")
			resp := h.get(c, h.srv.URL+"/logout", hdr.header)
			body := readBody(t, resp)
			m := logoutForm.FindStringSubmatch(body)
			if resp.StatusCode != http.StatusOK || m == nil || m[1] != h.srv.URL+"/logout" {
				t.Fatalf("GET /logout = %s, want 200 with a POST form to /logout:\n%s", resp.Status, body)
			}
			if st := h.auth(c).StatusCode; st != http.StatusOK {
				t.Fatalf("/auth after GET /logout = %d, want 200", st)
			}
		})
	}

	t.Run("the confirm page's form, posted from the page, signs out", func(t *testing.T) {
		c := h.browser()
		h.login(c, "demo", "alice", "/", "/")
		resp := h.get(c, h.srv.URL+"/logout", nil)
		body := readBody(t, resp)
		// The page must let the browser say where the POST comes from: with
		// Referrer-Policy no-referrer, a form POST carries "Origin: null".
		if rp := resp.Header.Get("Referrer-Policy"); rp == "no-referrer" || rp == "" {
			t.Errorf("confirm page Referrer-Policy = %q, want one that keeps a same-origin Origin", rp)
		}
		m := logoutForm.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no form in %s", body)
		}
		u, _ := url.Parse(h.srv.URL)
		resp, _ = post(t, c, m[1], map[string]string{"Origin": u.Scheme + "://" + u.Host})
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "id_token_hint=") {
			t.Fatalf("POST /logout = %s to %q, want 303 to the IdP's end-session endpoint", resp.Status, resp.Header.Get("Location"))
		}
		if st := h.auth(c).StatusCode; st != http.StatusUnauthorized {
			t.Fatalf("/auth after POST /logout = %d, want 401", st)
		}
	})

	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"a cross-site POST to /logout", crossSite},
		{"a POST to /logout from an old browser of another site", map[string]string{"Origin": "https://evil.example"}},
		{"a POST to /logout from a page that hides its origin", map[string]string{"Origin": "null"}},
	} {
		t.Run(tc.name+" is refused and the session stays", func(t *testing.T) {
			c := h.browser()
			h.login(c, "demo", "alice", "/", "/")
			resp, _ := post(t, c, h.srv.URL+"/logout", tc.header)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST /logout = %s, want 403", resp.Status)
			}
			if st := h.auth(c).StatusCode; st != http.StatusOK {
				t.Fatalf("/auth after the refused logout = %d, want 200", st)
			}
		})
	}

	t.Run("GET /logout without a session goes to the signed-out page", func(t *testing.T) {
		resp := h.get(h.browser(), h.srv.URL+"/logout", nil)
		readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != h.srv.URL+"/logged-out" {
			t.Fatalf("GET /logout = %s to %q", resp.Status, resp.Header.Get("Location"))
		}
	})
}

// TestSAMLLogoutNeedsASameOriginPOST: the same for /saml/NAME/logout, which
// ended the session on any cross-site request.
func TestSAMLLogoutNeedsASameOriginPOST(t *testing.T) {
	logoutURL := func(h *samlHarness) string { return h.base + "/saml/corp/logout" }

	t.Run("a cross-site GET shows a confirm page and the session stays", func(t *testing.T) {
		h := newSAMLHarnessWith(t, samlOptions{slo: true})
		c := h.browser()
		h.login(c, h.urls.Login, "alice", "/")
		req, _ := http.NewRequest(http.MethodGet, logoutURL(h), nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if m := logoutForm.FindStringSubmatch(body); resp.StatusCode != http.StatusOK || m == nil || m[1] != logoutURL(h) {
			t.Fatalf("GET %s = %s, want 200 with a POST form back:\n%s", logoutURL(h), resp.Status, body)
		}
		if st := h.auth(c); st != http.StatusOK {
			t.Fatalf("/auth after the GET = %d, want 200", st)
		}
	})

	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"a cross-site POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
		{"a POST from another origin", map[string]string{"Origin": "https://evil.example"}},
	} {
		t.Run(tc.name+" is refused and the session stays", func(t *testing.T) {
			h := newSAMLHarnessWith(t, samlOptions{slo: true})
			c := h.browser()
			h.login(c, h.urls.Login, "alice", "/")
			resp, _ := post(t, c, logoutURL(h), tc.header)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s = %s, want 403", logoutURL(h), resp.Status)
			}
			if st := h.auth(c); st != http.StatusOK {
				t.Fatalf("/auth after the refused logout = %d, want 200", st)
			}
		})
	}

	t.Run("a same-origin POST ends the session and goes through the IdP's SLO endpoint", func(t *testing.T) {
		h := newSAMLHarnessWith(t, samlOptions{slo: true})
		c := h.browser()
		h.login(c, h.urls.Login, "alice", "/")
		resp, _ := post(t, c, logoutURL(h), map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": h.base})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, h.base+"/saml-idp-slo?SAMLRequest=") {
			t.Fatalf("POST %s = %s to %q", logoutURL(h), resp.Status, loc)
		}
		if st := h.auth(c); st != http.StatusUnauthorized {
			t.Fatalf("/auth after logout = %d, want 401", st)
		}
	})
}
