package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// devRun is a running `groupgate dev`.
type devRun struct {
	base   string // the URL the banner says to open, without the final /
	token  string // alice's API token from the banner
	banner string
	logs   *syncBuffer
	stop   func()
	done   <-chan error
}

var (
	openRE  = regexp.MustCompile(`Open (http://\S+)/ in a browser`)
	tokenRE = regexp.MustCompile(`(?m)^API token for alice.*:\n(gg_[A-Za-z0-9_-]+)$`)
	storeRE = regexp.MustCompile(`Store: SQLite in (\S+) `)
)

// startDev runs `groupgate dev --listen 127.0.0.1:0` like main() does,
// with env as its environment, and reads the banner.
func startDev(t *testing.T, env map[string]string) *devRun {
	t.Helper()
	out, logs := &syncBuffer{}, &syncBuffer{}
	m := NewMain()
	m.Stdout, m.Stderr = out, logs
	m.LookupEnv = envFrom(env)
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.ParseFlags(ctx, []string{"dev", "--listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- errors.Join(m.Run(ctx), m.Close()) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if _, err := m.Addr(wctx); err != nil {
		cancel()
		t.Fatalf("dev did not start: %v; run: %v; logs:\n%s", err, <-errc, logs)
	}
	t.Cleanup(cancel)
	r := &devRun{banner: out.String(), logs: logs, stop: cancel, done: errc}
	if m := openRE.FindStringSubmatch(r.banner); m != nil {
		r.base = m[1]
	}
	if m := tokenRE.FindStringSubmatch(r.banner); m != nil {
		r.token = m[1]
	}
	if r.base == "" || r.token == "" {
		t.Fatalf("banner lacks the URL or the token:\n%s", r.banner)
	}
	return r
}

// loginURL starts a login at provider that returns to the demo app.
func (d *devRun) loginURL(provider string) string {
	return d.base + "/login?" + url.Values{"provider": {provider}, "rd": {d.base + "/"}}.Encode()
}

func TestDev(t *testing.T) {
	modes := []struct {
		name string
		env  func(t *testing.T) map[string]string
		want string // in the banner
	}{
		{"with in-process sessions", func(*testing.T) map[string]string { return nil }, "Sessions: in-process"},
		{"with Redis from REDIS_URL", func(t *testing.T) map[string]string {
			return map[string]string{"REDIS_URL": "redis://" + testenv.RedisAddr(t) + "/0"}
		}, "Sessions: Redis at "},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			d := startDev(t, mode.env(t))
			t.Run("the banner names the users, the providers, the store, the sessions and plain-http cookies", func(t *testing.T) {
				for _, want := range []string{devOIDCProvider + " (OIDC", devSAMLProvider + " (SAML", "alice  alice-password  eng, platform-admins", "carol  carol-password  (none)",
					"eng → acme MEMBER", "platform-admins → acme ADMIN", mode.want, "not marked Secure"} {
					if !strings.Contains(d.banner, want) {
						t.Errorf("banner lacks %q:\n%s", want, d.banner)
					}
				}
			})
			t.Run("alice's token works before she signs in", func(t *testing.T) {
				org := mustCall(t, d.base, d.token, "OrganizationService/GetOrganizationByName", `{"name":"acme"}`)
				if id, _ := org["organization"].(map[string]any)["id"].(string); id == "" {
					t.Fatalf("no acme: %v", org)
				}
				repo := mustCall(t, d.base, d.token, "RepositoryService/GetRepositoryByFullName", `{"full_name":"acme/api"}`)
				if id, _ := repo["repository"].(map[string]any)["id"].(string); id == "" {
					t.Fatalf("no acme/api: %v", repo)
				}
			})
			t.Run("opening the URL shows a picker offering both demo providers", func(t *testing.T) {
				code, body := get(t, d.base+"/")
				for _, p := range []string{devOIDCProvider, devSAMLProvider} {
					if code != http.StatusOK || !strings.Contains(body, "provider="+p) {
						t.Errorf("got %d without a link to %s:\n%s", code, p, body)
					}
				}
			})
			t.Run("signing in with OIDC shows alice the demo app with her headers", func(t *testing.T) {
				resp, body := signIn(t, newBrowser(t), d.loginURL(devOIDCProvider), "alice")
				if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != d.base+"/" {
					t.Fatalf("ended at %s with %s", resp.Request.URL, resp.Status)
				}
				for _, want := range []string{
					"<th>X-Auth-Request-User</th><td>alice</td>",
					"<th>X-Auth-Request-Groups</th><td>eng,platform-admins</td>",
					"<th>X-Auth-Request-Org-Roles</th><td>acme=ADMIN</td>",
					// The signed identity, decoded.
					"<pre id=\"jwt\">", "&#34;preferred_username&#34;: &#34;alice&#34;", "&#34;acme&#34;: &#34;ADMIN&#34;",
				} {
					if !strings.Contains(body, want) {
						t.Errorf("demo app page lacks %q:\n%s", want, body)
					}
				}
				if strings.Contains(body, "_groupgate=") {
					t.Error("the session cookie reached the demo app")
				}
			})
			t.Run("carol, in no group, signs in with no roles", func(t *testing.T) {
				_, body := signIn(t, newBrowser(t), d.loginURL(devOIDCProvider), "carol")
				if !strings.Contains(body, "<th>X-Auth-Request-User</th><td>carol</td>") || strings.Contains(body, "acme=") {
					t.Fatalf("carol's page:\n%s", body)
				}
			})
			t.Run("metrics show the local session cache only with Redis", func(t *testing.T) {
				cached := strings.HasPrefix(mode.want, "Sessions: Redis")
				if got := metricValue(t, d.base, "groupgate_session_cache_ready") == 1; got != cached {
					t.Fatalf("groupgate_session_cache_ready is 1: %v, want %v", got, cached)
				}
			})
			t.Run("stopping removes the temporary directory and ends every background loop", func(t *testing.T) {
				m := storeRE.FindStringSubmatch(d.banner)
				if m == nil {
					t.Fatalf("banner does not name the store directory:\n%s", d.banner)
				}
				if _, err := os.Stat(m[1]); err != nil {
					t.Fatalf("store directory missing while running: %v", err)
				}
				// With Redis, the run's keys (alice's and carol's sessions)
				// go with it too.
				countKeys := func() int { return -1 }
				if k := regexp.MustCompile(`keys under "([^"]+)"`).FindStringSubmatch(d.banner); k != nil {
					client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
					defer client.Close()
					countKeys = func() int {
						keys, err := client.Keys(context.Background(), k[1]+"*").Result()
						if err != nil {
							t.Fatalf("list dev keys: %v", err)
						}
						return len(keys)
					}
					if n := countKeys(); n == 0 {
						t.Fatalf("no keys under %q while dev runs", k[1])
					}
				}
				d.stop()
				if err := <-d.done; err != nil {
					t.Fatalf("dev: %v", err)
				}
				if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("store directory %s still exists after exit: %v", m[1], err)
				}
				if n := countKeys(); n > 0 {
					t.Fatalf("%d Redis keys of this dev run remain after exit", n)
				}
				noGoroutineIn(t, "(*Syncer).RunOutbox", "(*Cache).subscribe", "(*Issuer).Run")
			})
		})
	}
}

