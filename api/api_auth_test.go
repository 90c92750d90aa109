package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/api"
	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1/registryv1alpha1connect"
	"github.com/groupgate/groupgate/session"
)

func TestAPIBearerAuthentication(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	gone := e.user("gone")
	now := e.clock.Now()
	valid := e.token(alice, now.Add(time.Hour))
	expired := e.token(alice, now.Add(-time.Second))
	deactivated := e.token(gone, time.Time{})
	if _, err := e.syncer.DeactivateUser(e.ctx, "test", gone.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		headers     []string
		wantStatus  int
		wantMessage string
	}{
		{"a valid token authenticates", []string{"Authorization: Bearer " + valid}, 200, ""},
		{"the scheme is case-insensitive", []string{"Authorization: bearer " + valid}, 200, ""},
		{"no credentials are unauthenticated", nil, 401, "authentication required"},
		{"an unknown token is unauthenticated", []string{"Authorization: Bearer gg_unknown"}, 401, "invalid token"},
		{"a token without the gg_ prefix is unauthenticated", []string{"Authorization: Bearer " + strings.TrimPrefix(valid, "gg_")}, 401, "invalid token"},
		{"basic authentication is refused", []string{"Authorization: Basic YWxpY2U6cHc="}, 401, "bearer"},
		{"an expired token is unauthenticated", []string{"Authorization: Bearer " + expired}, 401, "token expired"},
		{"a deactivated user's token is unauthenticated", []string{"Authorization: Bearer " + deactivated}, 401, "deactivated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post("AuthnService/GetCurrentUser", `{}`, tt.headers...)
			if r.Status != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", r.Status, r.Raw, tt.wantStatus)
			}
			if tt.wantStatus == 200 {
				if got := r.str("user", "id"); got != alice.ID {
					t.Errorf("current user %q, want %q", got, alice.ID)
				}
				return
			}
			if r.Code() != "unauthenticated" || !strings.Contains(r.Message(), tt.wantMessage) {
				t.Errorf("got %s, want unauthenticated saying %q", r.Raw, tt.wantMessage)
			}
		})
	}

	t.Run("a token stops working when the clock passes its expiry", func(t *testing.T) {
		e.clock.Add(2 * time.Hour)
		defer e.clock.Add(-2 * time.Hour)
		if r := e.post("AuthnService/GetCurrentUser", `{}`, "Authorization: Bearer "+valid); r.Code() != "unauthenticated" {
			t.Fatalf("got %s, want unauthenticated", r.Raw)
		}
	})
}

func TestAPITokenLastUseIsThrottled(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	tok := e.token(alice, time.Time{})
	lastUsed := func() time.Time {
		t.Helper()
		ts, err := e.st.ListTokens(e.ctx, groupgate.TokenAPI, alice.ID)
		if err != nil || len(ts) != 1 {
			t.Fatalf("list tokens: %v %v", ts, err)
		}
		return ts[0].LastUsedAt
	}
	first := e.clock.Now()
	e.as(tok, "AuthnService/GetCurrentUser", `{}`)
	if got := lastUsed(); !got.Equal(first.Truncate(time.Microsecond)) {
		t.Fatalf("last used %v after the first call, want %v", got, first)
	}
	e.clock.Add(30 * time.Second)
	e.as(tok, "AuthnService/GetCurrentUser", `{}`)
	if got := lastUsed(); !got.Equal(first.Truncate(time.Microsecond)) {
		t.Errorf("last used %v 30s later, want it unchanged (%v)", got, first)
	}
	e.clock.Add(31 * time.Second)
	e.as(tok, "AuthnService/GetCurrentUser", `{}`)
	if got, want := lastUsed(), e.clock.Now().Truncate(time.Microsecond); !got.Equal(want) {
		t.Errorf("last used %v after a minute, want %v", got, want)
	}
}

// cookieFor starts a browser session for u and returns its cookie header.
func (e *apiEnv) cookieFor(u groupgate.User) string {
	e.t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if err := e.cookie.Start(w, r, &session.Record{UserID: u.ID, Provider: "test"}); err != nil {
		e.t.Fatalf("start session: %v", err)
	}
	c := w.Result().Cookies()
	if len(c) != 1 {
		e.t.Fatalf("cookies %v", c)
	}
	return "Cookie: " + c[0].Name + "=" + c[0].Value
}

