package idtoken_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/idtoken"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/postgres"
	"github.com/groupgate/groupgate/store/sqlite"
)

const secret = "0123456789abcdef0123456789abcdef-identity"

// clock is a movable clock shared by the replicas of a test.
type clock struct {
	mu stdsync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openSQLite(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), "file:"+filepath.Join(t.TempDir(), "gg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func openPostgres(t testing.TB) store.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func baseConfig() idtoken.Config {
	return idtoken.Config{Issuer: "https://gg.example.com", Audience: []string{"https://bsr.example.com"}}
}

func newIssuer(t testing.TB, st idtoken.KeyStore, c *clock, cfg idtoken.Config, opts ...idtoken.Option) *idtoken.Issuer {
	t.Helper()
	iss, err := idtoken.New(st, []byte(secret), cfg, append([]idtoken.Option{idtoken.WithNow(c.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := iss.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return iss
}

var alice = idtoken.Subject{
	UserID: "u-alice", Username: "alice", Email: "alice@example.com", Name: "Alice",
	Memberships: groupgate.Memberships{
		Groups:    []string{"eng", "platform-admins"},
		OrgRoles:  map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin},
		RepoRoles: map[string]groupgate.RepoRole{"acme/api": groupgate.RepoRoleWrite},
	},
}

var allAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.RS256}

// verify checks raw with go-jose against the JWKS as published, at now:
// signature by kid, then iss, aud and exp/nbf/iat without leeway.
func verify(t *testing.T, jwks []byte, raw string, now time.Time) (idtoken.Claims, error) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("JWKS does not parse with go-jose: %v\n%s", err, jwks)
	}
	tok, err := jwt.ParseSigned(raw, allAlgs)
	if err != nil {
		return idtoken.Claims{}, fmt.Errorf("parse: %w", err)
	}
	var std jwt.Claims
	var out idtoken.Claims
	if err := tok.Claims(set, &std, &out); err != nil {
		return out, fmt.Errorf("signature: %w", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: "https://gg.example.com", AnyAudience: jwt.Audience{"https://bsr.example.com"}, Time: now}, 0); err != nil {
		return out, fmt.Errorf("claims: %w", err)
	}
	return out, nil
}

func kidOf(t *testing.T, raw string) string {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, allAlgs)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Headers[0].KeyID
}

func TestTokensVerifyWithGoJOSEAgainstThePublishedKeys(t *testing.T) {
	for _, alg := range idtoken.Algorithms {
		t.Run(alg, func(t *testing.T) {
			c := newClock()
			cfg := baseConfig()
			cfg.Algorithm = alg
			iss := newIssuer(t, openSQLite(t), c, cfg)
			raw, err := iss.Token(t.Context(), "session-1", alice)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.ParseSigned(raw, allAlgs)
			if err != nil {
				t.Fatal(err)
			}
			if h := tok.Headers[0]; h.Algorithm != alg || h.KeyID == "" {
				t.Fatalf("header alg %q kid %q, want %s and a kid", h.Algorithm, h.KeyID, alg)
			}
			got, err := verify(t, iss.JWKS(), raw, c.Now())
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != "u-alice" || got.PreferredUsername != "alice" || got.Email != "alice@example.com" || got.Name != "Alice" ||
				strings.Join(got.Groups, ",") != "eng,platform-admins" ||
				got.OrgRoles["acme"] != groupgate.OrgRoleAdmin || got.RepoRoles["acme/api"] != groupgate.RepoRoleWrite ||
				got.Expiry-got.IssuedAt != int64(idtoken.DefaultTTL/time.Second) || got.Truncated != nil {
				t.Fatalf("claims = %+v", got)
			}
		})
	}
}

func TestATokenIsRefusedOnceExpiredOrAlteredOrForAnotherAudience(t *testing.T) {
	c := newClock()
	iss := newIssuer(t, openSQLite(t), c, baseConfig())
	raw, err := iss.Token(t.Context(), "", alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, iss.JWKS(), raw, c.Now().Add(idtoken.DefaultTTL+time.Second)); err == nil {
		t.Error("an expired token verified")
	}
	parts := strings.Split(raw, ".")
	forged := parts[0] + "." + strings.Replace(parts[1], parts[1][:4], "eyJz", 1) + "." + parts[2]
	if _, err := verify(t, iss.JWKS(), forged, c.Now()); err == nil {
		t.Error("a token with an altered payload verified")
	}
	other := baseConfig()
	other.Audience = []string{"https://elsewhere.example.com"}
	iss2 := newIssuer(t, openSQLite(t), c, other)
	raw2, _ := iss2.Token(t.Context(), "", alice)
	if _, err := verify(t, iss2.JWKS(), raw2, c.Now()); err == nil || !strings.Contains(err.Error(), "claims") {
		t.Errorf("a token for another audience: %v, want a claims error", err)
	}
}

