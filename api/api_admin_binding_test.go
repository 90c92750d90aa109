package api_test

import (
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/scim"
)

// adminPowers tries the two things only instance admins may do with tok and
// reports whether each worked.
func (e *apiEnv) adminPowers(tok string) (audit, create bool) {
	e.t.Helper()
	a := e.post("groupgate.v1.AdminService/ListAuditEvents", `{}`, "Authorization: Bearer "+tok)
	c := e.post("OrganizationService/CreateOrganization", `{"name":"x`+strings.NewReplacer("_", "0", "-", "1").Replace(strings.ToLower(tok[len(tok)-6:]))+`"}`, "Authorization: Bearer "+tok)
	return a.Status == http.StatusOK, c.Status == http.StatusOK
}

// The attack: a SCIM token patched bob's email to root@example.com, listed
// in admins: but used by nobody, and bob could read the audit log and
// create organizations. admins: binds to the email a verified login
// proved, which SCIM cannot write.
func TestSCIMCannotMakeAnInstanceAdmin(t *testing.T) {
	e := newAPIEnv(t) // admins: [ROOT@example.com]
	const scimToken = "ggscim_test-token"
	sum := sha256.Sum256([]byte(scimToken))
	if _, err := e.st.CreateToken(e.ctx, groupgate.Token{Kind: groupgate.TokenSCIM, Name: "idp", Hash: sum[:]}); err != nil {
		t.Fatal(err)
	}
	sc := httptest.NewServer(scim.NewServer(e.st.(scim.Store), e.syncer))
	t.Cleanup(sc.Close)
	scimDo := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, sc.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+scimToken)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := sc.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// A user SCIM creates with the admin address is no admin either.
	code, body := scimDo(http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"mallory","emails":[{"value":"Root@Example.com","primary":true}],"active":true}`)
	if code != http.StatusCreated {
		t.Fatalf("SCIM POST: %d %s", code, body)
	}
	mallory, err := e.st.GetUserByUserName(e.ctx, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	if audit, create := e.adminPowers(e.token(mallory, time.Time{})); audit || create {
		t.Errorf("a SCIM-created user with the admin address may read the audit log (%v) or create organizations (%v)", audit, create)
	}

	// bob signed in once with his own verified address.
	bob, _ := e.login("bob")
	bobTok := e.token(bob, time.Time{})
	code, body = scimDo(http.MethodPatch, "/Users/"+bob.ID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","path":"emails","value":[{"value":"root@example.com","primary":true}]}]}`)
	if code != http.StatusOK {
		t.Fatalf("SCIM PATCH: %d %s", code, body)
	}
	if u, _ := e.st.GetUser(e.ctx, bob.ID); u.Email != "root@example.com" {
		t.Fatalf("the PATCH did not change bob's email: %+v", u)
	}
	if audit, create := e.adminPowers(bobTok); audit || create {
		t.Errorf("after the SCIM PATCH bob may read the audit log (%v) or create organizations (%v)", audit, create)
	}
}

func TestOnlyAVerifiedLoginBindsAnAdminsEntry(t *testing.T) {
	tests := []struct {
		name     string
		email    string
		verified bool
		admin    bool
	}{
		{"an unverified email naming an admin grants nothing", "root@example.com", false, false},
		{"a verified email naming an admin, in another case, is the admin", "Root@example.COM", true, true},
		{"a verified look-alike (fullwidth) of an admin address grants nothing", "\uff52\uff4f\uff4f\uff54@example.com", true, false},
		{"a verified look-alike (Kelvin sign) of an admin address grants nothing", "\u212Aelly@example.com", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newAPIEnv(t, api.WithAdmins([]string{"kelly@example.com"}))
			u, _, err := e.syncer.Login(e.ctx, groupgate.Identity{Provider: "test", Subject: "s", Username: "u", Email: tt.email, EmailVerified: tt.verified})
			if err != nil {
				t.Fatal(err)
			}
			audit, create := e.adminPowers(e.token(u, time.Time{}))
			if audit != tt.admin || create != tt.admin {
				t.Errorf("audit log %v, create organization %v; want admin = %v", audit, create, tt.admin)
			}
		})
	}
}
