package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/idtoken"
	"github.com/groupgate/groupgate/sync"
	"github.com/groupgate/groupgate/web"
)

// seedRepo gives the harness repository acme/api with platform-admins →
// WRITE: alice (eng, platform-admins) holds acme MEMBER and acme/api
// WRITE; bob (eng) holds acme MEMBER only.
func seedRepo(t *testing.T, h *harness) {
	t.Helper()
	ctx := context.Background()
	repo, err := h.syncer.CreateRepository(ctx, "test", groupgate.Repository{OrganizationID: h.acme.ID, Name: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.syncer.AddRepoMapping(ctx, "test", repo.ID, "platform-admins", groupgate.RepoRoleWrite); err != nil {
		t.Fatal(err)
	}
}

func TestAuthAnswersPerRouteRequirements(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0]})
	seedRepo(t, h)
	alice, bob, anonymous := h.browser(), h.browser(), h.browser()
	h.login(alice, "demo", "alice", "/", "/")
	h.login(bob, "demo", "bob", "/", "/")

	for _, tt := range []struct {
		name   string
		who    *http.Client
		query  string
		want   int
		reason string
	}{
		{"any role on the organization is enough without min_role", alice, "org=acme", 200, ""},
		{"names match as the store matches them, whatever their case", alice, "org=ACME&min_role=member", 200, ""},
		{"repository names too", alice, "repo=Acme/API&min_role=WRITE", 200, ""},
		{"a role below min_role is refused with the reason", alice, "org=acme&min_role=WRITER", 403, "requires WRITER on organization acme, has MEMBER"},
		{"the BSR enum spelling is accepted", alice, "org=acme&min_role=ORGANIZATION_ROLE_MEMBER", 200, ""},
		{"an organization the caller has no role on is refused", alice, "org=beta", 403, "requires MEMBER on organization beta, has none"},
		{"a repository role at min_role is enough", alice, "repo=acme/api&min_role=REPOSITORY_ROLE_WRITE", 200, ""},
		{"a higher repository role than held is refused", alice, "repo=acme/api&min_role=admin", 403, "requires ADMIN on repository acme/api, has WRITE"},
		{"no role on the repository is refused", bob, "repo=acme/api&min_role=READ", 403, "requires READ on repository acme/api, has none"},
		{"a member of the group passes", alice, "group=platform-admins", 200, ""},
		{"a non-member of the group is refused", bob, "group=platform-admins", 403, "requires membership of group platform-admins"},
		{"every requirement must hold", bob, "group=eng&org=acme&min_role=WRITER", 403, "requires WRITER"},
		{"redirect=1 does not change a refusal", bob, "redirect=1&group=platform-admins", 403, "requires membership"},
		{"anonymous callers are 401, not 403", anonymous, "org=acme&min_role=WRITER", 401, "not signed in"},
		{"an unknown role is a bad request", alice, "org=acme&min_role=SUPERUSER", 400, "unknown organization role"},
		{"a repository role on an organization is a bad request", alice, "org=acme&min_role=WRITE", 400, "unknown organization role"},
		{"min_role alone is a bad request", alice, "min_role=WRITER", 400, "min_role needs org or repo"},
		{"org and repo together are a bad request", alice, "org=acme&repo=acme/api", 400, "cannot be combined"},
		{"a repository without its organization is a bad request", alice, "repo=api", 400, "full name"},
		{"a misspelt parameter is a bad request, never ignored", bob, "grop=platform-admins", 400, `unknown parameter "grop"`},
		{"a repeated parameter is a bad request", alice, "org=acme&org=beta", 400, "given 2 times"},
		{"an empty parameter is a bad request", alice, "group=", 400, "is empty"},
		{"a bad request is one for anonymous callers too", anonymous, "min_role=WRITER", 400, "min_role needs org or repo"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.get(tt.who, h.srv.URL+"/auth?"+tt.query, nil)
			body := readBody(t, resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("/auth?%s = %s, want %d: %s", tt.query, resp.Status, tt.want, body)
			}
			if got := resp.Header.Get(web.HeaderReason); !strings.Contains(got, tt.reason) || (tt.reason == "") != (got == "") {
				t.Fatalf("%s = %q, want it to say %q", web.HeaderReason, got, tt.reason)
			}
			if user := resp.Header.Get(web.HeaderUser); (resp.StatusCode == 200) != (user != "") {
				t.Fatalf("status %d with %s %q: identity headers only on 200", resp.StatusCode, web.HeaderUser, user)
			}
		})
	}

	t.Run("anonymous callers with redirect=1 go to the login", func(t *testing.T) {
		resp := h.get(anonymous, h.srv.URL+"/auth?redirect=1&org=acme&min_role=WRITER", nil)
		readBody(t, resp)
		if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/login?rd=") {
			t.Fatalf("%s to %q, want 302 to the login", resp.Status, resp.Header.Get("Location"))
		}
	})

	t.Run("a role granted later takes effect on the next request", func(t *testing.T) {
		if _, err := h.syncer.AddOrgMapping(t.Context(), "test", h.acme.ID, "platform-admins", groupgate.OrgRoleWriter); err != nil {
			t.Fatal(err)
		}
		resp := h.get(alice, h.srv.URL+"/auth?org=acme&min_role=WRITER", nil)
		readBody(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after the grant: %s, want 200", resp.Status)
		}
	})
}

