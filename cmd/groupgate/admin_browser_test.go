package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// value is an input's current value.
func (wd *webDriver) value(selector string) string {
	wd.t.Helper()
	var out struct {
		Value string `json:"value"`
	}
	wd.do(http.MethodGet, "/element/"+wd.find(selector)+"/property/value", nil, &out)
	return out.Value
}

// adminShot saves a screenshot named docs/screenshots/admin-NAME.png
// when GROUPGATE_ADMIN_SCREENSHOTS names the repository's docs/screenshots
// (how the committed ones are made), else wherever screenshot puts it.
func (wd *webDriver) adminShot(name string) {
	wd.t.Helper()
	p := wd.screenshot("admin-" + name)
	if dir := os.Getenv("GROUPGATE_ADMIN_SCREENSHOTS"); dir != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			wd.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "admin-"+name+".png"), b, 0o644); err != nil {
			wd.t.Fatal(err)
		}
	}
	wd.t.Logf("screenshot %s: %s", name, p)
}

// TestAdminConsoleInARealBrowser: alice, an instance admin, opens /admin/,
// signs in through the demo OIDC IdP and lands back on the console; she
// maps bob's group to acme/api with the preview step, and bob's next
// request to the demo app carries the new role; she creates a SCIM token,
// shown once, with which an IdP push provisions a user she then sees.
func TestAdminConsoleInARealBrowser(t *testing.T) {
	wd := startWebDriver(t)
	wd.do(http.MethodPost, "/window/rect", map[string]int{"width": 1280, "height": 800}, nil)
	d := startDev(t, nil)

	// bob signs in with an HTTP client, so his group set is known and he
	// has a live session when alice changes his access.
	bob := newBrowser(t)
	resp, body := signIn(t, bob, d.loginURL(devOIDCProvider), "bob")
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "acme/api=") {
		t.Fatalf("bob's first page: %s, already a role on acme/api?\n%s", resp.Status, body)
	}

	wd.navigate(d.base + "/admin/")
	wd.click(`a[href*="provider=` + devOIDCProvider + `"]`)
	wd.typeInto(`input[name="username"]`, "alice")
	wd.typeInto(`input[name="password"]`, "alice-password")
	wd.click(`button[type="submit"]`)
	if got := wd.text("h1"); got != "My access" {
		t.Fatalf("after sign-in the page is %q at %s, want My access", got, wd.currentURL())
	}
	if roles := wd.text("table[aria-labelledby=orgroles]"); !strings.Contains(roles, "acme admin") || !strings.Contains(roles, "group platform-admins") {
		t.Errorf("My access shows alice's roles as %q", roles)
	}
	wd.adminShot("my-access")

	wd.navigate(d.base + "/admin/orgs/acme")
	if m := wd.text("table[aria-labelledby=mappings]"); !strings.Contains(m, "eng") || !strings.Contains(m, "platform-admins") {
		t.Errorf("acme's mappings read %q", m)
	}
	wd.adminShot("organization")

	wd.navigate(d.base + "/admin/orgs/acme/repos/api")
	wd.typeInto(`input#group`, "eng")
	wd.click(`select#override option[value="WRITE"]`)
	wd.click(`form[action$="/mappings/preview"] button[type="submit"]`)
	if effect := wd.text("table[aria-labelledby=effect]"); !strings.Contains(effect, "bob") || !strings.Contains(effect, "write") {
		t.Fatalf("the preview reads %q, want bob gaining write", effect)
	}
	wd.adminShot("preview")
	wd.click(`form[action$="/mappings/apply"] button[type="submit"]`)
	if n := wd.text(`.notice.ok`); !strings.Contains(n, "mapping was added") {
		t.Fatalf("after apply the notice reads %q", n)
	}

	wd.adminShot("repository")

	resp, err := bob.Get(d.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); !strings.Contains(body, "acme/api=WRITE") {
		t.Fatalf("bob's next request does not carry the new role:\n%s", body)
	}

	wd.navigate(d.base + "/admin/scim")
	wd.typeInto(`input#tname`, "Okta")
	wd.click(`form[action="/admin/scim/tokens"] button[type="submit"]`)
	token := wd.value(`input#newtoken`)
	if !strings.HasPrefix(token, "ggscim_") {
		t.Fatalf("the new SCIM token reads %q", token)
	}
	wd.adminShot("scim")
	base := wd.value(`input#baseurl`)
	if base != d.base+"/scim/v2" {
		t.Errorf("SCIM base URL %q, want %s/scim/v2", base, d.base)
	}
	// The IdP's first push with the new token provisions a user, whom the
	// Users page then lists as coming from SCIM.
	req, _ := http.NewRequest(http.MethodPost, base+"/Users", strings.NewReader(
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"dave","emails":[{"value":"dave@example.com","primary":true}],"active":true}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp); resp.StatusCode != http.StatusCreated {
		t.Fatalf("SCIM push with the new token: %s\n%s", resp.Status, b)
	}
	wd.navigate(d.base + "/admin/scim")
	if src := wd.source(); strings.Contains(src, token) || !strings.Contains(src, "Okta") {
		t.Error("the SCIM token is shown again, or not listed")
	}

	wd.navigate(d.base + "/admin/users")
	if u := wd.text("table"); !strings.Contains(u, "bob") || !strings.Contains(u, "SSO demo-oidc") || !strings.Contains(u, "dave") || !strings.Contains(u, "SCIM") {
		t.Errorf("the users list reads %q", u)
	}
	wd.adminShot("users")

	wd.navigate(d.base + "/admin/audit?" + url.Values{"actor": {"alice"}}.Encode())
	if a := wd.text("table"); !strings.Contains(a, "repo_mapping.add") || !strings.Contains(a, "scim_token.create") {
		t.Errorf("alice's audit log reads %q", a)
	}
	wd.adminShot("audit")
}

// TestServeMountsTheAdminConsole: serve's wiring mounts /admin/, sends a
// signed-out browser through the login and back, and takes the instance
// admins from the configuration's admins:.
func TestServeMountsTheAdminConsole(t *testing.T) {
	base, _, _, logs := startServe(t, serveConfig(t, t.TempDir(), ""))
	alice := newBrowser(t)
	resp, body := signIn(t, alice, base+"/admin/orgs", "alice")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != base+"/admin/orgs" {
		t.Fatalf("ended at %s with %s:\n%s\nlogs:\n%s", resp.Request.URL, resp.Status, body, logs)
	}
	for _, want := range []string{"<h1>Organizations</h1>", "instance admin", `href="/admin/audit"`, "Create organization"} {
		if !strings.Contains(body, want) {
			t.Errorf("the console lacks %q:\n%s", want, body)
		}
	}
}
