package e2e

import (
	"context"
	"encoding/json"
	"html"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/devidp"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/web"
)

// scimReplay is the part of a recorded IdP sequence (scim/testdata/*.json)
// this test acts on; the format is the one scim/replay_test.go defines.
type scimReplay struct {
	Setup struct {
		OrgMappings []struct{ Org, Group, Role string } `json:"org_mappings"`
		SSOUsers    []struct {
			UserName string `json:"userName"`
			Email    string `json:"email"`
		} `json:"sso_users"`
	} `json:"setup"`
	Steps []struct {
		Name     string            `json:"name"`
		Method   string            `json:"method"`
		Path     string            `json:"path"`
		Body     json.RawMessage   `json:"body"`
		Status   int               `json:"status"`
		Capture  map[string]string `json:"capture"`
		Response map[string]any    `json:"response"`
		Absent   []string          `json:"absent"`
		Expect   *struct {
			User            string            `json:"user"`
			SameAsSSO       string            `json:"same_as_sso"`
			Active          *bool             `json:"active"`
			Groups          []string          `json:"groups"`
			OrgRoles        map[string]string `json:"org_roles"`
			SessionGroups   []string          `json:"session_groups"`
			SessionOrgRoles map[string]string `json:"session_org_roles"`
			LiveSessions    *int              `json:"live_sessions"`
			LoginRefused    *bool             `json:"login_refused"`
			Deleted         string            `json:"deleted"`
		} `json:"expect"`
	} `json:"steps"`
}

// ssoAlias maps the corpus' SSO user onto a demo IdP account: a userName
// value (and a userName filter) becomes the demo user name, any other
// occurrence of the corpus email the demo email.
type ssoAlias struct {
	oldUserName, oldEmail string
	userName, email       string
}

func (a ssoAlias) value(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			x[k] = a.value(k, vv)
		}
	case []any:
		for i := range x {
			x[i] = a.value(key, x[i])
		}
	case string:
		if key == "userName" && x == a.oldUserName {
			return a.userName
		}
		if x == a.oldEmail {
			return a.email
		}
	}
	return v
}

