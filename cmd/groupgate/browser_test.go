package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The browser test drives a real headless Chromium through chromedriver's
// W3C WebDriver HTTP API with net/http, so it needs no Go module beyond the
// standard library. scripts/test.sh installs chromium and chromium-driver.

// webDriverElement is the W3C key of an element reference.
const webDriverElement = "element-6066-11e4-a52e-4f735466cecf"

// findBrowser returns the Chromium and chromedriver binaries. Missing ones
// skip the test locally and fail it under CI=true, like testenv does for
// PostgreSQL and Redis.
func findBrowser(t *testing.T) (chromium, driver string) {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	driver, _ = exec.LookPath("chromedriver")
	if chromium == "" || driver == "" {
		msg := "Chromium and chromedriver are needed for the browser test (apt-get install -y chromium chromium-driver; scripts/test.sh installs them)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return chromium, driver
}

// webDriver is one chromedriver session.
type webDriver struct {
	t       *testing.T
	base    string // http://127.0.0.1:PORT of chromedriver
	session string
	client  *http.Client
}

// startWebDriver runs chromedriver on a free port and opens a headless
// Chromium session with a fresh profile.
func startWebDriver(t *testing.T) *webDriver {
	t.Helper()
	chromium, driverPath := findBrowser(t)
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var driverLog bytes.Buffer
	cmd := exec.CommandContext(ctx, driverPath, fmt.Sprintf("--port=%d", port))
	cmd.Stdout, cmd.Stderr = &driverLog, &driverLog
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start chromedriver: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	wd := &webDriver{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), client: &http.Client{Timeout: 90 * time.Second}}

	deadline := time.Now().Add(30 * time.Second)
	for {
		var status struct {
			Value struct{ Ready bool } `json:"value"`
		}
		if err := wd.call(http.MethodGet, "/status", nil, &status); err == nil && status.Value.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver did not become ready; its output:\n%s", driverLog.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// As root Chromium needs --no-sandbox; the rest keeps a throw-away
	// profile quiet and off the network except for our pages.
	args := []string{
		"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1200,900",
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName":        "chrome",
		"goog:chromeOptions": map[string]any{"binary": chromium, "args": args},
	}}}
	var created struct {
		Value struct {
			SessionID string `json:"sessionId"`
		} `json:"value"`
	}
	if err := wd.call(http.MethodPost, "/session", caps, &created); err != nil {
		t.Fatalf("open a Chromium session: %v\nchromedriver output:\n%s", err, driverLog.String())
	}
	wd.session = created.Value.SessionID
	t.Cleanup(func() { _ = wd.call(http.MethodDelete, "/session/"+wd.session, nil, nil) })
	return wd
}

// call sends one WebDriver command and decodes the answer into out.
func (wd *webDriver) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, wd.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := wd.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, raw)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// do is call on the session that fails the test on error.
func (wd *webDriver) do(method, path string, body, out any) {
	wd.t.Helper()
	if err := wd.call(method, "/session/"+wd.session+path, body, out); err != nil {
		wd.t.Fatal(err)
	}
}

func (wd *webDriver) navigate(url string) {
	wd.t.Helper()
	wd.do(http.MethodPost, "/url", map[string]string{"url": url}, nil)
}

