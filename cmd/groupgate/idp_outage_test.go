package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/devidp"
	"github.com/groupgate/groupgate/internal/testenv"
)

// fastRetry makes serve retry an unreachable IdP every few tens of
// milliseconds, so that the tests see it picked up quickly.
func fastRetry(m *Main) {
	m.IdPBackoff = broker.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Factor: 2, Jitter: 0.2}
}

// serveAt serves h on addr (a port that was free a moment ago) until the
// returned stop; it is how an IdP comes back at the address serve knows.
func serveAt(t *testing.T, addr string, h http.Handler) (stop func()) {
	t.Helper()
	var (
		ln  net.Listener
		err error
	)
	// The port was released by freePort a moment ago, or by the previous
	// server at it; a TIME_WAIT can need a retry.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = srv.Close()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// oidcIdPHandler is the demo OIDC provider with issuer http://addr/idp and
// groupgate at public registered as testClientID.
func oidcIdPHandler(t *testing.T, addr, public string) http.Handler {
	t.Helper()
	idp, err := devidp.NewOIDC("http://"+addr+"/idp", devidp.OIDCConfig{
		Logger: slog.New(slog.DiscardHandler),
		Clients: []devidp.OIDCClient{{
			ID: testClientID, Secret: testClientSecret,
			RedirectURIs:           []string{public + "/callback/" + testProvider},
			PostLogoutRedirectURIs: []string{public + "/logged-out"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/idp/", idp)
	return mux
}

// noRedirects is a browser that stops at the first redirect.
func noRedirects(c *http.Client) *http.Client {
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// startLogin GETs target without following redirects.
func startLogin(t *testing.T, c *http.Client, target string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirects(c).Get(target)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return resp, readAll(t, resp)
}

// eventually polls cond every 20 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkUnavailablePage asserts the 503 HTML page of a provider whose IdP
// does not answer.
func checkUnavailablePage(t *testing.T, resp *http.Response, body, provider, idpAddr string) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "Sign-in with "+provider+" is unavailable right now") {
		t.Fatalf("%s %s, want 503 HTML saying sign-in with %s is unavailable:\n%s", resp.Status, resp.Header.Get("Content-Type"), provider, body)
	}
	if strings.Contains(body, idpAddr) || strings.Contains(body, "refused") {
		t.Fatalf("the page leaks the cause:\n%s", body)
	}
}

// readyz returns /readyz's status and body.
func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	return get(t, base+"/readyz")
}

// TestServeStartsAndKeepsSignedInUsersWhileTheOIDCProviderIsDown is a
// rolling restart during an IdP outage: a user signed in through the
// first serve; the IdP goes down and serve restarts. The new serve starts,
// is ready, lets the signed-in user through /auth, answers a login with
// the provider by a 503 page, and picks the provider up by itself once
// the IdP answers again.
func TestServeStartsAndKeepsSignedInUsersWhileTheOIDCProviderIsDown(t *testing.T) {
	_, prefix := testenv.Redis(t)
	idpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	config := regexp.MustCompile(`issuer: .*`).ReplaceAllString(serveConfig(t, t.TempDir(),
		"redis:\n  addrs: ["+testenv.RedisAddr(t)+"]\n  key_prefix: \""+prefix+"\"\nmetrics:\n  on_main_listener: true\n"),
		"issuer: http://"+idpAddr+"/idp")
	public := regexp.MustCompile(`public_url: (.*)`).FindStringSubmatch(config)[1]

	// Before the outage: alice signs in.
	stopIdP := serveAt(t, idpAddr, oidcIdPHandler(t, idpAddr, public))
	base, stop, done, logs := startServeWith(t, config, fastRetry)
	alice := newBrowser(t)
	signIn(t, alice, base+"/login?rd="+url.QueryEscape(base+"/whoami"), "alice")
	if code, _ := authHeaders(t, alice, base); code != http.StatusOK {
		t.Fatalf("/auth after sign-in = %d; logs:\n%s", code, logs)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The IdP goes down, and serve starts again.
	stopIdP()
	base, stop, done, logs = startServeWith(t, config, fastRetry)

	t.Run("serve starts and is live and ready, naming the IdP in /readyz", func(t *testing.T) {
		if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz = %d", code)
		}
		code, body := readyz(t, base)
		if code != http.StatusOK || !strings.Contains(body, `"degraded"`) || !strings.Contains(body, `"idp:okta"`) {
			t.Fatalf("/readyz = %d %s, want 200 naming idp:okta as degraded", code, body)
		}
	})
	t.Run("the user signed in before passes /auth", func(t *testing.T) {
		if code, _ := authHeaders(t, alice, base); code != http.StatusOK {
			t.Fatalf("/auth = %d; logs:\n%s", code, logs)
		}
	})
	t.Run("a login with the provider answers the 503 page, not a 500", func(t *testing.T) {
		resp, body := startLogin(t, newBrowser(t), base+"/login?provider=okta&rd="+url.QueryEscape(base+"/whoami"))
		checkUnavailablePage(t, resp, body, "okta", idpAddr)
	})
	t.Run("the gauge says unavailable and failures are counted", func(t *testing.T) {
		if v := metricValue(t, base, `groupgate_idp_available{provider="okta"}`); v != 0 {
			t.Fatalf("groupgate_idp_available = %v, want 0", v)
		}
		if v := metricValue(t, base, `groupgate_idp_open_failures_total{provider="okta"}`); v < 1 {
			t.Fatalf("groupgate_idp_open_failures_total = %v, want at least 1", v)
		}
	})
	t.Run("the outage is logged once, not at every retry", func(t *testing.T) {
		time.Sleep(300 * time.Millisecond) // several retries
		if n := strings.Count(logs.String(), "identity provider unavailable"); n != 1 {
			t.Fatalf("%d lines, want 1:\n%s", n, logs)
		}
	})

	// The IdP comes back at the same address.
	serveAt(t, idpAddr, oidcIdPHandler(t, idpAddr, public))
	t.Run("the provider is picked up without a restart", func(t *testing.T) {
		eventually(t, 10*time.Second, "login redirects to the IdP", func() bool {
			resp, _ := startLogin(t, newBrowser(t), base+"/login?provider=okta")
			return resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), "http://"+idpAddr+"/idp/")
		})
		if v := metricValue(t, base, `groupgate_idp_available{provider="okta"}`); v != 1 {
			t.Fatalf("groupgate_idp_available = %v, want 1", v)
		}
		if code, body := readyz(t, base); code != http.StatusOK || strings.Contains(body, "idp:okta") {
			t.Fatalf("/readyz = %d %s, want 200 naming nothing", code, body)
		}
		if n := strings.Count(logs.String(), "identity provider available again"); n != 1 {
			t.Fatalf("%d 'available again' lines, want 1", n)
		}
	})
	t.Run("a new sign-in works end to end", func(t *testing.T) {
		bob := newBrowser(t)
		signIn(t, bob, base+"/login?rd="+url.QueryEscape(base+"/whoami"), "bob")
		if code, _ := authHeaders(t, bob, base); code != http.StatusOK {
			t.Fatalf("/auth after sign-in = %d; logs:\n%s", code, logs)
		}
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	noGoroutineIn(t, "(*Lazy[...]).retry")
}

// TestServeStartsWhileASAMLMetadataURLIsDown: a SAML provider whose
// idp_metadata_url does not answer is marked in the picker and answers
// the 503 page, while the OIDC provider logs in; once the metadata URL
// answers, the SAML provider starts logins without a restart.
func TestServeStartsWhileASAMLMetadataURLIsDown(t *testing.T) {
	dir := t.TempDir()
	cert, key, err := writeSPKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	samlAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	idp, err := devidp.NewSAML("http://"+samlAddr+"/saml-idp", devidp.SAMLConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	entry := "  - name: corp\n    type: saml\n    idp_metadata_url: " + idp.MetadataURL() + "\n" +
		"    sp_cert_file: " + cert + "\n    sp_key_file: " + key + "\n"
	config := withProvider(serveConfig(t, dir, "metrics:\n  on_main_listener: true\n"), entry)
	base, stop, done, logs := startServeWith(t, config, fastRetry)

	t.Run("the picker marks the SAML provider, not the OIDC one", func(t *testing.T) {
		code, body := get(t, base+"/login")
		if code != http.StatusOK || !regexp.MustCompile(`provider=corp[^"]*">corp <span class="status">\(unavailable right now\)`).MatchString(body) ||
			regexp.MustCompile(`provider=okta[^"]*">okta <span`).MatchString(body) {
			t.Fatalf("/login = %d:\n%s", code, body)
		}
	})
	t.Run("both SAML login starts answer the 503 page", func(t *testing.T) {
		for _, target := range []string{base + "/login?provider=corp", base + "/saml/corp/login"} {
			resp, body := startLogin(t, newBrowser(t), target)
			checkUnavailablePage(t, resp, body, "corp", samlAddr)
		}
	})
	t.Run("readiness names the SAML IdP without failing", func(t *testing.T) {
		if code, body := readyz(t, base); code != http.StatusOK || !strings.Contains(body, `"idp:corp"`) || strings.Contains(body, "idp:okta") {
			t.Fatalf("/readyz = %d %s", code, body)
		}
		if v := metricValue(t, base, `groupgate_idp_available{provider="corp"}`); v != 0 {
			t.Fatalf("corp gauge = %v", v)
		}
		if v := metricValue(t, base, `groupgate_idp_available{provider="okta"}`); v != 1 {
			t.Fatalf("okta gauge = %v", v)
		}
	})
	t.Run("the OIDC provider signs people in meanwhile", func(t *testing.T) {
		alice := newBrowser(t)
		signIn(t, alice, base+"/login?provider=okta&rd="+url.QueryEscape(base+"/whoami"), "alice")
		if code, _ := authHeaders(t, alice, base); code != http.StatusOK {
			t.Fatalf("/auth = %d; logs:\n%s", code, logs)
		}
	})

	mux := http.NewServeMux()
	mux.Handle("/saml-idp/", idp)
	serveAt(t, samlAddr, mux)
	t.Run("the SAML provider is picked up once its metadata answers", func(t *testing.T) {
		eventually(t, 10*time.Second, "SAML login redirects to the IdP's SSO", func() bool {
			resp, _ := startLogin(t, newBrowser(t), base+"/login?provider=corp")
			loc, err := url.Parse(resp.Header.Get("Location"))
			return resp.StatusCode == http.StatusFound && err == nil && strings.HasSuffix(loc.Path, "/saml-idp/sso") && loc.Query().Get("SAMLRequest") != ""
		})
		if v := metricValue(t, base, `groupgate_idp_available{provider="corp"}`); v != 1 {
			t.Fatalf("corp gauge = %v, want 1", v)
		}
		if _, body := get(t, base+"/login"); strings.Contains(body, "unavailable right now") {
			t.Fatalf("the picker still marks a provider:\n%s", body)
		}
		if code, body := get(t, base+"/saml/corp/metadata"); code != http.StatusOK || !strings.Contains(body, base+"/saml/corp/acs") {
			t.Fatalf("/saml/corp/metadata = %d", code)
		}
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestServeRefusesAnIdPWhoseAnswerNoRetryFixes: an issuer that answers
// with a discovery document naming another issuer is a configuration
// error, and serve still refuses to start, naming the provider.
func TestServeRefusesAnIdPWhoseAnswerNoRetryFixes(t *testing.T) {
	config := serveConfig(t, t.TempDir(), "")
	issuer := regexp.MustCompile(`issuer: (.*)`).FindStringSubmatch(config)[1]
	// The discovery document at ISSUER-with-a-slash names ISSUER.
	config = strings.Replace(config, "issuer: "+issuer, "issuer: "+issuer+"/", 1)
	code, _, errOut := runCLI(t, nil, "serve", "--config", writeFile(t, "c.yaml", config))
	if code != 1 || !strings.Contains(errOut, `provider "okta"`) {
		t.Fatalf("exit %d, stderr %q; want 1 naming the provider", code, errOut)
	}
}
