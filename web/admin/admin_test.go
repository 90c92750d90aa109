package admin_test

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

func TestPagesRenderOnlyForThoseAllowedToSeeThem(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.signIn("alice"), e.signIn("bob")
		cases := []struct {
			name   string
			b      *browser
			path   string
			status int
			want   []string
			absent []string
		}{
			{"alice sees her access", alice, "/admin/", 200, []string{"My access", "acme", "owner · manual", `aria-current="page"`, "Audit log"}, nil},
			{"bob sees his groups and the source of his role", bob, "/admin/", 200, []string{"eng", "ops", "member · group eng", "login"}, []string{"Audit log", "Users</a>"}},
			{"a manual grant no mapped group backs is flagged", e.signIn("carol"), "/admin/", 200, []string{"beta", "owner · manual", "no mapped IdP group backs it"}, []string{"acme"}},
			{"bob sees his repository role through the base role", bob, "/admin/", 200, []string{"No repository role"}, nil},
			{"the instance admin lists every organization", alice, "/admin/orgs", 200, []string{"acme", "beta", "Create organization"}, nil},
			{"bob lists only the organizations he holds a role on", bob, "/admin/orgs", 200, []string{"acme"}, []string{"beta", "Create organization"}},
			{"alice manages acme", alice, "/admin/orgs/acme", 200, []string{"eng", "Preview mapping", "bob", "member · group eng", "acme/api"}, nil},
			{"bob sees acme without its forms", bob, "/admin/orgs/acme", 200, []string{"eng", "bob"}, []string{"Preview mapping", `name="csrf"`}},
			{"an organization bob has no role on is not found", bob, "/admin/orgs/beta", 404, nil, []string{"carol"}},
			{"alice manages acme/api", alice, "/admin/orgs/acme/repos/api", 200, []string{"Preview mapping", "Contributors"}, nil},
			{"bob sees acme/api without its forms", bob, "/admin/orgs/acme/repos/api", 200, []string{"acme/api"}, []string{"Preview mapping"}},
			{"the instance admin lists users", alice, "/admin/users", 200, []string{"alice", "bob", "carol", "SSO demo", "active"}, nil},
			{"the users search narrows the list", alice, "/admin/users?q=car", 200, []string{"carol"}, []string{"bob@example.com"}},
			{"bob may not list users", bob, "/admin/users", 403, []string{"only instance admins"}, []string{"carol"}},
			{"the instance admin sees SCIM", alice, "/admin/scim", 200, []string{e.srv.URL + "/scim/v2", "Create SCIM token"}, nil},
			{"bob may not see SCIM", bob, "/admin/scim", 403, nil, []string{"/scim/v2"}},
			{"the instance admin reads the audit log", alice, "/admin/audit", 200, []string{"organization.create", "org_mapping.add"}, nil},
			{"bob may not read the audit log", bob, "/admin/audit", 403, nil, []string{"organization.create"}},
			{"an unknown page is a page, not raw text", alice, "/admin/nothing", 404, []string{"page not found"}, nil},
		}
		for _, tc := range cases {
			p := tc.b.get(tc.path)
			if p.status != tc.status {
				t.Errorf("%s: status %d, want %d", tc.name, p.status, tc.status)
			}
			for _, s := range tc.want {
				if !p.has(s) {
					t.Errorf("%s: page lacks %q", tc.name, s)
				}
			}
			for _, s := range tc.absent {
				if p.has(s) {
					t.Errorf("%s: page shows %q", tc.name, s)
				}
			}
			if !strings.Contains(p.body, "<!doctype html>") {
				t.Errorf("%s: not an HTML page: %.80q", tc.name, p.body)
			}
			if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
				p.header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: headers %v", tc.name, p.header)
			}
		}
	})
}

func TestASignedOutBrowserIsSentToLoginAndBack(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		anon := &browser{e: e}
		p := anon.get("/admin/orgs/acme?x=1")
		if p.status != http.StatusSeeOther || p.location != e.srv.URL+"/login?rd="+url.QueryEscape(e.srv.URL+"/admin/orgs/acme?x=1") {
			t.Fatalf("signed out: %d to %q, want 303 to login returning here", p.status, p.location)
		}
		if p := anon.postRaw("/admin/tokens", url.Values{"note": {"x"}}, e.srv.URL, "same-origin"); p.status != http.StatusUnauthorized {
			t.Fatalf("signed-out form: %d, want 401", p.status)
		}
	})
}