// seen records what the upstream received, by path.
type seen struct {
	mu stdsync.Mutex
	h  map[string]http.Header
}

func (s *seen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.h[r.URL.Path] = r.Header.Clone()
	s.mu.Unlock()
	_, _ = io.WriteString(w, "upstream "+r.URL.Path)
}

func (s *seen) get(path string) http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h[path]
}

func TestReverseProxyAppliesTheRouteOfTheLongestMatchingPrefix(t *testing.T) {
	up := &seen{h: map[string]http.Header{}}
	h := newHarness(t, harnessConfig{backend: backends[0], upstream: up, routes: []web.Route{
		{PathPrefix: "/releases", Require: sync.Requirement{Org: "acme", OrgRole: groupgate.OrgRoleWriter}},
		{PathPrefix: "/releases/public/", Require: sync.Requirement{Group: "eng"}},
		{PathPrefix: "/admin-tools", Require: sync.Requirement{Group: "platform-admins"}},
	}})
	alice, bob := h.browser(), h.browser()
	h.login(alice, "demo", "alice", "/", "/")
	h.login(bob, "demo", "bob", "/", "/")
	for _, tt := range []struct {
		name string
		who  *http.Client
		path string
		want int
	}{
		{"a path under a route the caller fails is refused", alice, "/releases/v1.tar.gz", 403},
		{"the route's own path is refused too", alice, "/releases", 403},
		{"a longer prefix's route decides below it", bob, "/releases/public/notes", 200},
		{"a prefix matches whole path segments only", bob, "/releases-old/x", 200},
		{"a path under no route needs only a session", bob, "/home", 200},
		{"a group route lets its members in", alice, "/admin-tools/x", 200},
		{"a group route keeps others out", bob, "/admin-tools/y", 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.get(tt.who, h.srv.URL+tt.path, nil)
			body := readBody(t, resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("GET %s = %s, want %d:\n%s", tt.path, resp.Status, tt.want, body)
			}
			if reached := up.get(tt.path) != nil; reached != (tt.want == 200) {
				t.Fatalf("the upstream was reached: %v, want %v", reached, tt.want == 200)
			}
			if tt.want == 403 && !strings.Contains(body, "requires") {
				t.Fatalf("the refusal page does not say what is required:\n%s", body)
			}
		})
	}
}

func TestRoutesAreRefusedWithoutAnUpstreamOrWithoutARequirement(t *testing.T) {
	for _, tt := range []struct {
		name     string
		upstream bool
		routes   []web.Route
		want     string
	}{
		{"auth-only mode", false, []web.Route{{PathPrefix: "/x", Require: sync.Requirement{Group: "eng"}}}, "need an upstream"},
		{"a relative prefix", true, []web.Route{{PathPrefix: "x", Require: sync.Requirement{Group: "eng"}}}, "must start with /"},
		{"an empty requirement", true, []web.Route{{PathPrefix: "/x"}}, "requires nothing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pub, _ := url.Parse("https://gg.example.com")
			cfg := web.Config{PublicURL: pub, SessionTTL: time.Hour, Routes: tt.routes}
			if tt.upstream {
				cfg.Upstream, _ = url.Parse("http://127.0.0.1:9999")
			}
			// Deps are left out: NewServer reports every problem at once.
			_, err := web.NewServer(cfg, web.Deps{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewServer: %v, want %q", err, tt.want)
			}
		})
	}
}