func TestAfterARotationTokensOfThePreviousKeyStayValidUntilTheyExpire(t *testing.T) {
	c := newClock()
	cfg := baseConfig()
	cfg.RotationPeriod, cfg.PublishAhead = 24*time.Hour, time.Hour
	iss := newIssuer(t, openSQLite(t), c, cfg)
	ctx := t.Context()
	first, _ := iss.Token(ctx, "", alice)
	oldKid := kidOf(t, first)

	// An hour before the rotation the successor is published, not used.
	c.Advance(23 * time.Hour)
	if err := iss.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(iss.JWKS()), `"kid"`); n != 2 {
		t.Fatalf("JWKS an hour before rotation has %d keys, want the current and the next:\n%s", n, iss.JWKS())
	}
	c.Advance(59 * time.Minute)
	beforeRotation, _ := iss.Token(ctx, "", alice)
	if kidOf(t, beforeRotation) != oldKid {
		t.Fatal("the successor signed before its activation time")
	}

	c.Advance(2 * time.Minute) // the rotation is a minute ago
	if err := iss.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	afterRotation, _ := iss.Token(ctx, "", alice)
	if kidOf(t, afterRotation) == oldKid {
		t.Fatal("the previous key still signs after the rotation")
	}
	cached := iss.JWKS() // what a verifier may hold from now on
	for name, raw := range map[string]string{"the previous key's token": beforeRotation, "the new key's token": afterRotation} {
		if _, err := verify(t, iss.JWKS(), raw, c.Now()); err != nil {
			t.Errorf("%s after the rotation: %v", name, err)
		}
	}

	// Past the old token's expiry and the leeway, the old key is gone.
	c.Advance(idtoken.DefaultTTL + idtoken.Leeway)
	if err := iss.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(iss.JWKS()), oldKid) {
		t.Fatalf("the rotated-out key is still published after its tokens expired:\n%s", iss.JWKS())
	}
	_, err := verify(t, iss.JWKS(), beforeRotation, c.Now())
	if err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("a token of the rotated-out key after its expiry: %v, want refused for its unknown key", err)
	}
	// Even a verifier that cached the old key set refuses it: it expired.
	if _, err := verify(t, cached, beforeRotation, c.Now()); err == nil || !strings.Contains(err.Error(), "claims") {
		t.Fatalf("with the old key still cached: %v, want refused as expired", err)
	}
	if _, err := verify(t, iss.JWKS(), afterRotation, c.Now()); err == nil {
		t.Fatal("the new key's token outlived its TTL")
	}
}