func TestEveryFormRefusesAMissingWrongOrCrossSiteToken(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		alice := e.signIn("alice")
		good := alice.csrf()
		other := e.signIn("alice").csrf() // another session's token
		if other == good {
			t.Fatal("two sessions share a CSRF token")
		}
		forms := map[string]url.Values{
			"/admin/sessions/revoke":                      {"session": {"x"}},
			"/admin/tokens":                               {"note": {"n"}},
			"/admin/tokens/revoke":                        {"id": {"x"}},
			"/admin/orgs":                                 {"name": {"gamma"}},
			"/admin/orgs/acme/mappings/preview":           {"op": {"add"}, "group": {"ops"}},
			"/admin/orgs/acme/mappings/apply":             {"op": {"add"}, "group": {"ops"}},
			"/admin/orgs/acme/base-role":                  {"role": {"READ"}},
			"/admin/orgs/acme/members":                    {"user": {"carol"}, "role": {"MEMBER"}},
			"/admin/orgs/acme/repos":                      {"name": {"web"}},
			"/admin/orgs/acme/repos/api/mappings/preview": {"op": {"add"}, "group": {"ops"}},
			"/admin/orgs/acme/repos/api/mappings/apply":   {"op": {"add"}, "group": {"ops"}},
			"/admin/orgs/acme/repos/api/contributors":     {"user": {"carol"}, "role": {"READ"}},
			"/admin/scim/tokens":                          {"name": {"n"}},
			"/admin/users/sessions/revoke":                {"user": {"x"}},
			"/admin/scim/tokens/revoke":                   {"id": {"x"}},
		}
		before := auditCount(t, e)
		for path, form := range forms {
			for _, tc := range []struct {
				name, token, origin, site string
			}{
				{"no token", "", e.srv.URL, "same-origin"},
				{"another session's token", other, e.srv.URL, "same-origin"},
				{"a forged token", strings.Repeat("A", len(good)), e.srv.URL, "same-origin"},
				{"a cross-site post with the right token", good, "https://evil.example", "cross-site"},
			} {
				f := url.Values{}
				for k, v := range form {
					f[k] = v
				}
				if tc.token != "" {
					f.Set("csrf", tc.token)
				}
				p := alice.postRaw(path, f, tc.origin, tc.site)
				if p.status != http.StatusForbidden {
					t.Errorf("%s with %s: status %d, want 403", path, tc.name, p.status)
				}
				if !strings.Contains(p.body, "<!doctype html>") || !strings.Contains(p.body, `class="notice error"`) {
					t.Errorf("%s with %s: the refusal is not shown in a page: %.100q", path, tc.name, p.body)
				}
			}
			if p := alice.get(path); p.status == http.StatusOK && path != "/admin/orgs" {
				t.Errorf("GET %s answers 200: forms must be POST-only", path)
			}
		}
		if n := auditCount(t, e); n != before {
			t.Fatalf("refused forms wrote %d audit events", n-before)
		}
		if _, err := e.st.GetOrganizationByName(e.ctx, "gamma"); !groupgate.IsCode(err, groupgate.NotFound) {
			t.Fatalf("a refused form created an organization: %v", err)
		}
	})
}

func auditCount(t *testing.T, e *env) int {
	t.Helper()
	evs, err := e.st.ListAudit(e.ctx, 0, 0)
	if err != nil {
		t.Fatalf("list audit: %v", err)
	}
	return len(evs)
}