// jwksOf fetches the published key set as a verifier would.
func jwksOf(t *testing.T, h *harness) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(h.srv.URL + web.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
		t.Fatalf("GET %s: %s, Cache-Control %q", web.JWKSPath, resp.Status, resp.Header.Get("Cache-Control"))
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	return set
}

func verifyToken(t *testing.T, h *harness, raw string) idtoken.Claims {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("X-Auth-Request-Jwt %q: %v", raw, err)
	}
	var std jwt.Claims
	var c idtoken.Claims
	if err := tok.Claims(jwksOf(t, h), &std, &c); err != nil {
		t.Fatalf("X-Auth-Request-Jwt does not verify against the JWKS: %v", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: h.srv.URL, AnyAudience: jwt.Audience{h.srv.URL}, Time: h.clock.Now()}, 0); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAuthAndTheProxyGiveTheUpstreamASignedIdentity(t *testing.T) {
	up := &seen{h: map[string]http.Header{}}
	h := newHarness(t, harnessConfig{backend: backends[0], upstream: up, tokens: true})
	alice := h.browser()
	h.login(alice, "demo", "alice", "/", "/")

	first := h.auth(alice).Header.Get(web.HeaderJWT)
	c := verifyToken(t, h, first)
	if c.PreferredUsername != "alice" || c.Email != "alice@example.com" || strings.Join(c.Groups, ",") != "eng,platform-admins" || c.OrgRoles["acme"] != groupgate.OrgRoleMember || c.Subject == "" {
		t.Fatalf("claims = %+v", c)
	}
	if again := h.auth(alice).Header.Get(web.HeaderJWT); again != first {
		t.Fatal("the next /auth signed a new token for an unchanged session")
	}

	if _, err := h.syncer.AddOrgMapping(t.Context(), "test", h.acme.ID, "platform-admins", groupgate.OrgRoleAdmin); err != nil {
		t.Fatal(err)
	}
	changed := h.auth(alice).Header.Get(web.HeaderJWT)
	if changed == first || verifyToken(t, h, changed).OrgRoles["acme"] != groupgate.OrgRoleAdmin {
		t.Fatal("the token does not follow a role change at once")
	}

	resp := h.get(alice, h.srv.URL+"/app", http.Header{web.HeaderJWT: {"forged"}, "X_Auth_Request_Jwt": {"forged"}})
	readBody(t, resp)
	got := up.get("/app")
	if resp.StatusCode != http.StatusOK || got == nil {
		t.Fatalf("proxied GET: %s", resp.Status)
	}
	if vs := got.Values(web.HeaderJWT); len(vs) != 1 || vs[0] == "forged" || got.Get("X_Auth_Request_Jwt") != "" {
		t.Fatalf("the upstream got %s %q, X_Auth_Request_Jwt %q", web.HeaderJWT, vs, got.Get("X_Auth_Request_Jwt"))
	}
	if verifyToken(t, h, got.Get(web.HeaderJWT)).OrgRoles["acme"] != groupgate.OrgRoleAdmin {
		t.Fatal("the proxied token does not carry the current role")
	}
}

func TestWithoutIdentityTokensNoTokenAndNoKeySetAreServed(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0]})
	alice := h.browser()
	h.login(alice, "demo", "alice", "/", "/")
	if tok := h.auth(alice).Header.Get(web.HeaderJWT); tok != "" {
		t.Fatalf("%s = %q with tokens off", web.HeaderJWT, tok)
	}
	resp, err := http.Get(h.srv.URL + web.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("%s = %s with tokens off, want 404", web.JWKSPath, resp.Status)
	}
}

func TestAuthFailsClosedWithoutIdentityHeadersWhenNoKeyCanSign(t *testing.T) {
	h := newHarness(t, harnessConfig{backend: backends[0], tokens: true})
	alice := h.browser()
	h.login(alice, "demo", "alice", "/", "/")
	// Before the only key's activation nothing may sign.
	h.clock.Advance(-time.Hour)
	resp := h.auth(alice)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/auth = %s, want 503 when no key can sign", resp.Status)
	}
	for _, name := range []string{web.HeaderUser, web.HeaderGroups, web.HeaderJWT} {
		if v := resp.Header.Values(name); len(v) != 0 {
			t.Fatalf("the 503 carries %s %q", name, v)
		}
	}
	if !strings.Contains(h.logs.String(), "cannot sign the identity token") {
		t.Fatalf("the failure is not logged:\n%s", h.logs.String())
	}
}