func TestTwoReplicasShareOneKeySetAndRotateItOnce(t *testing.T) {
	st := openPostgres(t)
	c := newClock()
	cfg := baseConfig()
	a := newIssuer(t, st, c, cfg)
	b := newIssuer(t, st, c, cfg)
	ctx := t.Context()
	ta, _ := a.Token(ctx, "", alice)
	tb, _ := b.Token(ctx, "", alice)
	if kidOf(t, ta) != kidOf(t, tb) {
		t.Fatalf("replicas sign with %s and %s, want one key", kidOf(t, ta), kidOf(t, tb))
	}
	for _, pair := range []struct {
		name string
		jwks []byte
		raw  string
	}{{"b's token with a's keys", a.JWKS(), tb}, {"a's token with b's keys", b.JWKS(), ta}} {
		if _, err := verify(t, pair.jwks, pair.raw, c.Now()); err != nil {
			t.Errorf("%s: %v", pair.name, err)
		}
	}

	// Both due to rotate at once: one successor between them.
	c.Advance(idtoken.DefaultRotationPeriod - idtoken.DefaultPublishAhead)
	var wg stdsync.WaitGroup
	errs := make([]error, 2)
	for i, iss := range []*idtoken.Issuer{a, b} {
		wg.Go(func() { errs[i] = iss.Sync(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	keys, err := st.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys after both replicas rotated, want 2 (current and next)", len(keys))
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if string(a.JWKS()) != string(b.JWKS()) {
		t.Fatalf("replicas publish different key sets:\n%s\n%s", a.JWKS(), b.JWKS())
	}
}

func TestPrivateKeysAreSealedAtRestAndNeverLogged(t *testing.T) {
	st := openSQLite(t)
	c := newClock()
	var logs bytes.Buffer
	newIssuer(t, st, c, baseConfig(), idtoken.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	keys, err := st.ListSigningKeys(t.Context())
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if _, err := x509.ParsePKCS8PrivateKey(keys[0].PrivateKey); err == nil {
		t.Fatal("the stored private key is plain PKCS #8")
	}

	// A replica with another secret cannot use the key: it publishes a
	// key of its own at once, and says so without key material.
	other, err := idtoken.New(st, []byte("another secret of at least 32 bytes!!"), baseConfig(), idtoken.WithNow(c.Now),
		idtoken.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	raw, err := other.Token(t.Context(), "", alice)
	if err != nil {
		t.Fatal(err)
	}
	if kidOf(t, raw) == keys[0].ID {
		t.Fatal("a replica with another secret signed with a key it cannot unseal")
	}
	if !strings.Contains(logs.String(), "unusable on this replica") {
		t.Fatalf("no warning about the unusable key:\n%s", logs.String())
	}
	all, _ := st.ListSigningKeys(t.Context())
	for _, k := range all {
		for _, b := range [][]byte{k.PrivateKey, k.PrivateKey[13:45]} {
			if strings.Contains(logs.String(), string(b)) || strings.Contains(logs.String(), fmt.Sprintf("%x", b)) {
				t.Fatal("the logs hold sealed key bytes")
			}
		}
	}
}

func TestATokenIsReusedForHalfItsLifetimeUnlessTheSubjectChanges(t *testing.T) {
	c := newClock()
	iss := newIssuer(t, openSQLite(t), c, baseConfig())
	ctx := t.Context()
	first, _ := iss.Token(ctx, "s1", alice)
	c.Advance(idtoken.DefaultTTL/2 - time.Second)
	if again, _ := iss.Token(ctx, "s1", alice); again != first {
		t.Fatal("the same session and subject got a new token within half its lifetime")
	}
	if other, _ := iss.Token(ctx, "s2", alice); other == first {
		t.Fatal("another session got the first session's token")
	}
	changed := alice
	changed.Memberships.OrgRoles = map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember}
	demoted, _ := iss.Token(ctx, "s1", changed)
	if demoted == first {
		t.Fatal("a changed role was served from the cache")
	}
	got, err := verify(t, iss.JWKS(), demoted, c.Now())
	if err != nil || got.OrgRoles["acme"] != groupgate.OrgRoleMember {
		t.Fatalf("after the change: %+v, %v", got.OrgRoles, err)
	}
	c.Advance(idtoken.DefaultTTL/2 + time.Second)
	if renewed, _ := iss.Token(ctx, "s1", changed); renewed == demoted {
		t.Fatal("a token past half its lifetime was reused")
	}
}

func TestLargeMembershipsAreCutToTheBoundsWithAClaimThatSaysSo(t *testing.T) {
	c := newClock()
	cfg := baseConfig()
	cfg.MaxGroups, cfg.MaxRoles = 10, 20
	iss := newIssuer(t, openSQLite(t), c, cfg)
	big := alice
	big.Memberships = groupgate.Memberships{OrgRoles: map[string]groupgate.OrgRole{}, RepoRoles: map[string]groupgate.RepoRole{}}
	for i := range 300 {
		big.Memberships.Groups = append(big.Memberships.Groups, fmt.Sprintf("group-%03d", i))
	}
	big.Memberships.OrgRoles["acme"] = groupgate.OrgRoleMember
	for i := range 500 {
		role := groupgate.RepoRoleRead
		if i%100 == 0 {
			role = groupgate.RepoRoleAdmin
		}
		big.Memberships.RepoRoles[fmt.Sprintf("acme/repo-%03d", i)] = role
	}
	raw, err := iss.Token(t.Context(), "", big)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > idtoken.DefaultMaxBytes {
		t.Fatalf("token is %d bytes, over the %d bound", len(raw), idtoken.DefaultMaxBytes)
	}
	got, err := verify(t, iss.JWKS(), raw, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	tr := got.Truncated
	if tr == nil || len(got.Groups) != 10 || tr.Groups != 290 {
		t.Fatalf("groups %d, truncated %+v; want 10 listed and 290 counted", len(got.Groups), tr)
	}
	if len(got.OrgRoles)+len(got.RepoRoles) != 20 || got.OrgRoles["acme"] != groupgate.OrgRoleMember {
		t.Fatalf("%d org and %d repo roles listed, want 20 with acme first", len(got.OrgRoles), len(got.RepoRoles))
	}
	admins := 0
	for _, r := range got.RepoRoles {
		if r == groupgate.RepoRoleAdmin {
			admins++
		}
	}
	if admins != 5 || tr.RepoRoles["READ"] != 481 || tr.RepoRoles["ADMIN"] != 0 {
		t.Fatalf("listed %d ADMIN roles, omitted %v; want every ADMIN listed and 481 READ omitted", admins, tr.RepoRoles)
	}

	// A byte bound below what the counts allow cuts further.
	cfg.MaxGroups, cfg.MaxRoles, cfg.MaxBytes = 1000, 1000, 2048
	small := newIssuer(t, openSQLite(t), c, cfg)
	raw, _ = small.Token(t.Context(), "", big)
	if len(raw) > 2048 {
		t.Fatalf("token is %d bytes, over max_bytes 2048", len(raw))
	}
	if got, err := verify(t, small.JWKS(), raw, c.Now()); err != nil || got.Truncated == nil {
		t.Fatalf("cut token: truncated %+v, %v", got.Truncated, err)
	}
}

func TestConfigCheckNamesEveryProblem(t *testing.T) {
	cfg := idtoken.Config{Algorithm: "HS256", RotationPeriod: time.Hour, PublishAhead: 2 * time.Hour, MaxBytes: 100}
	problems := strings.Join(cfg.Check(), "\n")
	for _, want := range []string{"issuer", "audience", "HS256", "publish_ahead", "max_bytes"} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems do not mention %s:\n%s", want, problems)
		}
	}
	if p := baseConfig().Check(); len(p) != 0 {
		t.Errorf("the defaults have problems: %v", p)
	}
}
