package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/api"
)

// Point 17: a 1,000,000-character note was stored and copied into the
// audit log. Notes are capped, and hold no control characters.
func TestAPITokenNotesAreCapped(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	tok := e.token(alice, time.Time{})
	for name, note := range map[string]string{
		"a note of a million characters": strings.Repeat("n", 1_000_000),
		"a note one over the cap":        strings.Repeat("n", api.MaxTokenNoteLen+1),
		"a note with a newline":          "ci\nforged log line",
		"a note with NUL":                "ci\x00",
	} {
		t.Run(name+" is invalid_argument", func(t *testing.T) {
			r := e.post("TokenService/CreateToken", apiJSONBody(t, map[string]any{"note": note}), "Authorization: Bearer "+tok)
			if r.Code() != "invalid_argument" {
				t.Fatalf("got %.300s, want invalid_argument", r.Raw)
			}
		})
	}
	if ts, _ := e.st.ListTokens(e.ctx, groupgate.TokenAPI, alice.ID); len(ts) != 1 {
		t.Errorf("%d tokens, want only the first one", len(ts))
	}
	if evs, _ := e.st.ListAudit(e.ctx, 0, 0); len(evs) != 0 {
		t.Errorf("refused creations were audited: %d events", len(evs))
	}
	t.Run("a note at the cap, in any script, is accepted", func(t *testing.T) {
		e.as(tok, "TokenService/CreateToken", apiJSONBody(t, map[string]any{"note": strings.Repeat("é", api.MaxTokenNoteLen)}))
	})
}

// Point 17: live tokens per user are capped, with resource_exhausted; an
// expired token does not count and deleting one frees a place.
func TestAPILiveTokensPerUserAreCapped(t *testing.T) {
	policy := api.DefaultTokenPolicy()
	policy.MaxPerUser = 3
	e := newAPIEnv(t, api.WithTokenPolicy(policy))
	alice := e.user("alice")
	tok := e.token(alice, time.Time{})
	e.token(alice, e.clock.Now().Add(-time.Minute)) // expired: does not count
	var ids []string
	for range 2 {
		ids = append(ids, e.as(tok, "groupgate.v1.TokenService/CreateToken", `{"note":"ci"}`).str("details", "id"))
	}
	r := e.post("TokenService/CreateToken", `{"note":"one too many"}`, "Authorization: Bearer "+tok)
	if r.Code() != "resource_exhausted" || !strings.Contains(r.Message(), "delete") {
		t.Fatalf("fourth live token: %s, want resource_exhausted saying what to do", r.Raw)
	}
	if ts, _ := e.st.ListTokens(e.ctx, groupgate.TokenAPI, alice.ID); len(ts) != 3 {
		t.Errorf("alice holds %d tokens, want 3 (the expired one deleted, no fourth)", len(ts))
	}
	e.as(tok, "TokenService/DeleteToken", `{"token_id":"`+ids[0]+`"}`)
	e.as(tok, "TokenService/CreateToken", `{"note":"after a delete"}`)
}

// Point 16: tokens never expired. Every token the API creates now has an
// expiry, bounded by policy.
func TestAPITokensCreatedWithABearerTokenExpire(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	tok := e.token(alice, time.Time{})
	now := e.clock.Now()
	p := api.DefaultTokenPolicy()

	r := e.as(tok, "groupgate.v1.TokenService/CreateToken", `{"note":"no expiry asked"}`)
	if got := r.str("details", "expireTime"); got == "" {
		t.Fatalf("a token without expire_time never expires: %s", r.Raw)
	} else if exp, _ := time.Parse(time.RFC3339Nano, got); !exp.Equal(now.Add(p.DefaultLifetime).Truncate(time.Microsecond)) {
		t.Errorf("expire_time %s, want now + default lifetime %s", got, p.DefaultLifetime)
	}
	tooLate := now.Add(p.MaxLifetime + time.Hour).Format(time.RFC3339)
	if r := e.post("TokenService/CreateToken", `{"expire_time":"`+tooLate+`"}`, "Authorization: Bearer "+tok); r.Code() != "invalid_argument" {
		t.Fatalf("expire_time past the maximum: %s, want invalid_argument", r.Raw)
	}
	inMax := now.Add(p.MaxLifetime - time.Hour).Format(time.RFC3339)
	e.as(tok, "TokenService/CreateToken", `{"expire_time":"`+inMax+`"}`)

	t.Run("an expired token is refused and no longer listed", func(t *testing.T) {
		short := e.as(tok, "groupgate.v1.TokenService/CreateToken", `{"note":"short","expire_time":"`+now.Add(time.Hour).Format(time.RFC3339)+`"}`)
		secret := short.str("token")
		e.clock.Add(2 * time.Hour)
		defer e.clock.Add(-2 * time.Hour)
		if r := e.post("AuthnService/GetCurrentUser", `{}`, "Authorization: Bearer "+secret); r.Status != http.StatusUnauthorized {
			t.Fatalf("expired token: %d %s, want 401", r.Status, r.Raw)
		}
		if list := e.as(tok, "TokenService/ListTokens", `{}`); strings.Contains(list.Raw, short.str("details", "id")) {
			t.Errorf("expired token listed: %s", list.Raw)
		}
	})
}

