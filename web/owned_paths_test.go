package web_test

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// Paths under groupgate's own prefixes answer from groupgate whatever the
// method or the extra segments: in reverse-proxy mode nothing there may fall
// through to the application (it would receive a login callback's code, or
// an IdP's post).
func TestOwnedPathsNeverReachTheUpstream(t *testing.T) {
	var reached atomic.Int32
	h := newHarness(t, harnessConfig{backend: backends[0], upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusTeapot)
	})})
	c := h.browser()
	// Signed in, so that the proxy would pass a request on rather than
	// send it to the login.
	h.login(c, "demo", "alice", "/", "/")
	for _, tc := range []struct {
		method, path string
	}{
		{http.MethodGet, "/callback/demo/extra"},
		{http.MethodPost, "/callback/demo"},
		{http.MethodGet, "/callback/"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, h.srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			before := reached.Load()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if reached.Load() != before || resp.StatusCode == http.StatusTeapot {
				t.Fatalf("%s %s reached the upstream (status %d)", tc.method, tc.path, resp.StatusCode)
			}
			if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("%s %s: status %d, want 404 or 405 from groupgate", tc.method, tc.path, resp.StatusCode)
			}
		})
	}
}

// The SAML endpoints answer a wrong method with 405 and an Allow header
// rather than passing the request on.
func TestSAMLEndpointsRefuseOtherMethods(t *testing.T) {
	h := newSAMLHarness(t, nil)
	c := h.browser()
	for _, tc := range []struct {
		method, path, allow string
	}{
		{http.MethodGet, h.urls.ACS, "POST"},
		{http.MethodPost, h.urls.Metadata, "GET"},
		{http.MethodPost, h.urls.Login, "GET"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
				t.Fatalf("status %d, Allow %q; want 405 and %q", resp.StatusCode, resp.Header.Get("Allow"), tc.allow)
			}
		})
	}
}