func (a ssoAlias) body(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	if len(raw) == 0 {
		return raw
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(a.value("", v))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// path rewrites the filter of a query; the query is re-encoded only when
// it changed, so that {{var}} placeholders elsewhere survive.
func (a ssoAlias) path(t *testing.T, p string) string {
	t.Helper()
	base, rawQuery, ok := strings.Cut(p, "?")
	if !ok {
		return p
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatalf("query of %s: %v", p, err)
	}
	f := q.Get("filter")
	nf := strings.ReplaceAll(f, `userName eq "`+a.oldUserName+`"`, `userName eq "`+a.userName+`"`)
	nf = strings.ReplaceAll(nf, a.oldEmail, a.email)
	if nf == f {
		return p
	}
	q.Set("filter", nf)
	return base + "?" + q.Encode()
}

// TestSCIMReplaysThroughAuth replays the recorded Okta and Entra SCIM
// sequences as HTTP against a full replica while the SSO user holds a real
// browser session, and after every step checks that session's /auth: the
// org roles and groups the corpus expects, or 401 once the user is
// deactivated or deleted, and a refused or accepted sign-in where the
// corpus says so.
func TestSCIMReplaysThroughAuth(t *testing.T) {
	files, err := filepath.Glob("../scim/testdata/*.json")
	if err != nil || len(files) < 2 {
		t.Fatalf("replay corpora missing: %v %v", files, err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json")+" sequence shows in the live session's /auth", func(t *testing.T) {
			replayThroughAuth(t, file)
		})
	}
}

func replayThroughAuth(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rp scimReplay
	if err := json.Unmarshal(raw, &rp); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(rp.Setup.SSOUsers) != 1 {
		t.Fatalf("%s: %d SSO users; this test maps exactly one onto the demo IdP", file, len(rp.Setup.SSOUsers))
	}
	// alice, whose IdP groups must stay beside the SCIM ones.
	i := slices.IndexFunc(devidp.Users(), func(u devidp.User) bool { return u.Username == "alice" })
	if i < 0 {
		t.Fatal("the demo IdP has no alice")
	}
	demo := devidp.Users()[i]
	ssoCorpus := rp.Setup.SSOUsers[0]
	alias := ssoAlias{oldUserName: ssoCorpus.UserName, oldEmail: ssoCorpus.Email, userName: demo.Username, email: demo.Email}

	ctx := context.Background()
	client, prefix := testenv.Redis(t)
	r := startReplicas(t, 1, replicaConfig{openStore: sharedPostgres(t), client: client, prefix: prefix, cache: true})[0]
	scimTok := createToken(t, r.st, groupgate.TokenSCIM, "")

	orgs := map[string]string{}
	for _, m := range rp.Setup.OrgMappings {
		if _, ok := orgs[m.Org]; !ok {
			o, err := r.st.CreateOrganization(ctx, groupgate.Organization{Name: m.Org})
			if err != nil {
				t.Fatal(err)
			}
			orgs[m.Org] = o.ID
		}
		if _, err := r.syncer.AddOrgMapping(ctx, "e2e", orgs[m.Org], m.Group, groupgate.OrgRole(m.Role)); err != nil {
			t.Fatalf("map %s: %v", m.Group, err)
		}
	}

	browser := newBrowser(t)
	signIn(t, browser, r, demo.Username)
	ssoUser, err := store.UserByEmail(ctx, r.st, demo.Email)
	if err != nil {
		t.Fatal(err)
	}

	// What the live session must show; declarations carry over steps that
	// make none, so every step is checked.
	live := true
	wantOrg := map[string]string{}
	var wantSCIMGroups []string

	vars := map[string]string{}
	subst := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, "{{"+k+"}}", v)
		}
		return s
	}
	for i, st := range rp.Steps {
		name := strconv.Itoa(i) + ": " + st.Name
		status, body := scimDo(t, r, scimTok, st.Method, subst(alias.path(t, st.Path)), subst(string(alias.body(t, st.Body))))
		if status != st.Status {
			t.Fatalf("%s: status %d, want %d: %v", name, status, st.Status, body)
		}
		for k, attr := range st.Capture {
			vars[k], _ = body[attr].(string)
		}
		if st.Response != nil {
			var want map[string]any
			if err := json.Unmarshal([]byte(subst(string(alias.body(t, mustJSON(t, st.Response))))), &want); err != nil {
				t.Fatal(err)
			}
			if !jsonSubset(want, body) {
				t.Fatalf("%s: response %s\ndoes not contain %s", name, mustJSON(t, body), mustJSON(t, want))
			}
		}
		for _, p := range st.Absent {
			if jsonLookup(body, p) != nil {
				t.Fatalf("%s: %s present in %s", name, p, mustJSON(t, body))
			}
		}

		if x := st.Expect; x != nil {
			switch {
			case x.Deleted != "":
				if vars[x.Deleted] == ssoUser.ID {
					live = false
				}
				if _, err := r.st.GetUser(ctx, vars[x.Deleted]); !groupgate.IsCode(err, groupgate.NotFound) {
					t.Fatalf("%s: user still in the store: %v", name, err)
				}
			case vars[x.User] == ssoUser.ID:
				if x.SameAsSSO != "" && alias.value("", x.SameAsSSO) != demo.Email {
					t.Fatalf("%s: corpus names SSO user %q, not the one this test maps", name, x.SameAsSSO)
				}
				u, err := r.st.GetUser(ctx, ssoUser.ID)
				if err != nil {
					t.Fatalf("%s: load user: %v", name, err)
				}
				if x.Active != nil && u.Active != *x.Active {
					t.Fatalf("%s: active %v, want %v", name, u.Active, *x.Active)
				}
				if x.Active != nil && !*x.Active {
					live = false
				}
				if roles := x.SessionOrgRoles; roles != nil {
					wantOrg = roles
				} else if x.OrgRoles != nil {
					wantOrg = x.OrgRoles
				}
				if groups := x.SessionGroups; groups != nil {
					wantSCIMGroups = groups
				} else if x.Groups != nil {
					wantSCIMGroups = x.Groups
				}
				if x.OrgRoles != nil {
					a, err := r.syncer.Resolve(ctx, ssoUser.ID)
					if err != nil {
						t.Fatalf("%s: resolve: %v", name, err)
					}
					if got := a.Memberships().OrgRoles; !reflect.DeepEqual(roleMap(got), x.OrgRoles) {
						t.Fatalf("%s: effective org roles %v, want %v", name, got, x.OrgRoles)
					}
				}
				if x.LoginRefused != nil {
					status := trySignIn(t, browser, r, demo.Username)
					if refused := status == http.StatusForbidden; refused != *x.LoginRefused {
						t.Fatalf("%s: browser sign-in ended with %d, want refused=%v", name, status, *x.LoginRefused)
					}
					if !*x.LoginRefused {
						live = true
					}
				}
				if x.LiveSessions != nil {
					recs, err := r.backend.ListUserSessions(ctx, ssoUser.ID)
					if err != nil {
						t.Fatal(err)
					}
					if len(recs) != *x.LiveSessions {
						t.Fatalf("%s: %d live sessions, want %d", name, len(recs), *x.LiveSessions)
					}
				}
			case x.SameAsSSO != "":
				t.Fatalf("%s: SCIM user %s is not the SSO user %s", name, vars[x.User], ssoUser.ID)
			}
		}
		checkAuth(t, browser, r, name, live, wantOrg, append(slices.Clone(demo.Groups), wantSCIMGroups...))
	}
}