func TestAPITokenCannotOutliveTheTokenThatCreatedIt(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	now := e.clock.Now()
	parent := e.token(alice, now.Add(time.Hour))
	if r := e.post("TokenService/CreateToken", `{"expire_time":"`+now.Add(2*time.Hour).Format(time.RFC3339)+`"}`, "Authorization: Bearer "+parent); r.Code() != "invalid_argument" {
		t.Fatalf("child outliving its parent: %s, want invalid_argument", r.Raw)
	}
	r := e.as(parent, "groupgate.v1.TokenService/CreateToken", `{}`)
	if exp, _ := time.Parse(time.RFC3339Nano, r.str("details", "expireTime")); exp.After(now.Add(time.Hour)) || exp.IsZero() {
		t.Errorf("default expiry %s outlives the parent token (%s)", r.str("details", "expireTime"), now.Add(time.Hour))
	}
}

// Point 16: a session cookie (which forward-auth upstreams may see) mints
// only short-lived tokens, and only from groupgate's own origin.
func TestAPITokensCreatedWithASessionCookieAreShortLived(t *testing.T) {
	policy := api.DefaultTokenPolicy()
	policy.SessionMaxLifetime = 2 * time.Hour
	e := newAPIEnv(t, api.WithTokenPolicy(policy))
	alice := e.user("alice")
	cookie := e.cookieFor(alice)
	origin := "Origin: " + e.srv.URL
	now := e.clock.Now()

	r := e.post("groupgate.v1.TokenService/CreateToken", `{"note":"from the browser"}`, cookie, origin, "Connect-Protocol-Version: 1")
	if r.Status != http.StatusOK {
		t.Fatalf("cookie CreateToken: %s", r.Raw)
	}
	exp, _ := time.Parse(time.RFC3339Nano, r.str("details", "expireTime"))
	if exp.IsZero() || exp.After(now.Add(2*time.Hour)) {
		t.Errorf("cookie-created token expires %q, want within the session maximum (2h)", r.str("details", "expireTime"))
	}
	long := now.Add(3 * time.Hour).Format(time.RFC3339)
	if r := e.post("TokenService/CreateToken", `{"expire_time":"`+long+`"}`, cookie, origin, "Connect-Protocol-Version: 1"); r.Code() != "invalid_argument" {
		t.Fatalf("cookie-created token past the session maximum: %s, want invalid_argument", r.Raw)
	}
}

func TestAPICookieCallsAreAcceptedOnlyFromOwnOrigin(t *testing.T) {
	e := newAPIEnv(t)
	alice := e.user("alice")
	cookie := e.cookieFor(alice)
	self := "Origin: " + e.srv.URL
	for _, tc := range []struct {
		name    string
		headers []string
		want    int
	}{
		{"a read without Origin is refused", []string{cookie, "Connect-Protocol-Version: 1"}, 403},
		{"a read with Sec-Fetch-Site same-origin but no Origin is refused", []string{cookie, "Connect-Protocol-Version: 1", "Sec-Fetch-Site: same-origin"}, 403},
		{"a same-origin call that the browser calls cross-site is refused", []string{cookie, "Connect-Protocol-Version: 1", self, "Sec-Fetch-Site: cross-site"}, 403},
		{"Origin: null is refused", []string{cookie, "Connect-Protocol-Version: 1", "Origin: null"}, 403},
		{"a same-origin call is accepted", []string{cookie, "Connect-Protocol-Version: 1", self, "Sec-Fetch-Site: same-origin"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, proc := range []string{"AuthnService/GetCurrentUser", "TokenService/ListTokens"} {
				if r := e.post(proc, `{}`, tc.headers...); r.Status != tc.want {
					t.Errorf("%s: %d %s, want %d", proc, r.Status, r.Raw, tc.want)
				}
			}
		})
	}
	t.Run("a token minted without Origin does not exist", func(t *testing.T) {
		e.post("TokenService/CreateToken", `{}`, cookie, "Connect-Protocol-Version: 1")
		if ts, _ := e.st.ListTokens(e.ctx, groupgate.TokenAPI, alice.ID); len(ts) != 0 {
			t.Errorf("token created: %v", ts)
		}
	})
}
