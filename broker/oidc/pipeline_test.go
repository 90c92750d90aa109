package oidc_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/devidp"
)

// attempts is an in-memory broker.AttemptStore on an injected clock.
type attempts struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]attempt
}

type attempt struct {
	v   []byte
	exp time.Time
}

func (s *attempts) PutAttempt(_ context.Context, key string, v []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = attempt{v: v, exp: s.now().Add(ttl)}
	return nil
}

func (s *attempts) TakeAttempt(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.m[key]
	delete(s.m, key)
	if !ok || !s.now().Before(a.exp) {
		return nil, groupgate.Errorf(groupgate.NotFound, "no login attempt")
	}
	return a.v, nil
}

// TestPipeline runs broker.Login over the OIDC connector against the demo
// IdP: the same path the web package wires to /login and /callback.
func TestPipeline(t *testing.T) {
	e := newEnv(t, devidp.OIDCConfig{})
	ctx := context.Background()

	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }

	login, err := broker.NewLogin(&attempts{now: clock, m: map[string]attempt{}},
		[]broker.Connector{e.open(t, clientA, nil)}, broker.WithNow(clock))
	if err != nil {
		t.Fatal(err)
	}
	finish := func(t *testing.T, s broker.Started, user string) (broker.Result, error) {
		t.Helper()
		r := e.signIn(t, s.RedirectURL, user, user+"-password")
		r.AddCookie(&http.Cookie{Name: s.Cookie.Name, Value: s.Cookie.Value})
		return login.Finish(ctx, "demo", r)
	}

	t.Run("a login begun and finished in one browser yields alice and her return URL", func(t *testing.T) {
		s, err := login.Begin(ctx, "demo", "https://bsr.example.com/acme")
		if err != nil {
			t.Fatal(err)
		}
		res, err := finish(t, s, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if res.Identity.Email != "alice@example.com" || res.ReturnTo != "https://bsr.example.com/acme" || res.Tokens.IDToken == "" {
			t.Errorf("result = %+v", res)
		}
	})

	t.Run("an attempt older than its lifetime is refused", func(t *testing.T) {
		s, err := login.Begin(ctx, "demo", "")
		if err != nil {
			t.Fatal(err)
		}
		advance(broker.DefaultAttemptTTL + time.Second)
		_, err = finish(t, s, "alice")
		if !groupgate.IsCode(err, groupgate.Invalid) {
			t.Fatalf("Finish error = %v, want Invalid", err)
		}
	})

	t.Run("the identity provider's logout is offered through Login", func(t *testing.T) {
		u, ok, err := login.LogoutURL(ctx, "demo", "hint", e.signedOut)
		if err != nil || !ok || u == "" {
			t.Fatalf("LogoutURL = %q, %v, %v", u, ok, err)
		}
	})
}
