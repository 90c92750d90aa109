package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/devidp"
	"github.com/groupgate/groupgate/internal/testenv"
)

// apiCall posts a Connect JSON request as curl would and returns the
// status and decoded body.
func apiCall(t *testing.T, base, token, procedure, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/buf.alpha.registry.v1alpha1."+procedure, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", procedure, err)
	}
	raw := readAll(t, resp)
	var out map[string]any
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("%s answered %s with non-JSON %q", procedure, resp.Status, raw)
	}
	return resp.StatusCode, out
}

// mustCall is apiCall that requires 200.
func mustCall(t *testing.T, base, token, procedure, body string) map[string]any {
	t.Helper()
	code, out := apiCall(t, base, token, procedure, body)
	if code != http.StatusOK {
		t.Fatalf("%s %s: %d %v", procedure, body, code, out)
	}
	return out
}

// authHeaders asks /auth with c's cookies.
func authHeaders(t *testing.T, c *http.Client, base string) (int, http.Header) {
	t.Helper()
	resp, err := c.Get(base + "/auth")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	return resp.StatusCode, resp.Header
}

// TestServeEndToEnd runs `serve` as main() does, with the demo IdP as its
// OIDC provider, signs people in with cookie-jar clients, and changes
// their roles through the Connect API with a token from `token create`.
func TestServeEndToEnd(t *testing.T) {
	redisSection := func(t *testing.T, cache string) string {
		// A key prefix of its own per test, whose keys testenv deletes
		// when the test ends.
		_, prefix := testenv.Redis(t)
		return "redis:\n  addrs: [" + testenv.RedisAddr(t) + "]\n  key_prefix: \"" + prefix + "\"\n" +
			"  local_cache:\n" + cache
	}
	backends := []struct {
		name   string
		extra  func(t *testing.T) string
		cached bool // sessions are read through the local cache
	}{
		{"with in-process sessions", func(*testing.T) string { return "" }, false},
		{"with Redis sessions behind the local cache", func(t *testing.T) string {
			// A TTL longer than the test: only invalidation can make a
			// change visible.
			return redisSection(t, "    enabled: true\n    ttl: 10s\n")
		}, true},
		{"with Redis sessions read from Redis every time", func(t *testing.T) string {
			return redisSection(t, "    enabled: false\n")
		}, false},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			// Metrics are served on their own listener (metrics.listen).
			metricsBase := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
			config := serveConfig(t, t.TempDir(), b.extra(t)+"metrics:\n  listen: "+strings.TrimPrefix(metricsBase, "http://")+"\n")
			code, out, errOut := runCLI(t, nil, "token", "create", "--config", writeFile(t, "gg.yaml", config), "--user", "alice@example.com")
			if code != 0 {
				t.Fatalf("token create: exit %d: %s", code, errOut)
			}
			token := lastLine(out)
			base, stop, done, logs := startServe(t, config)

			alice, bob := newBrowser(t), newBrowser(t)
			t.Run("alice signs in and lands on the rd page", func(t *testing.T) {
				resp, body := signIn(t, alice, base+"/login?rd="+url.QueryEscape(base+"/whoami"), "alice")
				if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != base+"/whoami" || !strings.Contains(body, "alice@example.com") {
					t.Fatalf("ended at %s with %s:\n%s\nlogs:\n%s", resp.Request.URL, resp.Status, body, logs)
				}
			})
			t.Run("auth shows alice's identity headers", func(t *testing.T) {
				code, h := authHeaders(t, alice, base)
				if code != http.StatusOK {
					t.Fatalf("/auth = %d", code)
				}
				for name, want := range map[string]string{
					"X-Auth-Request-User":   "alice",
					"X-Auth-Request-Email":  "alice@example.com",
					"X-Auth-Request-Groups": "eng,platform-admins",
				} {
					if got := h.Get(name); got != want {
						t.Errorf("%s = %q, want %q", name, got, want)
					}
				}
			})
			t.Run("a browser without a session gets 401 from auth", func(t *testing.T) {
				if code, _ := authHeaders(t, newBrowser(t), base); code != http.StatusUnauthorized {
					t.Fatalf("/auth = %d, want 401", code)
				}
			})

			var orgID string
			t.Run("alice's CLI token creates an organization", func(t *testing.T) {
				mustCall(t, base, token, "OrganizationService/CreateOrganization", `{"name":"acme"}`)
				org := mustCall(t, base, token, "OrganizationService/GetOrganizationByName", `{"name":"acme"}`)
				orgID, _ = org["organization"].(map[string]any)["id"].(string)
				if orgID == "" {
					t.Fatalf("no organization id in %v", org)
				}
			})
			if orgID == "" {
				t.FailNow()
			}
			signIn(t, bob, base+"/login?rd="+url.QueryEscape(base+"/whoami"), "bob")
			steps := []struct {
				name, procedure, body, want string
			}{
				{"mapping eng gives bob MEMBER at once", "AddOrganizationGroup", `{"organization_id":"` + orgID + `","group_name":"eng"}`, "acme=MEMBER"},
				{"an ADMIN override raises bob at once", "UpdateOrganizationGroup", `{"organization_id":"` + orgID + `","group_name":"eng","role_override":"ORGANIZATION_ROLE_ADMIN"}`, "acme=ADMIN"},
				{"UNSPECIFIED clears the override", "UpdateOrganizationGroup", `{"organization_id":"` + orgID + `","group_name":"eng","role_override":"ORGANIZATION_ROLE_UNSPECIFIED"}`, "acme=MEMBER"},
				{"removing the mapping removes bob's role at once", "RemoveOrganizationGroup", `{"organization_id":"` + orgID + `","group_name":"eng"}`, ""},
			}
			for _, s := range steps {
				t.Run(s.name, func(t *testing.T) {
					if b.cached {
						// bob's session is in the local cache when the change
						// lands: a second /auth is answered from memory.
						// (A read races the echo of the previous change's
						// invalidation and is then not cached: try again.)
						for deadline := time.Now().Add(2 * time.Second); ; {
							before := metricValue(t, metricsBase, "groupgate_session_cache_hits_total")
							authHeaders(t, bob, base)
							if metricValue(t, metricsBase, "groupgate_session_cache_hits_total") > before {
								break
							}
							if time.Now().After(deadline) {
								t.Fatal("/auth is not answered from the local cache")
							}
						}
					}
					mustCall(t, base, token, "OrganizationService/"+s.procedure, s.body)
					code, h := authHeaders(t, bob, base)
					if code != http.StatusOK || h.Get("X-Auth-Request-Org-Roles") != s.want {
						t.Fatalf("/auth = %d, org roles %q, want %q", code, h.Get("X-Auth-Request-Org-Roles"), s.want)
					}
				})
			}
			t.Run("a token that was never issued is refused", func(t *testing.T) {
				if code, _ := apiCall(t, base, "gg_not-a-token", "OrganizationService/GetOrganizationByName", `{"name":"acme"}`); code != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401", code)
				}
			})
			t.Run("signing out ends the session", func(t *testing.T) {
				// The sign-out button's POST (a GET only shows the confirm page).
				resp, err := bob.Post(base+"/logout", "application/x-www-form-urlencoded", strings.NewReader(""))
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, resp)
				if code, _ := authHeaders(t, bob, base); code != http.StatusUnauthorized {
					t.Fatalf("/auth after logout = %d, want 401", code)
				}
			})
			t.Run("metrics count the logins", func(t *testing.T) {
				_, body := get(t, metricsBase+"/metrics")
				if !strings.Contains(body, `groupgate_logins_total{outcome="success",provider="okta"} 2`) {
					t.Fatalf("metrics lack two successful okta logins:\n%s", body)
				}
			})
			t.Run("metrics show the local cache only when it is on", func(t *testing.T) {
				_, body := get(t, metricsBase+"/metrics")
				if has := strings.Contains(body, "groupgate_session_cache_ready 1"); has != b.cached {
					t.Fatalf("groupgate_session_cache_ready 1 in metrics: %v, want %v", has, b.cached)
				}
			})
			stop()
			if err := <-done; err != nil {
				t.Fatalf("serve: %v", err)
			}
			noGoroutineIn(t, "(*Syncer).RunOutbox", "(*Cache).subscribe")
		})
	}
}