func TestAMappingIsPreviewedThenAppliedToLiveSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		alice := e.signIn("alice")
		bobSession := e.signIn("bob")
		form := url.Values{"op": {"add"}, "group": {"ops"}, "override": {"ADMIN"}}
		p := alice.post("/admin/orgs/acme/mappings/preview", form)
		if p.status != 200 || !p.has("bob") || !p.has("role changes") || !p.has("member") || !p.has("admin") || !p.has("Apply this change") {
			t.Fatalf("preview: %d, want bob's change from member to admin:\n%s", p.status, p.body)
		}
		if _, err := e.st.GetOrgMapping(e.ctx, e.acme.ID, "ops"); !groupgate.IsCode(err, groupgate.NotFound) {
			t.Fatalf("the preview changed the mapping: %v", err)
		}
		p = alice.post("/admin/orgs/acme/mappings/apply", form)
		if p.status != http.StatusSeeOther || p.location != "/admin/orgs/acme?done=mapping-add" {
			t.Fatalf("apply: %d to %q", p.status, p.location)
		}
		m, err := e.st.GetOrgMapping(e.ctx, e.acme.ID, "ops")
		if err != nil || m.RoleOverride != groupgate.OrgRoleAdmin {
			t.Fatalf("mapping after apply = %+v, %v", m, err)
		}
		rec, err := e.backend.Load(e.ctx, bobSession.rec.ID)
		if err != nil || rec.Memberships.OrgRoles["acme"] != groupgate.OrgRoleAdmin {
			t.Fatalf("bob's live session after apply: %+v, %v; want ADMIN on acme", rec, err)
		}
		page := alice.get("/admin/orgs/acme?done=mapping-add")
		if !page.has("The mapping was added") || !page.has("admin · group ops") {
			t.Fatalf("org page after apply lacks the notice or bob's new source:\n%s", page.body)
		}
		evs, err := e.st.SearchAudit(e.ctx, store.AuditFilter{Actor: sync.UserActor(e.users["alice"].ID), Action: "org_mapping.add"}, 0)
		if err != nil || len(evs) != 1 {
			t.Fatalf("audit of the change: %+v, %v", evs, err)
		}

		// Removing is previewed and applied the same way.
		rm := url.Values{"op": {"remove"}, "group": {"ops"}}
		if p := alice.post("/admin/orgs/acme/mappings/preview", rm); !p.has("bob") || !p.has("role changes") {
			t.Fatalf("remove preview lacks bob:\n%s", p.body)
		}
		if p := alice.post("/admin/orgs/acme/mappings/apply", rm); p.status != http.StatusSeeOther {
			t.Fatalf("remove apply: %d %s", p.status, p.body)
		}
		if rec, _ := e.backend.Load(e.ctx, bobSession.rec.ID); rec.Memberships.OrgRoles["acme"] != groupgate.OrgRoleMember {
			t.Fatalf("bob after removal: %+v, want MEMBER through eng", rec.Memberships)
		}
	})
}

func TestARepositoryMappingIsPreviewedThenApplied(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		alice := e.signIn("alice")
		bobSession := e.signIn("bob")
		form := url.Values{"op": {"add"}, "group": {"ops"}, "override": {"WRITE"}}
		if p := alice.post("/admin/orgs/acme/repos/api/mappings/preview", form); p.status != 200 || !p.has("bob") || !p.has("gains a role") {
			t.Fatalf("repo preview: %d\n%s", p.status, p.body)
		}
		if p := alice.post("/admin/orgs/acme/repos/api/mappings/apply", form); p.status != http.StatusSeeOther {
			t.Fatalf("repo apply: %d\n%s", p.status, p.body)
		}
		if rec, _ := e.backend.Load(e.ctx, bobSession.rec.ID); rec.Memberships.RepoRoles["acme/api"] != groupgate.RepoRoleWrite {
			t.Fatalf("bob after the repo mapping: %+v", rec.Memberships)
		}
		if p := alice.get("/admin/orgs/acme/repos/api"); !p.has("write · group ops") {
			t.Fatalf("repo page lacks bob's source:\n%s", p.body)
		}
		if p := bobSession.get("/admin/"); !p.has(`href="/admin/orgs/acme/repos/api"`) || !p.has("write · group ops") {
			t.Fatalf("bob's My access lacks his repository role:\n%s", p.body)
		}
	})
}

