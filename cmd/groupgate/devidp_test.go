package main

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testenv"
)

// startDevIdP runs `groupgate devidp` for a groupgate at public, writing
// a serve configuration to configFile, and returns its banner.
func startDevIdP(t *testing.T, public, configFile string) string {
	t.Helper()
	out, logs := &syncBuffer{}, &syncBuffer{}
	m := NewMain()
	m.Stdout, m.Stderr = out, logs
	m.LookupEnv = envFrom(nil)
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.ParseFlags(ctx, []string{"devidp", "--listen", "127.0.0.1:0", "--public-url", public, "--write-config", configFile}); err != nil {
		cancel()
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- errors.Join(m.Run(ctx), m.Close()) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if _, err := m.Addr(wctx); err != nil {
		cancel()
		t.Fatalf("devidp did not start: %v; run: %v; logs:\n%s", err, <-errc, logs)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("devidp: %v", err)
		}
	})
	return out.String()
}

// TestServeWithoutARealIdP is the README's way to try serve: `groupgate
// devidp --write-config FILE` runs the demo IdPs and writes a
// production-shaped configuration; serve starts with it unchanged, and a
// login through the demo OIDC IdP works.
func TestServeWithoutARealIdP(t *testing.T) {
	dir := t.TempDir()
	public := "http://127.0.0.1:" + itoa(freePort(t))
	file := filepath.Join(dir, "groupgate.yaml")
	banner := startDevIdP(t, public, file)
	if !strings.Contains(banner, "groupgate serve --config "+file) {
		t.Errorf("banner does not say how to run serve:\n%s", banner)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, nil, "config", "check", "--config", file); code != 0 {
		t.Fatalf("config check of the written file: exit %d %s %s\n%s", code, out, errOut, raw)
	}
	base, stop, done, logs := startServe(t, string(raw))
	if base != public {
		t.Fatalf("serve listens at %s, want the written public_url %s", base, public)
	}
	code, body := get(t, base+"/login")
	for _, want := range []string{"Demo OIDC provider", "Demo SAML provider", "provider=" + devSAMLProvider} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/login = %d without %q:\n%s", code, want, body)
		}
	}
	c := newBrowser(t)
	resp, body := signIn(t, c, base+"/login?"+url.Values{"provider": {devOIDCProvider}, "rd": {base + "/whoami"}}.Encode(), "alice")
	var who struct {
		User   string   `json:"user"`
		Groups []string `json:"groups"`
	}
	if err := json.Unmarshal([]byte(body), &who); err != nil || resp.StatusCode != http.StatusOK || who.User != "alice" {
		t.Fatalf("after the login: %s at %s: %s (%v)\nlogs:\n%s", resp.Status, resp.Request.URL, body, err, logs)
	}
	if got := strings.Join(who.Groups, ","); got != "eng,platform-admins" {
		t.Errorf("alice's groups = %q", got)
	}
	if !regexp.MustCompile(`"msg":"login".*"provider":"` + devOIDCProvider + `"`).MatchString(logs.String()) {
		t.Errorf("no login line in serve's logs:\n%s", logs)
	}

	// SAML: the IdP's form, then its HTTP-POST binding form to the ACS,
	// which a browser submits by script and this client by hand.
	bob := newBrowser(t)
	resp, body = signIn(t, bob, base+"/login?"+url.Values{"provider": {devSAMLProvider}, "rd": {base + "/whoami"}}.Encode(), "bob")
	resp, body = postForm(t, bob, resp, body)
	if err := json.Unmarshal([]byte(body), &who); err != nil || resp.StatusCode != http.StatusOK || who.User != "bob" {
		t.Fatalf("after the SAML login: %s at %s: %s (%v)\nlogs:\n%s", resp.Status, resp.Request.URL, body, err, logs)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDroppedGroupsAreLoggedAndShown: a group filter that hides groups is
// not silent: the login line names them and /whoami shows them, as JSON
// and on its page (issue 13 point 4).
func TestDroppedGroupsAreLoggedAndShown(t *testing.T) {
	for _, mode := range []struct {
		name  string
		extra func(t *testing.T) string
	}{
		{"with in-process sessions", func(*testing.T) string { return "" }},
		{"with Redis sessions, through their encoding", func(t *testing.T) string {
			_, prefix := testenv.Redis(t)
			return "redis:\n  addrs: [" + testenv.RedisAddr(t) + "]\n  key_prefix: \"" + prefix + "\"\n"
		}},
	} {
		t.Run(mode.name, func(t *testing.T) { droppedGroupsShown(t, mode.extra(t)) })
	}
}

func droppedGroupsShown(t *testing.T, extra string) {
	base, stop, done, logs := startServe(t, serveConfig(t, t.TempDir(), "groups:\n  include: [\"^eng$\"]\n"+extra))
	c := newBrowser(t)
	_, body := signIn(t, c, base+"/login?"+url.Values{"rd": {base + "/whoami"}}.Encode(), "alice")
	var who struct {
		Groups        []string `json:"groups"`
		DroppedGroups []string `json:"dropped_groups"`
		DroppedCount  int      `json:"dropped_group_count"`
	}
	if err := json.Unmarshal([]byte(body), &who); err != nil {
		t.Fatalf("/whoami: %v\n%s", err, body)
	}
	if strings.Join(who.Groups, ",") != "eng" || strings.Join(who.DroppedGroups, ",") != "platform-admins" || who.DroppedCount != 1 {
		t.Errorf("/whoami groups %q, dropped %q (%d); want eng, platform-admins (1)", who.Groups, who.DroppedGroups, who.DroppedCount)
	}
	if !regexp.MustCompile(`"msg":"login".*"dropped_groups":\["platform-admins"\],"dropped_group_count":1`).MatchString(logs.String()) {
		t.Errorf("the login line does not name the dropped group:\n%s", logs)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/whoami", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if page := readAll(t, resp); !strings.Contains(page, `id="dropped-groups"`) || !strings.Contains(page, `<span class="tag">platform-admins</span>`) {
		t.Errorf("the /whoami page does not show the dropped group:\n%s", page)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

var (
	postFormRE   = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	postHiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
)

// postForm submits the page's POST form with its hidden fields, as the
// script of an HTTP-POST binding page does, and returns where it ends.
func postForm(t *testing.T, c *http.Client, resp *http.Response, body string) (*http.Response, string) {
	t.Helper()
	m := postFormRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s at %s has no POST form:\n%s", resp.Status, resp.Request.URL, body)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{}
	for _, h := range postHiddenRE.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	next, err := c.PostForm(action.String(), form)
	if err != nil {
		t.Fatalf("POST %s: %v", action, err)
	}
	return next, readAll(t, next)
}