// scimCall sends a SCIM request with the bearer token and returns the
// status and decoded body.
func scimCall(t *testing.T, method, target, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw := readAll(t, resp)
	var out map[string]any
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatalf("%s %s answered %s with non-JSON %q", method, target, resp.Status, raw)
		}
	}
	return resp.StatusCode, out
}

func TestServeSCIMDeactivationEndsSessions(t *testing.T) {
	config := serveConfig(t, t.TempDir(), "scim:\n  enabled: true\n")
	code, out, errOut := runCLI(t, nil, "scim-token", "create", "--config", writeFile(t, "gg.yaml", config))
	if code != 0 {
		t.Fatalf("scim-token create: exit %d: %s", code, errOut)
	}
	token := lastLine(out)
	base, stop, done, logs := startServe(t, config)

	alice := newBrowser(t)
	signIn(t, alice, base+"/login?rd="+url.QueryEscape(base+"/whoami"), "alice")
	if code, _ := authHeaders(t, alice, base); code != http.StatusOK {
		t.Fatalf("/auth after sign-in = %d; logs:\n%s", code, logs)
	}

	t.Run("a request without the SCIM token is refused", func(t *testing.T) {
		if code, _ := scimCall(t, http.MethodGet, base+"/scim/v2/Users", "gg_wrong", ""); code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", code)
		}
	})
	var id string
	t.Run("the signed-in user is found by userName", func(t *testing.T) {
		code, list := scimCall(t, http.MethodGet, base+"/scim/v2/Users?filter="+url.QueryEscape(`userName eq "alice"`), token, "")
		res, _ := list["Resources"].([]any)
		if code != http.StatusOK || len(res) != 1 {
			t.Fatalf("status %d, body %v", code, list)
		}
		id, _ = res[0].(map[string]any)["id"].(string)
	})
	t.Run("deactivating the user ends her session at once", func(t *testing.T) {
		if id == "" {
			t.Skip("no user id")
		}
		code, body := scimCall(t, http.MethodPatch, base+"/scim/v2/Users/"+id, token,
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
		if code != http.StatusOK {
			t.Fatalf("PATCH: %d %v", code, body)
		}
		if code, _ := authHeaders(t, alice, base); code != http.StatusUnauthorized {
			t.Fatalf("/auth after deactivation = %d, want 401", code)
		}
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// samlProvider is a providers[] entry for the demo SAML IdP, served on an
// httptest server; certFile and keyFile are the SP key pair ("" for none).
func samlProvider(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	idp, err := devidp.NewSAML(srv.URL+"/saml-idp", devidp.SAMLConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/saml-idp/", idp)
	entry := "  - name: corp\n    type: saml\n    idp_metadata_url: " + idp.MetadataURL() + "\n"
	if certFile != "" {
		entry += "    sp_cert_file: " + certFile + "\n    sp_key_file: " + keyFile + "\n"
	}
	return entry
}

// withProvider inserts a providers[] entry after the OIDC one.
func withProvider(config, entry string) string {
	return strings.Replace(config, "store:\n", entry+"store:\n", 1)
}

func TestServeWithASAMLProvider(t *testing.T) {
	t.Run("without an SP key pair serve refuses to start and says what to add", func(t *testing.T) {
		config := withProvider(serveConfig(t, t.TempDir(), ""), samlProvider(t, "", ""))
		code, _, errOut := runCLI(t, nil, "serve", "--config", writeFile(t, "c.yaml", config))
		// The configuration check refuses it, naming the provider's entry.
		if code != 1 || !strings.Contains(errOut, ": providers[1]: ") || !strings.Contains(errOut, "sp_cert_file and sp_key_file") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("with one the picker offers both providers and the SP metadata is served", func(t *testing.T) {
		dir := t.TempDir()
		cert, key, err := writeSPKeyPair(dir)
		if err != nil {
			t.Fatal(err)
		}
		base, stop, done, logs := startServe(t, withProvider(serveConfig(t, dir, ""), samlProvider(t, cert, key)))
		code, body := get(t, base+"/login")
		if code != http.StatusOK || !strings.Contains(body, "provider=okta") || !strings.Contains(body, "provider=corp") {
			t.Fatalf("/login = %d:\n%s\nlogs:\n%s", code, body, logs)
		}
		code, body = get(t, base+"/saml/corp/metadata")
		if code != http.StatusOK || !strings.Contains(body, base+"/saml/corp/acs") {
			t.Fatalf("/saml/corp/metadata = %d:\n%s", code, body)
		}
		// /login?provider=corp starts a SAML login: a signed AuthnRequest
		// to the IdP's SSO endpoint.
		c := newBrowser(t)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := c.Get(base + "/login?provider=corp&rd=" + url.QueryEscape(base+"/whoami"))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusFound || !strings.HasSuffix(loc.Path, "/saml-idp/sso") ||
			loc.Query().Get("SAMLRequest") == "" || loc.Query().Get("Signature") == "" {
			t.Fatalf("%s to %q, want 302 to the IdP's SSO with a signed SAMLRequest", resp.Status, resp.Header.Get("Location"))
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
