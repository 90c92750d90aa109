package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

func TestWhoamiForBrowsersAndScripts(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0]})
	c := h.browser()
	h.login(c, "demo", "bob", "/", "/")

	t.Run("a browser gets a page with the user, groups and roles with their sources", func(t *testing.T) {
		resp := h.get(c, h.srv.URL+"/whoami", http.Header{"Accept": {browserAccept}})
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("/whoami = %s %q\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
		}
		for _, want := range []string{"Signed in as <strong>bob</strong>", `<span class="tag">eng</span>`, "<td>acme</td><td>MEMBER</td>", "group <span class=\"tag\">eng</span>: MEMBER"} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q:\n%s", want, body)
			}
		}
		if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("page headers: %v", resp.Header)
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept") {
			t.Errorf("Vary = %q, want Accept", resp.Header.Get("Vary"))
		}
	})
	t.Run("a script gets the JSON document", func(t *testing.T) {
		for _, accept := range []string{"", "*/*", "application/json"} {
			hdr := http.Header{}
			if accept != "" {
				hdr.Set("Accept", accept)
			}
			resp := h.get(c, h.srv.URL+"/whoami", hdr)
			var got struct {
				User string `json:"user"`
			}
			if err := json.Unmarshal([]byte(readBody(t, resp)), &got); err != nil || got.User != "bob" {
				t.Fatalf("Accept %q: %s, user %q, %v", accept, resp.Status, got.User, err)
			}
		}
	})
	t.Run("a browser without a session gets a 401 page that offers a sign-in coming back here", func(t *testing.T) {
		resp := h.get(h.browser(), h.srv.URL+"/whoami", http.Header{"Accept": {browserAccept}})
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "You are not signed in") ||
			!strings.Contains(body, "/login?rd="+url.QueryEscape(h.srv.URL+"/whoami")) {
			t.Fatalf("/whoami = %s\n%s", resp.Status, body)
		}
	})
	t.Run("a script without a session gets a 401 JSON error", func(t *testing.T) {
		resp := h.get(h.browser(), h.srv.URL+"/whoami", nil)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"code": "unauthenticated"`) {
			t.Fatalf("/whoami = %s\n%s", resp.Status, body)
		}
	})
}