func TestNonAdminsCannotChangeWhatTheyMaySee(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		bob := e.signIn("bob")
		before := auditCount(t, e)
		for _, tc := range []struct {
			path   string
			form   url.Values
			status int
		}{
			{"/admin/orgs/acme/mappings/preview", url.Values{"op": {"add"}, "group": {"ops"}, "override": {"ADMIN"}}, 403},
			{"/admin/orgs/acme/mappings/apply", url.Values{"op": {"add"}, "group": {"ops"}, "override": {"ADMIN"}}, 403},
			{"/admin/orgs/acme/base-role", url.Values{"role": {"ADMIN"}}, 403},
			{"/admin/orgs/acme/members", url.Values{"user": {"bob"}, "role": {"OWNER"}}, 403},
			{"/admin/orgs/acme/repos/api/mappings/apply", url.Values{"op": {"add"}, "group": {"ops"}}, 403},
			{"/admin/orgs/acme/repos/api/contributors", url.Values{"user": {"bob"}, "role": {"ADMIN"}}, 403},
			{"/admin/orgs/beta/mappings/apply", url.Values{"op": {"add"}, "group": {"ops"}}, 404},
			{"/admin/orgs", url.Values{"name": {"gamma"}}, 403},
			{"/admin/scim/tokens", url.Values{"name": {"mine"}}, 403},
			{"/admin/users/sessions/revoke", url.Values{"user": {e.users["alice"].ID}}, 403},
		} {
			if p := bob.post(tc.path, tc.form); p.status != tc.status {
				t.Errorf("bob POST %s: %d, want %d", tc.path, p.status, tc.status)
			}
		}
		if n := auditCount(t, e); n != before {
			t.Fatalf("refused changes wrote %d audit events", n-before)
		}
		acc, _ := e.syncer.Resolve(e.ctx, e.users["bob"].ID)
		if acc.OrgRole(e.acme.ID) != groupgate.OrgRoleMember {
			t.Fatalf("bob's role changed: %+v", acc.Orgs)
		}
	})
}

var tokenRE = regexp.MustCompile(`value="(gg_[A-Za-z0-9_-]+)"`)

func TestAnAPITokenIsShownOnceAndCanBeRevoked(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		bob := e.signIn("bob")
		p := bob.post("/admin/tokens", url.Values{"note": {"laptop"}})
		m := tokenRE.FindStringSubmatch(p.body)
		if p.status != 200 || m == nil {
			t.Fatalf("create token: %d, no token shown:\n%s", p.status, p.body)
		}
		sum := sha256.Sum256([]byte(m[1]))
		tok, err := e.st.GetTokenByHash(e.ctx, groupgate.TokenAPI, sum[:])
		if err != nil || tok.UserID != e.users["bob"].ID || tok.ExpiresAt.IsZero() {
			t.Fatalf("the shown token is not bob's expiring token: %+v, %v", tok, err)
		}
		again := bob.get("/admin/")
		if strings.Contains(again.body, m[1]) {
			t.Fatal("the token is shown again")
		}
		if !again.has("laptop") {
			t.Fatal("the token is not listed")
		}
		// Nobody revokes another user's token.
		alice := e.signIn("alice")
		if p := alice.post("/admin/tokens/revoke", url.Values{"id": {tok.ID}}); p.status != http.StatusNotFound {
			t.Fatalf("alice revoking bob's token: %d, want 404", p.status)
		}
		if p := bob.post("/admin/tokens/revoke", url.Values{"id": {tok.ID}}); p.status != http.StatusSeeOther {
			t.Fatalf("revoke: %d\n%s", p.status, p.body)
		}
		if _, err := e.st.GetTokenByHash(e.ctx, groupgate.TokenAPI, sum[:]); !groupgate.IsCode(err, groupgate.NotFound) {
			t.Fatalf("revoked token still there: %v", err)
		}
	})
}

var scimTokenRE = regexp.MustCompile(`value="(ggscim_[A-Za-z0-9_-]+)"`)

func TestAnInstanceAdminCreatesASCIMTokenShownOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		alice := e.signIn("alice")
		p := alice.post("/admin/scim/tokens", url.Values{"name": {"Okta"}})
		m := scimTokenRE.FindStringSubmatch(p.body)
		if p.status != 200 || m == nil {
			t.Fatalf("create SCIM token: %d\n%s", p.status, p.body)
		}
		sum := sha256.Sum256([]byte(m[1]))
		tok, err := e.st.GetTokenByHash(e.ctx, groupgate.TokenSCIM, sum[:])
		if err != nil {
			t.Fatalf("the shown SCIM token is not stored: %v", err)
		}
		if again := alice.get("/admin/scim"); strings.Contains(again.body, m[1]) || !again.has("Okta") {
			t.Fatal("the SCIM token is shown again, or not listed")
		}
		if p := alice.post("/admin/scim/tokens/revoke", url.Values{"id": {tok.ID}}); p.status != http.StatusSeeOther {
			t.Fatalf("revoke: %d", p.status)
		}
		if _, err := e.st.GetTokenByHash(e.ctx, groupgate.TokenSCIM, sum[:]); !groupgate.IsCode(err, groupgate.NotFound) {
			t.Fatalf("revoked SCIM token still there: %v", err)
		}
	})
}