func TestDevRefusesABadRedisURL(t *testing.T) {
	code, _, errOut := runCLI(t, map[string]string{"REDIS_URL": "http://nope"}, "dev", "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "REDIS_URL") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// devSCIMExample is the banner's SCIM example: the indented lines after
// the "SCIM example" paragraph, up to the blank line.
func devSCIMExample(t *testing.T, banner string) string {
	t.Helper()
	_, rest, ok := strings.Cut(banner, "\nSCIM example:")
	if !ok {
		t.Fatalf("banner has no SCIM example:\n%s", banner)
	}
	var script strings.Builder
	for _, line := range strings.Split(rest, "\n")[1:] {
		if line == "" && script.Len() > 0 {
			break
		}
		if strings.HasPrefix(line, "  ") {
			script.WriteString(strings.TrimPrefix(line, "  ") + "\n")
		}
	}
	return script.String()
}

// TestDevShowsAllThreeWaysIn: the banner names the admin UI, and the SCIM
// example it prints, run as printed, changes a signed-in user's roles at
// once (issue 13 point 3).
func TestDevShowsAllThreeWaysIn(t *testing.T) {
	needTools(t, "bash", "curl", "jq")
	d := startDev(t, nil)
	if !strings.Contains(d.banner, "Admin UI: "+d.base+"/admin/") {
		t.Errorf("banner lacks the admin UI's address:\n%s", d.banner)
	}
	if !regexp.MustCompile(`SCIM token:\nggscim_[A-Za-z0-9_-]+\n`).MatchString(d.banner) {
		t.Errorf("banner lacks the SCIM token alone on its line:\n%s", d.banner)
	}
	// The API example under alice's token, as printed.
	apiExample := regexp.MustCompile(`(?m)^  (curl -s -H 'Authorization: Bearer gg_.*\\\n.*)$`).FindStringSubmatch(d.banner)
	if apiExample == nil {
		t.Fatalf("banner lacks the API curl example:\n%s", d.banner)
	}
	if out, err := exec.Command("bash", "-e", "-o", "pipefail", "-c", apiExample[1]).CombinedOutput(); err != nil || !strings.Contains(string(out), `"name":"acme"`) {
		t.Errorf("the banner's API example: %v\n--- script\n%s\n--- output\n%s", err, apiExample[1], out)
	}

	bob := newBrowser(t)
	if _, body := signIn(t, bob, d.loginURL(devOIDCProvider), "bob"); !strings.Contains(body, "<th>X-Auth-Request-Org-Roles</th><td>acme=MEMBER</td>") {
		t.Fatalf("bob's demo app page before the push:\n%s", body)
	}
	script := devSCIMExample(t, d.banner)
	out, err := exec.Command("bash", "-e", "-o", "pipefail", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("the banner's SCIM example failed: %v\n--- script\n%s--- output\n%s", err, script, out)
	}
	resp, err := bob.Get(d.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); !strings.Contains(body, "<th>X-Auth-Request-Org-Roles</th><td>acme=ADMIN</td>") {
		t.Fatalf("bob's next request after the SCIM push:\n%s\n--- SCIM output\n%s", body, out)
	}
}
