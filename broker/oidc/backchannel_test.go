package oidc_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/oidc"
	"github.com/groupgate/groupgate/devidp"
)

func TestVerifyLogoutToken(t *testing.T) {
	ctx := context.Background()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	issuer := srv.URL + "/idp"
	idp, err := devidp.NewOIDC(issuer, devidp.OIDCConfig{Logger: slog.New(slog.DiscardHandler),
		Clients: []devidp.OIDCClient{{ID: clientA, Secret: secret, RedirectURIs: []string{srv.URL + "/callback"}}}})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/idp/", idp)
	now := time.Now()
	clock := func() time.Time { return now }
	c, err := oidc.Config{Issuer: issuer, ClientID: clientA, ClientSecret: secret, RedirectURL: srv.URL + "/callback"}.
		Open(ctx, "demo", slog.New(slog.DiscardHandler), oidc.WithHTTPClient(srv.Client()), oidc.WithNow(clock))
	if err != nil {
		t.Fatal(err)
	}
	bc, ok := c.(broker.BackchannelConnector)
	if !ok {
		t.Fatal("the OIDC connector does not verify logout tokens")
	}
	sign := func(claims map[string]any) string {
		tok, err := idp.SignLogoutToken(claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	t.Run("a token of the IdP names its subject, sid and jti", func(t *testing.T) {
		claims := idp.LogoutClaims(clientA, "u-alice", "sid-1")
		got, err := bc.VerifyLogoutToken(ctx, sign(claims))
		if err != nil {
			t.Fatal(err)
		}
		exp := time.Unix(claims["exp"].(int64), 0)
		if got.Subject != "u-alice" || got.SessionID != "sid-1" || got.JTI != claims["jti"] || got.Until.Before(exp) {
			t.Errorf("token %+v, want u-alice, sid-1, the jti, kept at least until exp %s", got, exp)
		}
	})
	t.Run("an audience array holding the client passes", func(t *testing.T) {
		claims := idp.LogoutClaims(clientA, "u-alice", "")
		claims["aud"] = []string{"other", clientA}
		if _, err := bc.VerifyLogoutToken(ctx, sign(claims)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("by our clock, a token becomes too old", func(t *testing.T) {
		tok := sign(idp.LogoutClaims(clientA, "u-alice", ""))
		later := now
		now = now.Add(10 * time.Minute)
		defer func() { now = later }()
		if _, err := bc.VerifyLogoutToken(ctx, tok); !groupgate.IsCode(err, groupgate.Invalid) {
			t.Fatalf("err = %v, want Invalid", err)
		}
	})
	t.Run("an ID token is not a logout token", func(t *testing.T) {
		claims := idp.LogoutClaims(clientA, "u-alice", "")
		delete(claims, "events")
		claims["nonce"] = "n"
		if _, err := bc.VerifyLogoutToken(ctx, sign(claims)); !groupgate.IsCode(err, groupgate.Invalid) {
			t.Fatalf("err = %v, want Invalid", err)
		}
	})
}