func TestASessionIsEndedFromMyAccess(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		laptop, phone := e.signIn("bob"), e.signIn("bob")
		p := laptop.get("/admin/")
		hint := regexp.MustCompile(`name="session" value="([^"]+)"`).FindAllStringSubmatch(p.body, -1)
		if len(hint) != 2 {
			t.Fatalf("My access lists %d sessions, want 2", len(hint))
		}
		var phoneHint string
		for _, h := range hint {
			if !strings.Contains(p.body, h[1]+"</code> <span class=\"tag\">this browser") {
				phoneHint = h[1]
			}
		}
		if p := laptop.post("/admin/sessions/revoke", url.Values{"session": {phoneHint}}); p.status != http.StatusSeeOther {
			t.Fatalf("revoke: %d\n%s", p.status, p.body)
		}
		if _, err := e.backend.Load(e.ctx, phone.rec.ID); !groupgate.IsCode(err, groupgate.NotFound) {
			t.Fatalf("the phone's session lives on: %v", err)
		}
		if p := phone.get("/admin/"); p.status != http.StatusSeeOther {
			t.Fatalf("the ended session still reaches the console: %d", p.status)
		}
		if p := laptop.get("/admin/"); p.status != 200 {
			t.Fatalf("the laptop lost its session: %d", p.status)
		}
	})
}

func TestTheAuditLogIsFilteredAndPaged(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		for i := range 60 {
			if _, err := e.st.AppendAudit(e.ctx, groupgate.AuditEvent{Actor: sync.UserActor(e.users["bob"].ID), Action: "test.event", TargetType: "thing", TargetID: fmt.Sprintf("t%02d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		alice := e.signIn("alice")
		first := alice.get("/admin/audit?actor=bob&action=test.event")
		rows := strings.Count(first.body, "<code>test.event</code>")
		if first.status != 200 || rows != 50 || !first.has("t59") || first.has("t09") || first.has("organization.create") {
			t.Fatalf("first page: %d with %d rows\n%s", first.status, rows, first.body)
		}
		next := regexp.MustCompile(`href="(/admin/audit\?[^"]+)">Older`).FindStringSubmatch(first.body)
		if next == nil {
			t.Fatal("no link to older events")
		}
		older := alice.get(strings.ReplaceAll(next[1], "&amp;", "&"))
		if n := strings.Count(older.body, "<code>test.event</code>"); n != 10 || !older.has("t00") || older.has("t10<") {
			t.Fatalf("older page has %d rows\n%s", n, older.body)
		}
		if strings.Contains(older.body, ">Older") {
			t.Fatal("the last page links to older events")
		}
		target := alice.get("/admin/audit?target=t07")
		if n := strings.Count(target.body, "<code>test.event</code>"); n != 1 {
			t.Fatalf("target filter: %d rows", n)
		}
		byRaw := alice.get("/admin/audit?actor=" + url.QueryEscape(sync.UserActor(e.users["alice"].ID)))
		if byRaw.has("test.event") || !byRaw.has("org_mapping") && !byRaw.has("No event") {
			t.Fatalf("raw actor filter shows bob's events")
		}
	})
}

func TestLinksAndRedirectsKeepThePublicURLsPathPrefix(t *testing.T) {
	e := newEnv(t, storeKinds[0].open(t), "/_gg")
	anon := &browser{e: e}
	if p := anon.get("/admin/"); p.location != e.srv.URL+"/_gg/login?rd="+url.QueryEscape(e.srv.URL+"/_gg/admin/") {
		t.Fatalf("signed out: to %q, want the prefixed login", p.location)
	}
	alice := e.signIn("alice")
	p := alice.get("/admin/orgs/acme")
	for _, want := range []string{`href="/_gg/admin/orgs"`, `action="/_gg/admin/orgs/acme/mappings/preview"`, `action="/_gg/logout"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(p.body, `"/admin/`) {
		t.Error("page has an unprefixed /admin/ link")
	}
	if p := alice.post("/admin/orgs/acme/base-role", url.Values{"role": {"READ"}}); p.location != "/_gg/admin/orgs/acme?done=base-role" {
		t.Fatalf("after a form: to %q", p.location)
	}
}

func TestAnOrganizationAdminCannotTouchARoleAboveTheirOwn(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		if _, err := e.syncer.AddOrgMapping(e.ctx, "test", e.acme.ID, "ops", groupgate.OrgRoleAdmin); err != nil {
			t.Fatal(err)
		}
		bob := e.signIn("bob") // ADMIN of acme through ops
		for _, tc := range []struct {
			name   string
			form   url.Values
			status int
		}{
			{"making carol OWNER", url.Values{"user": {"carol"}, "role": {"OWNER"}}, http.StatusForbidden},
			{"removing alice's OWNER role", url.Values{"user": {"alice"}, "role": {""}}, http.StatusForbidden},
			{"demoting alice to MEMBER", url.Values{"user": {"alice@example.com"}, "role": {"MEMBER"}}, http.StatusForbidden},
			{"making carol MEMBER", url.Values{"user": {"carol"}, "role": {"MEMBER"}}, http.StatusSeeOther},
			{"making carol ADMIN", url.Values{"user": {"carol"}, "role": {"ADMIN"}}, http.StatusSeeOther},
			{"removing carol's role", url.Values{"user": {"carol"}, "role": {""}}, http.StatusSeeOther},
			{"removing a role carol no longer has", url.Values{"user": {"carol"}, "role": {""}}, http.StatusNotFound},
			{"naming nobody", url.Values{"user": {"nobody"}, "role": {"MEMBER"}}, http.StatusNotFound},
		} {
			if p := bob.post("/admin/orgs/acme/members", tc.form); p.status != tc.status {
				t.Errorf("%s: %d, want %d\n%s", tc.name, p.status, tc.status, p.body)
			}
		}
		if m, err := e.st.GetOrgMember(e.ctx, e.acme.ID, e.users["alice"].ID); err != nil || m.Role != groupgate.OrgRoleOwner {
			t.Fatalf("alice's manual role: %+v, %v", m, err)
		}
	})
}

