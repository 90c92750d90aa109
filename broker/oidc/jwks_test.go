package oidc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker/oidc"
	"github.com/groupgate/groupgate/devidp"
)

// jwksGate passes every request of the connector through, except the
// IdP's JWKS while mode is set: "refused" fails the connection, "503"
// answers an error page.
type jwksGate struct {
	base http.RoundTripper
	mode *atomic.Value
	hits *atomic.Int32
}

func (g jwksGate) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/keys") {
		return g.base.RoundTrip(r)
	}
	g.hits.Add(1)
	switch g.mode.Load().(string) {
	case "refused":
		return nil, errors.New("dial tcp: connection refused")
	case "503":
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
			Header: http.Header{"Content-Type": {"text/html"}}, Body: io.NopCloser(strings.NewReader("<h1>down</h1>")), Request: r}, nil
	}
	return g.base.RoundTrip(r)
}

// TestCachedSigningKeysOutliveAFailedJWKSFetch pins what zitadel/oidc's
// remote key set does when the IdP's JWKS cannot be read: the keys it
// already holds stay in use (it replaces its cache only after a
// successful fetch), so logins keep verifying through a JWKS outage; and a
// login that needs keys it cannot get fails as Unavailable (503), never
// as a refused login.
func TestCachedSigningKeysOutliveAFailedJWKSFetch(t *testing.T) {
	e := newEnv(t, devidp.OIDCConfig{})
	open := func(t *testing.T) (*atomic.Value, *atomic.Int32, func(user string) error) {
		t.Helper()
		mode, hits := &atomic.Value{}, &atomic.Int32{}
		mode.Store("")
		client := &http.Client{Transport: jwksGate{base: e.srv.Client().Transport, mode: mode, hits: hits}}
		c, err := oidc.Config{
			Issuer: e.issuer, ClientID: clientA, ClientSecret: secret,
			Scopes: []string{"openid", "email", "profile", "groups"}, RedirectURL: e.callback,
		}.Open(context.Background(), "demo", slog.New(slog.DiscardHandler), oidc.WithHTTPClient(client))
		if err != nil {
			t.Fatal(err)
		}
		return mode, hits, func(user string) error { _, _, err := e.login(t, c, user); return err }
	}

	for _, failure := range []string{"refused", "503"} {
		t.Run("keys read before a JWKS that is "+failure+" keep verifying logins", func(t *testing.T) {
			mode, hits, login := open(t)
			if err := login("alice"); err != nil {
				t.Fatalf("first login: %v", err)
			}
			if hits.Load() == 0 {
				t.Fatal("the first login did not read the JWKS")
			}
			mode.Store(failure)
			for _, user := range []string{"bob", "alice"} {
				if err := login(user); err != nil {
					t.Fatalf("login of %s with the JWKS %s: %v", user, failure, err)
				}
			}
			mode.Store("")
			if err := login("carol"); err != nil {
				t.Fatalf("login after the JWKS answers again: %v", err)
			}
		})
	}
	t.Run("a first login while the JWKS cannot be reached is Unavailable", func(t *testing.T) {
		mode, _, login := open(t)
		mode.Store("refused")
		if err := login("alice"); !groupgate.IsCode(err, groupgate.Unavailable) {
			t.Fatalf("login = %v, want Unavailable", err)
		}
		mode.Store("")
		if err := login("alice"); err != nil {
			t.Fatalf("login once the JWKS answers: %v", err)
		}
	})
}

// TestOpenSaysUnavailableOnlyWhenDiscoveryCannotBeRead: discovery that
// does not answer usably is Unavailable (broker.Lazy retries it); an
// issuer that answers with another issuer's document is a configuration
// error that no retry fixes.
func TestOpenSaysUnavailableOnlyWhenDiscoveryCannotBeRead(t *testing.T) {
	e := newEnv(t, devidp.OIDCConfig{})
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name        string
		issuer      string
		unavailable bool
	}{
		{"an issuer refusing connections", closed.URL + "/idp", true},
		{"an issuer without a discovery document (404)", e.srv.URL + "/nothing-here", true},
		{"an issuer whose document names another issuer", e.issuer + "/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oidc.Config{Issuer: tt.issuer, ClientID: clientA, RedirectURL: e.callback}.
				Open(context.Background(), "demo", slog.New(slog.DiscardHandler), oidc.WithHTTPClient(e.srv.Client()))
			if err == nil || groupgate.IsCode(err, groupgate.Unavailable) != tt.unavailable {
				t.Fatalf("Open = %v, want Unavailable %v", err, tt.unavailable)
			}
		})
	}
}
