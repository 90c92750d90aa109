package oidc_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/graph"
	"github.com/groupgate/groupgate/broker/oidc"
	"github.com/groupgate/groupgate/claims"
	"github.com/groupgate/groupgate/devidp"
	"github.com/groupgate/groupgate/internal/fakegraph"
)

func withOfflineAccess(mod func(*oidc.Config)) func(*oidc.Config) {
	return func(c *oidc.Config) {
		c.Scopes = append(c.Scopes, "offline_access")
		if mod != nil {
			mod(c)
		}
	}
}

func TestRefreshRereadsGroupsAsTheLoginDoes(t *testing.T) {
	hidden, err := claims.NewFilter(nil, []string{"^hidden-"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  devidp.OIDCConfig
		mod  func(*oidc.Config)
	}{
		{name: "groups from the refreshed ID token", mod: func(c *oidc.Config) { c.Filter = hidden }},
		{name: "groups from UserInfo", cfg: devidp.OIDCConfig{GroupsOnlyInUserInfo: true},
			mod: func(c *oidc.Config) { c.Filter, c.GroupsFrom = hidden, oidc.GroupsFromUserInfo }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			c := e.open(t, clientA, withOfflineAccess(tc.mod))
			id, tokens, err := e.login(t, c, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if tokens.RefreshToken == "" {
				t.Fatal("no refresh token for offline_access")
			}
			e.idp.SetGroups("u-alice", []string{"sre", "hidden-x"})
			rc := c.(broker.RefreshConnector)
			got, next, err := rc.Refresh(context.Background(), tokens.RefreshToken, id.Subject)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Groups, []string{"sre"}) || got.Email != "alice@example.com" || got.Provider != "demo" {
				t.Fatalf("refreshed identity = %+v", got)
			}
			if next == "" || next == tokens.RefreshToken {
				t.Fatalf("the rotated refresh token was not returned")
			}
			// The spent token is refused for good.
			if _, _, err := rc.Refresh(context.Background(), tokens.RefreshToken, id.Subject); !errors.Is(err, broker.ErrRefreshRejected) ||
				!groupgate.IsCode(err, groupgate.Unauthenticated) {
				t.Fatalf("refresh with a spent token: %v, want ErrRefreshRejected", err)
			}
		})
	}
}

func TestRefreshFailuresSayWhetherTheGrantIsGone(t *testing.T) {
	tests := []struct {
		name     string
		subject  string
		before   func(t *testing.T, e *env, token string)
		rejected bool
		code     groupgate.ErrorCode
	}{
		{name: "a revoked token is rejected", subject: "u-bob", before: func(t *testing.T, e *env, token string) { e.idp.RevokeRefreshTokens("u-bob") },
			rejected: true, code: groupgate.Unauthenticated},
		{name: "a token revoked at the revocation endpoint is rejected", subject: "u-bob", before: func(t *testing.T, e *env, token string) {
			// RFC 7009 §2.1, as the IdP's own logout or an administrator would.
			req, _ := http.NewRequest(http.MethodPost, e.issuer+"/revoke",
				strings.NewReader(url.Values{"token": {token}, "token_type_hint": {"refresh_token"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(clientA, secret)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("revoke: %s", resp.Status)
			}
		}, rejected: true, code: groupgate.Unauthenticated},
		{name: "an answer about another subject is rejected", subject: "u-alice", rejected: true, code: groupgate.Unauthenticated},
		{name: "an unreachable IdP is unavailable", subject: "u-bob", before: func(t *testing.T, e *env, token string) { e.srv.Close() },
			code: groupgate.Unavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, devidp.OIDCConfig{})
			c := e.open(t, clientA, withOfflineAccess(nil))
			_, tokens, err := e.login(t, c, "bob")
			if err != nil {
				t.Fatal(err)
			}
			if tc.before != nil {
				tc.before(t, e, tokens.RefreshToken)
			}
			_, _, err = c.(broker.RefreshConnector).Refresh(context.Background(), tokens.RefreshToken, tc.subject)
			if errors.Is(err, broker.ErrRefreshRejected) != tc.rejected || !groupgate.IsCode(err, tc.code) {
				t.Fatalf("Refresh: %v; want rejected=%v, code %s", err, tc.rejected, tc.code)
			}
		})
	}
}

func TestRefreshReadsAnEntraGroupOverageFromGraph(t *testing.T) {
	daveGroups := []string{"eng", "g-2", "g-3", "g-4", "g-5"}
	fg := fakegraph.New(map[string][]string{"u-dave": daveGroups})
	gsrv := httptest.NewServer(fg)
	t.Cleanup(gsrv.Close)
	fg.Base = gsrv.URL
	users := append(devidp.Users(), devidp.User{Subject: "u-dave", Username: "dave", Password: "dave-password",
		Email: "dave@example.com", Groups: daveGroups})
	e := newEnv(t, devidp.OIDCConfig{Users: users, Overage: &devidp.Overage{Threshold: 3}})
	fg.Authenticate = fakegraph.UserInfo(e.srv.Client(), e.issuer+"/userinfo")
	gc, err := graph.New(graph.Config{BaseURL: gsrv.URL, Timeout: 5 * time.Second}, graph.WithHTTPClient(gsrv.Client()),
		graph.WithWait(func(context.Context, time.Duration) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	c, err := oidc.Config{
		Issuer: e.issuer, ClientID: clientA, ClientSecret: secret, RedirectURL: e.callback,
		Scopes: []string{"openid", "email", "profile", "groups", "offline_access"},
	}.Open(context.Background(), "demo", slog.New(slog.DiscardHandler), oidc.WithHTTPClient(e.srv.Client()), oidc.WithGraph(gc))
	if err != nil {
		t.Fatal(err)
	}
	id, tokens, err := e.login(t, c, "dave")
	if err != nil {
		t.Fatal(err)
	}
	before := len(fg.Calls())
	got, _, err := c.(broker.RefreshConnector).Refresh(context.Background(), tokens.RefreshToken, id.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Groups, daveGroups) {
		t.Fatalf("refreshed groups = %v, want Graph's %v", got.Groups, daveGroups)
	}
	if len(fg.Calls()) == before {
		t.Fatal("the refresh did not ask Graph")
	}
}