func TestAnInstanceAdminSignsAUserOutEverywhere(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.signIn("alice"), e.signIn("bob")
		e.signIn("bob")
		if p := alice.post("/admin/users/sessions/revoke", url.Values{"user": {e.users["bob"].ID}}); p.status != http.StatusSeeOther {
			t.Fatalf("revoke: %d\n%s", p.status, p.body)
		}
		if recs, _ := e.backend.ListUserSessions(e.ctx, e.users["bob"].ID); len(recs) != 0 {
			t.Fatalf("bob still has %d sessions", len(recs))
		}
		if p := bob.get("/admin/"); p.status != http.StatusSeeOther {
			t.Fatalf("bob's ended session reaches the console: %d", p.status)
		}
		evs, _ := e.st.SearchAudit(e.ctx, store.AuditFilter{Action: sync.ActionSessionsRevoke, TargetID: e.users["bob"].ID}, 0)
		if len(evs) != 1 || !strings.Contains(string(evs[0].After), `"revoked":2`) {
			t.Fatalf("audit of the revocation: %+v", evs)
		}
	})
}

func TestMyAccessShowsTheGroupsTheFilterHid(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		plain := e.signIn("bob")
		if p := plain.get("/admin/"); strings.Contains(p.body, `id="dropped-groups"`) {
			t.Fatal("My access warns of hidden groups for a login without any")
		}
		filtered := e.signInWith("bob", func(rec *session.Record) {
			rec.Identity.DroppedGroups = []string{"contractors", "sales"}
			rec.Identity.DroppedGroupCount = 3
		})
		p := filtered.get("/admin/")
		if p.status != http.StatusOK {
			t.Fatalf("My access: %d", p.status)
		}
		for _, want := range []string{`id="dropped-groups"`, "contractors", "sales", "and 1 more"} {
			if !strings.Contains(p.body, want) {
				t.Errorf("My access lacks %q", want)
			}
		}
	})
}