func TestAPICookieAuthenticationNeedsCSRFProtection(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	cookie := e.cookieFor(alice)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	tests := []struct {
		name       string
		headers    []string
		wantStatus int
	}{
		{"a session cookie with the Connect protocol header but no Origin is refused", []string{cookie, "Connect-Protocol-Version: 1"}, 403},
		{"a same-origin call is accepted", []string{cookie, "Connect-Protocol-Version: 1", "Origin: http://" + host}, 200},
		{"a session cookie without the protocol header is refused", []string{cookie}, 403},
		{"a cross-origin call is refused", []string{cookie, "Connect-Protocol-Version: 1", "Origin: https://evil.example"}, 403},
		{"a cross-site fetch is refused", []string{cookie, "Connect-Protocol-Version: 1", "Sec-Fetch-Site: cross-site"}, 403},
		{"a tampered cookie is unauthenticated", []string{cookie + "x", "Connect-Protocol-Version: 1"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post("AuthnService/GetCurrentUser", `{}`, tt.headers...)
			if r.Status != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", r.Status, r.Raw, tt.wantStatus)
			}
			if tt.wantStatus == 200 && r.str("user", "id") != alice.ID {
				t.Errorf("current user %s, want %s", r.Raw, alice.ID)
			}
		})
	}
	t.Run("a refused cookie call changes nothing", func(t *testing.T) {
		r := e.post("TokenService/CreateToken", `{"note":"csrf"}`, cookie, "Origin: https://evil.example", "Connect-Protocol-Version: 1")
		if r.Code() != "permission_denied" {
			t.Fatalf("got %s", r.Raw)
		}
		if ts, _ := e.st.ListTokens(e.ctx, groupgate.TokenAPI, alice.ID); len(ts) != 0 {
			t.Errorf("a token was created: %v", ts)
		}
	})
}

