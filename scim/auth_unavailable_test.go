package scim

import (
	"context"
	"net/http"
	"testing"

	"github.com/groupgate/groupgate"
)

// unreadableTokens is a store whose token lookups fail as PostgreSQL's do
// while the database is down.
type unreadableTokens struct{ storeT }

func (unreadableTokens) GetTokenByHash(context.Context, groupgate.TokenKind, []byte) (groupgate.Token, error) {
	return groupgate.Token{}, groupgate.Errorf(groupgate.Unavailable, "get token: database unavailable")
}

// An IdP that is told its token is invalid may stop provisioning or alert
// its admins; a database outage is temporary and must say so (RFC 7644
// §3.12: 503 service unavailable), so that the IdP retries.
func TestATokenLookupThatFailsAnswers503Not401(t *testing.T) {
	e := newEnvOn(t, unreadableTokens{openSQLite(t)})
	code, body, hdr := e.do(http.MethodGet, "/scim/v2/Users", "")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("status %d (%v), want 503", code, body)
	}
	if hdr.Get("WWW-Authenticate") != "" {
		t.Errorf("WWW-Authenticate %q on a 503: the token was not refused", hdr.Get("WWW-Authenticate"))
	}
	t.Run("an unknown token is still 401", func(t *testing.T) {
		e := newEnv(t)
		code, _, _ := e.do(http.MethodGet, "/scim/v2/Users", "", "Authorization", "Bearer not-the-token")
		if code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", code)
		}
	})
}