// find waits until an element matches the CSS selector and returns it.
func (wd *webDriver) find(selector string) string {
	wd.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var found struct {
			Value map[string]string `json:"value"`
		}
		err := wd.call(http.MethodPost, "/session/"+wd.session+"/element",
			map[string]string{"using": "css selector", "value": selector}, &found)
		if err == nil && found.Value[webDriverElement] != "" {
			return found.Value[webDriverElement]
		}
		if time.Now().After(deadline) {
			wd.t.Fatalf("no element %q on %s: %v\npage:\n%s", selector, wd.currentURL(), err, wd.source())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (wd *webDriver) typeInto(selector, text string) {
	wd.t.Helper()
	wd.do(http.MethodPost, "/element/"+wd.find(selector)+"/value", map[string]string{"text": text}, nil)
}

func (wd *webDriver) click(selector string) {
	wd.t.Helper()
	wd.do(http.MethodPost, "/element/"+wd.find(selector)+"/click", map[string]any{}, nil)
}

// text is the rendered text of the element, whitespace collapsed.
func (wd *webDriver) text(selector string) string {
	wd.t.Helper()
	var out struct {
		Value string `json:"value"`
	}
	wd.do(http.MethodGet, "/element/"+wd.find(selector)+"/text", nil, &out)
	return strings.Join(strings.Fields(out.Value), " ")
}

func (wd *webDriver) currentURL() string {
	var out struct {
		Value string `json:"value"`
	}
	_ = wd.call(http.MethodGet, "/session/"+wd.session+"/url", nil, &out)
	return out.Value
}

func (wd *webDriver) source() string {
	var out struct {
		Value string `json:"value"`
	}
	_ = wd.call(http.MethodGet, "/session/"+wd.session+"/source", nil, &out)
	return out.Value
}

// screenshot saves a PNG of the viewport and returns its path: in
// $GROUPGATE_SCREENSHOTS when set, for a person to look at, else in the
// test's temporary directory, removed with it (tests leave nothing behind).
func (wd *webDriver) screenshot(name string) string {
	wd.t.Helper()
	var out struct {
		Value string `json:"value"`
	}
	wd.do(http.MethodGet, "/screenshot", nil, &out)
	png, err := base64.StdEncoding.DecodeString(out.Value)
	if err != nil {
		wd.t.Fatalf("screenshot is not base64: %v", err)
	}
	dir := os.Getenv("GROUPGATE_SCREENSHOTS")
	if dir == "" {
		dir = wd.t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		wd.t.Fatal(err)
	}
	f, err := os.CreateTemp(dir, name+"-*.png")
	if err != nil {
		wd.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(png); err != nil {
		wd.t.Fatal(err)
	}
	return f.Name()
}

// TestDevInARealBrowser is the README's promise: run `groupgate dev`, open
// the printed URL, pick a provider, sign in as alice at the demo IdP, and
// land on the demo app showing the identity headers groupgate added. The
// SAML round trip includes the IdP's cross-site form POST to the ACS.
// carol, in no group, is refused over SAML with the page that says so;
// signing out goes through the confirm page to the signed-out page. The
// screenshots of the login pages in docs/screenshots/login-*.png come from
// this test (GROUPGATE_SCREENSHOTS=DIR keeps them).
func TestDevInARealBrowser(t *testing.T) {
	wd := startWebDriver(t)
	d := startDev(t, nil)

	t.Run("the picker shows both providers by their display names", func(t *testing.T) {
		wd.navigate(d.base + "/")
		wd.find(`a[href*="provider=` + devSAMLProvider + `"]`)
		text := wd.text("main")
		t.Logf("screenshot of the picker: %s", wd.screenshot("login-picker"))
		for _, want := range []string{"Choose how to sign in", "Demo OIDC provider", "Demo SAML provider"} {
			if !strings.Contains(text, want) {
				t.Errorf("picker lacks %q; it reads %q", want, text)
			}
		}
	})

	for _, provider := range []string{devOIDCProvider, devSAMLProvider} {
		t.Run("alice signs in with "+provider+" and sees her headers in the demo app", func(t *testing.T) {
			wd.navigate(d.base + "/")
			// groupgate's login redirect ends on the provider picker.
			wd.click(`a[href*="provider=` + provider + `"]`)
			wd.typeInto(`input[name="username"]`, "alice")
			wd.typeInto(`input[name="password"]`, "alice-password")
			wd.click(`button[type="submit"]`)

			identity := wd.text("table#identity")
			t.Logf("screenshot of the demo app after %s sign-in: %s", provider, wd.screenshot("groupgate-dev-"+provider))
			if got := wd.currentURL(); got != d.base+"/" {
				t.Errorf("landed on %s, want %s/", got, d.base)
			}
			for _, want := range []string{
				"X-Auth-Request-User alice",
				"X-Auth-Request-Email alice@example.com",
				"X-Auth-Request-Groups eng,platform-admins",
				"X-Auth-Request-Org-Roles acme=ADMIN",
			} {
				if !strings.Contains(identity, want) {
					t.Errorf("demo app's identity table lacks %q; it reads %q", want, identity)
				}
			}

			if provider == devOIDCProvider {
				// /login while signed in says so; /whoami is a page.
				wd.navigate(d.base + "/login")
				if got := wd.text("#signed-in"); !strings.Contains(got, "already signed in as alice") {
					t.Errorf("/login while signed in reads %q", got)
				}
				t.Logf("screenshot of /login while signed in: %s", wd.screenshot("login-signed-in"))
				wd.navigate(d.base + "/whoami")
				if got := wd.text("main"); !strings.Contains(got, "Signed in as alice") || !strings.Contains(got, "acme ADMIN") {
					t.Errorf("/whoami page reads %q", got)
				}
				t.Logf("screenshot of /whoami: %s", wd.screenshot("login-whoami"))
			}

			// Signing out ends the session: the next visit needs a login.
			// /logout only shows a confirm page (a cross-site link must not
			// sign anyone out); its button's same-origin POST signs out
			// and, past the IdP's end-session endpoint where it has one,
			// lands on the signed-out page.
			wd.navigate(d.base + "/logout")
			wd.click(`form[method="post"] button[type="submit"]`)
			if got := wd.text("#signed-out"); !strings.Contains(got, "You are signed out of groupgate") {
				t.Errorf("after signing out the page reads %q", got)
			}
			if provider == devOIDCProvider {
				t.Logf("screenshot of the signed-out page: %s", wd.screenshot("login-signed-out"))
			}
			wd.navigate(d.base + "/")
			wd.find(`a[href*="provider=` + provider + `"]`)
		})
	}

	t.Run("carol, in no group, is refused over SAML with the page that says so", func(t *testing.T) {
		wd.navigate(d.base + "/")
		wd.click(`a[href*="provider=` + devSAMLProvider + `"]`)
		wd.typeInto(`input[name="username"]`, "carol")
		wd.typeInto(`input[name="password"]`, "carol-password")
		wd.click(`button[type="submit"]`)
		wd.find(`#failure[data-reason="no-groups"]`)
		text := wd.text("main")
		t.Logf("screenshot of the no-groups page: %s", wd.screenshot("login-no-groups"))
		for _, want := range []string{"Your identity provider sent no groups", "What to do", "release the groups attribute", "HTTP 403"} {
			if !strings.Contains(text, want) {
				t.Errorf("no-groups page lacks %q; it reads %q", want, text)
			}
		}
	})
}