// checkAuth asserts the browser's /auth right now: 401 when the session
// must be gone, else 200 with exactly the expected org roles and groups.
func checkAuth(t *testing.T, c *http.Client, r *replica, step string, live bool, org map[string]string, groups []string) {
	t.Helper()
	resp, err := c.Get(r.url + "/auth")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if !live {
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: /auth = %d, want 401 for a deactivated or deleted user", step, resp.StatusCode)
		}
		return
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: /auth = %d, want 200", step, resp.StatusCode)
	}
	wantOrg := make([]string, 0, len(org))
	for _, k := range slices.Sorted(maps.Keys(org)) {
		wantOrg = append(wantOrg, k+"="+org[k])
	}
	if got, want := resp.Header.Get(web.HeaderOrgRoles), strings.Join(wantOrg, ","); got != want {
		t.Fatalf("%s: %s = %q, want %q", step, web.HeaderOrgRoles, got, want)
	}
	slices.Sort(groups)
	if got, want := resp.Header.Get(web.HeaderGroups), strings.Join(slices.Compact(groups), ","); got != want {
		t.Fatalf("%s: %s = %q, want %q", step, web.HeaderGroups, got, want)
	}
}

// trySignIn is signIn for a sign-in that may be refused: it returns the
// status the browser ends on.
func trySignIn(t *testing.T, c *http.Client, r *replica, user string) int {
	t.Helper()
	resp, err := c.Get(r.url + "/login?rd=" + url.QueryEscape(r.url+"/whoami"))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	m := formActionRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("login ended at %s with %s, not the IdP's form", resp.Request.URL, resp.Status)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"username": {user}, "password": {user + "-password"}}
	for _, h := range hiddenRE.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	resp, err = c.PostForm(action.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	return resp.StatusCode
}

// scimDo sends one SCIM request with the bearer token and returns the
// status and the decoded body (nil when empty).
func scimDo(t *testing.T, r *replica, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	var req *http.Request
	var err error
	if body == "" {
		req, err = http.NewRequest(method, r.url+path, nil)
	} else {
		req, err = http.NewRequest(method, r.url+path, strings.NewReader(body))
	}
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
			t.Fatalf("%s %s: response is not JSON: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, out
}

func roleMap(m map[string]groupgate.OrgRole) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonSubset reports whether every field of want is in got with an equal
// value; lists compare element-wise, each element as a subset (the
// semantics of scim/replay_test.go).
func jsonSubset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !jsonSubset(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !jsonSubset(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, got)
}

// jsonLookup follows a dotted path ("Resources.0.members").
func jsonLookup(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}