func TestAPITokenService(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	bob := e.user("bob")
	tok := e.token(alice, time.Time{})
	bobTok := e.token(bob, time.Time{})

	created := e.as(tok, "groupgate.v1.TokenService/CreateToken", `{"note":"ci"}`)
	secret, id := created.str("token"), created.str("details", "id")
	if !strings.HasPrefix(secret, "gg_") || id == "" || created.str("details", "note") != "ci" {
		t.Fatalf("CreateToken = %s", created.Raw)
	}
	t.Run("the new token authenticates as its creator", func(t *testing.T) {
		if got := e.as(secret, "AuthnService/GetCurrentUser", `{}`).str("user", "id"); got != alice.ID {
			t.Errorf("user %q, want %q", got, alice.ID)
		}
	})
	t.Run("listing never returns a secret or a hash", func(t *testing.T) {
		list := e.as(tok, "TokenService/ListTokens", `{}`)
		if !strings.Contains(list.Raw, id) {
			t.Fatalf("token %s not listed: %s", id, list.Raw)
		}
		if strings.Contains(list.Raw, secret) || strings.Contains(list.Raw, strings.TrimPrefix(secret, "gg_")) || strings.Contains(list.Raw, "hash") {
			t.Errorf("listing leaks the secret: %s", list.Raw)
		}
		if n := len(list.Body["tokens"].([]any)); n != 2 {
			t.Errorf("%d tokens listed, want alice's 2", n)
		}
	})
	t.Run("another user cannot delete the token", func(t *testing.T) {
		if r := e.post("TokenService/DeleteToken", `{"token_id":"`+id+`"}`, "Authorization: Bearer "+bobTok); r.Code() != "not_found" {
			t.Fatalf("got %s, want not_found", r.Raw)
		}
	})
	t.Run("an expiry in the past is refused", func(t *testing.T) {
		if r := e.post("TokenService/CreateToken", `{"expire_time":"2001-01-01T00:00:00Z"}`, "Authorization: Bearer "+tok); r.Code() != "invalid_argument" {
			t.Fatalf("got %s, want invalid_argument", r.Raw)
		}
	})
	t.Run("a deleted token no longer authenticates", func(t *testing.T) {
		e.as(tok, "TokenService/DeleteToken", `{"token_id":"`+id+`"}`)
		if r := e.post("AuthnService/GetCurrentUser", `{}`, "Authorization: Bearer "+secret); r.Code() != "unauthenticated" {
			t.Fatalf("got %s, want unauthenticated", r.Raw)
		}
	})
	t.Run("creation and deletion are audited without the secret", func(t *testing.T) {
		evs, err := e.st.ListAudit(e.ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, ev := range evs {
			if ev.TargetID == id {
				actions = append(actions, ev.Action)
				if strings.Contains(string(ev.Before)+string(ev.After), strings.TrimPrefix(secret, "gg_")) {
					t.Errorf("audit event leaks the secret")
				}
			}
		}
		if strings.Join(actions, ",") != api.ActionTokenCreate+","+api.ActionTokenDelete {
			t.Errorf("audit actions %v", actions)
		}
	})
}

func TestAPIOrganizationsAndRepositories(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root") // instance admin, matched case-insensitively
	alice := e.user("alice")
	rootTok, aliceTok := e.token(root, time.Time{}), e.token(alice, time.Time{})

	orgID := e.as(rootTok, "OrganizationService/CreateOrganization", `{"name":"beta"}`).str("organization", "id")
	t.Run("the creator of an organization is its OWNER", func(t *testing.T) {
		r := e.as(rootTok, "groupgate.v1.AccessService/ExplainAccess", `{"organization_id":"`+orgID+`"}`)
		if got := r.str("organizationRole"); got != "ORGANIZATION_ROLE_OWNER" {
			t.Errorf("role %q, want OWNER (%s)", got, r.Raw)
		}
	})
	t.Run("a duplicate organization name is a conflict", func(t *testing.T) {
		if r := e.post("OrganizationService/CreateOrganization", `{"name":"beta"}`, "Authorization: Bearer "+rootTok); r.Code() != "already_exists" {
			t.Fatalf("got %s", r.Raw)
		}
	})
	t.Run("an ADMIN made by the owner can create repositories", func(t *testing.T) {
		e.as(rootTok, "OrganizationService/AddOrganizationMember", `{"organization_id":"`+orgID+`","user_id":"`+alice.ID+`","organization_role":"ORGANIZATION_ROLE_ADMIN"}`)
		r := e.as(aliceTok, "RepositoryService/CreateRepositoryByFullName", `{"full_name":"beta/web"}`)
		if r.str("repository", "ownerName") != "beta" || r.str("repository", "name") != "web" || r.str("repository", "organizationId") != orgID || r.str("repository", "visibility") != "VISIBILITY_PRIVATE" {
			t.Errorf("created %s", r.Raw)
		}
	})
	t.Run("an ADMIN may not delete the organization", func(t *testing.T) {
		if r := e.post("OrganizationService/DeleteOrganization", `{"id":"`+orgID+`"}`, "Authorization: Bearer "+aliceTok); r.Code() != "permission_denied" {
			t.Fatalf("got %s", r.Raw)
		}
	})
	t.Run("members list every source", func(t *testing.T) {
		r := e.as(aliceTok, "groupgate.v1.OrganizationService/ListOrganizationMembers", `{"organization_id":"`+orgID+`"}`)
		if !strings.Contains(r.Raw, root.ID) || !strings.Contains(r.Raw, alice.ID) || !strings.Contains(r.Raw, "KIND_MANUAL") {
			t.Errorf("members %s", r.Raw)
		}
	})
	t.Run("organizations page with opaque tokens", func(t *testing.T) {
		for _, n := range []string{"c-1", "c-2", "c-3"} {
			e.as(rootTok, "OrganizationService/CreateOrganization", `{"name":"`+n+`"}`)
		}
		var names []string
		token := ""
		for range 5 {
			r := e.as(aliceTok, "OrganizationService/ListOrganizations", `{"page_size":3,"page_token":"`+token+`"}`)
			for _, o := range r.Body["organizations"].([]any) {
				names = append(names, o.(map[string]any)["name"].(string))
			}
			if token = r.str("nextPageToken"); token == "" {
				break
			}
		}
		if got := strings.Join(names, ","); got != "beta,c-1,c-2,c-3" {
			t.Errorf("paged names %s", got)
		}
	})
	t.Run("the owner deletes the organization", func(t *testing.T) {
		e.as(rootTok, "OrganizationService/DeleteOrganization", `{"id":"`+orgID+`"}`)
		if r := e.post("RepositoryService/GetRepositoryByFullName", `{"full_name":"beta/web"}`, "Authorization: Bearer "+aliceTok); r.Code() != "not_found" {
			t.Fatalf("got %s", r.Raw)
		}
	})
}

func TestAPISessionsAndAudit(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root")
	bob, sid := e.login("bob", "eng")
	rootTok, bobTok := e.token(root, time.Time{}), e.token(bob, time.Time{})

	if r := e.as(bobTok, "groupgate.v1.AdminService/ListSessions", `{}`); len(r.Body["sessions"].([]any)) != 1 || strings.Contains(r.Raw, sid) {
		t.Fatalf("own sessions %s", r.Raw)
	}
	r := e.as(rootTok, "groupgate.v1.AdminService/RevokeSessions", `{"user_id":"`+bob.ID+`"}`)
	if r.Body["revoked"] != float64(1) {
		t.Fatalf("revoke %s", r.Raw)
	}
	if _, err := e.mem.Load(e.ctx, sid); !groupgate.IsCode(err, groupgate.NotFound) {
		t.Errorf("session still loads: %v", err)
	}
	audit := e.as(rootTok, "groupgate.v1.AdminService/ListAuditEvents", `{"page_size":1}`)
	if len(audit.Body["events"].([]any)) != 1 || audit.str("nextPageToken") == "" {
		t.Errorf("first audit page %s", audit.Raw)
	}
	all := e.as(rootTok, "groupgate.v1.AdminService/ListAuditEvents", `{}`)
	if !strings.Contains(all.Raw, api.ActionSessionsRevoke) {
		t.Errorf("revocation not audited: %s", all.Raw)
	}
}

func TestAPIBodyLimit(t *testing.T) {
	e := newAPIEnv(t, api.WithBodyLimit(256))
	alice := e.user("alice")
	tok := e.token(alice, time.Time{})
	r := e.post("OrganizationService/GetOrganizationByName", `{"name":"`+strings.Repeat("a", 1024)+`"}`, "Authorization: Bearer "+tok)
	if r.Code() != "resource_exhausted" {
		t.Fatalf("got %s, want resource_exhausted", r.Raw)
	}
}

// TestAPIGRPC calls through a generated client with the gRPC protocol
// over HTTP/2 (TLS), and checks that a refusal arrives as a gRPC status.
func TestAPIGRPC(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	acme := e.org("acme", alice)
	tok := e.token(alice, time.Time{})

	mux := http.NewServeMux()
	api.New(e.st, e.syncer).Mount(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	client := registryv1alpha1connect.NewOrganizationServiceClient(srv.Client(), srv.URL, connect.WithGRPC())
	req := connect.NewRequest(&v1.GetOrganizationByNameRequest{Name: "acme"})
	req.Header().Set("Authorization", "Bearer "+tok)
	resp, err := client.GetOrganizationByName(context.Background(), req)
	if err != nil {
		t.Fatalf("gRPC call: %v", err)
	}
	if resp.Msg.GetOrganization().GetId() != acme.ID {
		t.Errorf("id %q, want %q", resp.Msg.GetOrganization().GetId(), acme.ID)
	}

	_, err = client.GetOrganizationByName(context.Background(), connect.NewRequest(&v1.GetOrganizationByNameRequest{Name: "acme"}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("unauthenticated gRPC call: %v, want unauthenticated", err)
	}
}

func TestAPICreatorSessionLearnsOwnerRoleAtOnce(t *testing.T) {
	e := newAPIEnv(t)
	root, sessionID := e.login("root")
	if got := e.snapshot(sessionID).OrgRoles["gamma"]; got != "" {
		t.Fatalf("before creation the session already has %q on gamma", got)
	}
	tok := e.token(root, time.Time{})
	e.as(tok, "OrganizationService/CreateOrganization", `{"name":"gamma"}`)
	if got := e.snapshot(sessionID).OrgRoles["gamma"]; got != groupgate.OrgRoleOwner {
		t.Fatalf("creator's live session has %q on gamma, want OWNER", got)
	}
}
