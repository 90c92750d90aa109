package main

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testenv"
)

// Bounds of the callback test: serve gives up on the IdP after
// callbackTimeout (Main.IdPCallbackTimeout; 10 s by default) and must
// have answered within maxCallbackAnswer.
const (
	testCallbackTimeout = time.Second
	maxCallbackAnswer   = 3 * time.Second
)

// slowTokens holds the IdP's token endpoint while on is set, until the
// caller hangs up: an IdP that accepts connections and never answers.
func slowTokens(next http.Handler, on *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if on.Load() && strings.HasSuffix(r.URL.Path, "/token") {
			// The body read to its end, the server watches the connection
			// and ends the context when the caller hangs up.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
			return
		}
		next.ServeHTTP(w, r)
	})
}

// toCallback runs a login in c up to the IdP's redirect to serve's
// callback, which it returns without following it: the IdP has issued
// a code, and the callback has yet to exchange it.
func toCallback(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	resp, err := c.Get(base + "/login?provider=" + testProvider + "&rd=" + url.QueryEscape(base+"/whoami"))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	m := formActionRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("login ended at %s with %s, not the IdP's form", resp.Request.URL, resp.Status)
	}
	action, _ := resp.Request.URL.Parse(html.UnescapeString(m[1]))
	form := url.Values{"username": {"bob"}, "password": {"bob-password"}}
	for _, h := range hiddenRE.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	stop := noRedirects(c)
	resp, err = stop.PostForm(action.String(), form)
	for err == nil && resp.StatusCode/100 == 3 {
		readAll(t, resp)
		loc, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if strings.HasPrefix(loc.String(), base+"/callback/") {
			return loc.String()
		}
		resp, err = stop.Get(loc.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Fatalf("the IdP answered %s instead of redirecting to the callback:\n%s", resp.Status, readAll(t, resp))
	return ""
}

// settledGoroutines waits until the goroutine count stops falling and
// returns it.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			return m
		}
		n = m
	}
	return n
}

// TestAnIdPThatHangsOrIsGoneDuringTheCallbackGetsAClearPageInTime: the
// user has been to the IdP and comes back with a code, and the IdP then
// hangs (accepts the token request and never answers) or is gone
// (connection refused). Each callback must answer a 503 HTML page saying
// the IdP cannot be reached, within maxCallbackAnswer, and the goroutines
// serve started for them must be gone afterwards (counted before and
// after, with the test's own idle connections closed).
func TestAnIdPThatHangsOrIsGoneDuringTheCallbackGetsAClearPageInTime(t *testing.T) {
	_, prefix := testenv.Redis(t)
	idpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	config := regexp.MustCompile(`issuer: .*`).ReplaceAllString(serveConfig(t, t.TempDir(),
		"redis:\n  addrs: ["+testenv.RedisAddr(t)+"]\n  key_prefix: \""+prefix+"\"\n"), "issuer: http://"+idpAddr+"/idp")
	public := regexp.MustCompile(`public_url: (.*)`).FindStringSubmatch(config)[1]
	var hang atomic.Bool
	idp := slowTokens(oidcIdPHandler(t, idpAddr, public), &hang)
	stopIdP := serveAt(t, idpAddr, idp)
	base, stop, done, logs := startServeWith(t, config, func(m *Main) { m.IdPCallbackTimeout = testCallbackTimeout })
	defer func() {
		if t.Failed() {
			t.Logf("serve logs:\n%s", logs)
		}
	}()

	// A whole login first, so that every pool and cache serve keeps is
	// warm before the count.
	warm := newBrowser(t)
	if resp, body := signIn(t, warm, base+"/login?provider="+testProvider+"&rd="+url.QueryEscape(base+"/whoami"), "alice"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %s %s", resp.Status, body)
	}
	warm.CloseIdleConnections()
	before := settledGoroutines()

	const rounds = 5
	outer := t
	check := func(t *testing.T, what string) {
		t.Helper()
		var browsers []*http.Client
		var callbacks []string
		for range rounds {
			c := newBrowser(t)
			browsers = append(browsers, c)
			callbacks = append(callbacks, toCallback(t, c, base))
		}
		switch what {
		case "hangs":
			hang.Store(true)
			defer hang.Store(false)
		case "is gone":
			stopIdP()
			defer func() { stopIdP = serveAt(outer, idpAddr, idp) }()
		}
		for i, cb := range callbacks {
			start := time.Now()
			resp, err := noRedirects(browsers[i]).Get(cb)
			if err != nil {
				t.Fatalf("callback: %v", err)
			}
			body := readAll(t, resp)
			took := time.Since(start)
			if took > maxCallbackAnswer {
				t.Errorf("the callback answered after %v, want within %v", took, maxCallbackAnswer)
			}
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(body, "identity provider cannot be reached") {
				t.Fatalf("the callback answered %s %s after %v, want a 503 page saying the identity provider cannot be reached:\n%s",
					resp.Status, resp.Header.Get("Content-Type"), took, body)
			}
			if strings.Contains(body, idpAddr) {
				t.Errorf("the page names the IdP's address:\n%s", body)
			}
			if i == 0 {
				t.Logf("when the IdP %s, the callback answers 503 after %v", what, took.Round(time.Millisecond))
			}
			browsers[i].CloseIdleConnections()
		}
	}
	t.Run("the IdP hangs", func(t *testing.T) { check(t, "hangs") })
	t.Run("the IdP is gone", func(t *testing.T) { check(t, "is gone") })

	// The IdP is back: a login works again, and nothing the failed
	// callbacks started is left running.
	c := newBrowser(t)
	if resp, body := signIn(t, c, base+"/login?provider="+testProvider+"&rd="+url.QueryEscape(base+"/whoami"), "bob"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in after the outage: %s %s", resp.Status, body)
	}
	c.CloseIdleConnections()
	var after int
	for deadline := time.Now().Add(5 * time.Second); ; {
		if after = settledGoroutines(); after <= before+2 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before the failed callbacks, %d after them:\n%s", before, after, buf[:runtime.Stack(buf, true)])
		}
	}
	t.Logf("goroutines: %d before %d failed callbacks, %d after", before, 2*rounds, after)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
