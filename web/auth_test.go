package web_test

import (
	"net/http"
	"testing"
)

// Cookie tossing at the forward-auth endpoint: a second session cookie
// planted by another site (the attacker's own session, so that the
// victim works in the attacker's account) makes the request unauthenticated,
// whichever cookie comes first.
func TestAuthRefusesTwoSessionCookies(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0]})
	victim, attacker := h.browser(), h.browser()
	h.login(victim, "demo", "alice", "/", "/")
	h.login(attacker, "demo", "bob", "/", "/")
	mine, tossed := h.sessionCookie(victim), h.sessionCookie(attacker)

	for _, tt := range []struct {
		name    string
		cookies []*http.Cookie
		want    int
	}{
		{"one session cookie is signed in", []*http.Cookie{mine}, http.StatusOK},
		{"a planted cookie first is not signed in", []*http.Cookie{tossed, mine}, http.StatusUnauthorized},
		{"a planted cookie last is not signed in", []*http.Cookie{mine, tossed}, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/auth", nil)
			for _, c := range tt.cookies {
				req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("/auth = %s (user %q), want %d", resp.Status, resp.Header.Get("X-Auth-Request-User"), tt.want)
			}
		})
	}
}
