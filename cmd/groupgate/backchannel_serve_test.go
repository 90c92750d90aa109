package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// serve mounts the back-channel logout receiver for its OIDC providers:
// a bad token is a 400 with a JSON error, an unknown provider a 404.
// (The logout itself is proven against the demo IdP in e2e.)
func TestServeReceivesBackchannelLogout(t *testing.T) {
	base, stop, _, _ := startServe(t, serveConfig(t, t.TempDir(), ""))
	defer stop()
	for _, tt := range []struct {
		provider string
		want     int
	}{
		{testProvider, http.StatusBadRequest},
		{"nobody", http.StatusNotFound},
	} {
		resp, err := http.PostForm(base+"/backchannel-logout/"+tt.provider, url.Values{"logout_token": {"a.b.c"}})
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != tt.want || !strings.Contains(body, `"error"`) || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %s %q %s, want %d with a JSON error", tt.provider, resp.Status, resp.Header.Get("Cache-Control"), body, tt.want)
		}
	}
}
