package scim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
)

// replay is a recorded IdP request sequence (testdata/*.json).
type replay struct {
	Source string `json:"source"`
	Setup  struct {
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
			Email           string            `json:"email"`
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

func TestReplayIdPSequences(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) < 2 {
		t.Fatalf("replay corpora missing: %v %v", files, err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json")+" sequence passes", func(t *testing.T) {
			runReplay(t, file)
		})
	}
}

func runReplay(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rp replay
	if err := json.Unmarshal(raw, &rp); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	e := newEnv(t)
	for _, m := range rp.Setup.OrgMappings {
		e.mapOrg(m.Org, m.Group, groupgate.OrgRole(m.Role))
	}
	sso := map[string]groupgate.User{}
	for _, u := range rp.Setup.SSOUsers {
		sso[u.Email] = e.ssoLogin(u.UserName, u.Email)
	}
	vars := map[string]string{}
	subst := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, "{{"+k+"}}", v)
		}
		return s
	}
	for i, st := range rp.Steps {
		name := strconv.Itoa(i) + ": " + st.Name
		status, body, _ := e.do(st.Method, subst(st.Path), subst(string(st.Body)))
		if status != st.Status {
			t.Fatalf("%s: status %d, want %d: %v", name, status, st.Status, body)
		}
		for k, attr := range st.Capture {
			vars[k], _ = body[attr].(string)
		}
		if st.Response != nil {
			var wantResp map[string]any
			_ = json.Unmarshal([]byte(subst(jsonString(st.Response))), &wantResp)
			if !subset(wantResp, body) {
				t.Fatalf("%s: response %s\ndoes not contain %s", name, jsonString(body), jsonString(wantResp))
			}
		}
		for _, p := range st.Absent {
			if lookup(body, p) != nil {
				t.Fatalf("%s: %s present in %s", name, p, jsonString(body))
			}
		}
		if x := st.Expect; x != nil {
			if x.Deleted != "" {
				if _, err := e.st.GetUser(e.ctx, vars[x.Deleted]); !groupgate.IsCode(err, groupgate.NotFound) {
					t.Fatalf("%s: user still there: %v", name, err)
				}
				if n := len(e.sessions(vars[x.Deleted])); n != 0 {
					t.Fatalf("%s: %d sessions left", name, n)
				}
				continue
			}
			id := vars[x.User]
			u, err := e.st.GetUser(e.ctx, id)
			if err != nil {
				t.Fatalf("%s: load user: %v", name, err)
			}
			if x.SameAsSSO != "" && sso[x.SameAsSSO].ID != id {
				t.Fatalf("%s: SCIM user %s is not the SSO user %s", name, id, sso[x.SameAsSSO].ID)
			}
			if x.Active != nil && u.Active != *x.Active {
				t.Fatalf("%s: active %v", name, u.Active)
			}
			if x.Email != "" && u.Email != x.Email {
				t.Fatalf("%s: email column %q, want %q", name, u.Email, x.Email)
			}
			a, err := e.sy.Resolve(e.ctx, id)
			if err != nil {
				t.Fatalf("%s: resolve: %v", name, err)
			}
			if x.Groups != nil && !slices.Equal(a.Groups, x.Groups) {
				t.Fatalf("%s: groups %v, want %v", name, a.Groups, x.Groups)
			}
			if x.OrgRoles != nil && !sameRoles(e.orgRoles(id), x.OrgRoles) {
				t.Fatalf("%s: org roles %v, want %v", name, e.orgRoles(id), x.OrgRoles)
			}
			recs := e.sessions(id)
			if x.LiveSessions != nil && len(recs) != *x.LiveSessions {
				t.Fatalf("%s: %d live sessions, want %d", name, len(recs), *x.LiveSessions)
			}
			for _, r := range recs {
				if x.SessionGroups != nil && !slices.Equal(nonNil(r.Memberships.Groups), x.SessionGroups) {
					t.Fatalf("%s: session groups %v, want %v", name, r.Memberships.Groups, x.SessionGroups)
				}
				if x.SessionOrgRoles != nil && !sameRoles(r.Memberships.OrgRoles, x.SessionOrgRoles) {
					t.Fatalf("%s: session org roles %v, want %v", name, r.Memberships.OrgRoles, x.SessionOrgRoles)
				}
			}
			if x.LoginRefused != nil {
				_, _, err := e.sy.Login(e.ctx, groupgate.Identity{Provider: "replay", Subject: "replay-" + id, Username: u.UserName, Email: u.Email, EmailVerified: true})
				if refused := groupgate.IsCode(err, groupgate.Forbidden); refused != *x.LoginRefused {
					t.Fatalf("%s: login refused=%v (%v), want %v", name, refused, err, *x.LoginRefused)
				}
			}
		}
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sameRoles(got map[string]groupgate.OrgRole, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if string(got[k]) != v {
			return false
		}
	}
	return true
}

// subset reports whether every field of want is in got with an equal value;
// lists compare element-wise, each element as a subset.
func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !subset(v, g[k]) {
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
			if !subset(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, got)
}

// lookup follows a dotted path ("Resources.0.members").
func lookup(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}
