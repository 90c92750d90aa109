package storetest

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

func hashOf(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func (s suite) tokens(t *testing.T) {
	t.Run("a created token round-trips and zero times stay zero", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		in := groupgate.Token{Kind: groupgate.TokenAPI, Name: "ci", UserID: u.ID, Hash: hashOf("secret-1"), CreatedAt: fixedTime(1)}
		tok := must[groupgate.Token](t, "create token")(st.CreateToken(ctx, in))
		if tok.ID == "" {
			t.Fatal("created token has no ID")
		}
		checkTime(t, "CreatedAt", tok.CreatedAt)
		want := in
		want.ID, want.CreatedAt = tok.ID, tok.CreatedAt
		wantEqual(t, "created token", tok, want)
		got := must[groupgate.Token](t, "get token")(st.GetTokenByHash(ctx, groupgate.TokenAPI, hashOf("secret-1")))
		wantEqual(t, "token read back", got, tok)
		if !got.ExpiresAt.IsZero() || !got.LastUsedAt.IsZero() {
			t.Errorf("ExpiresAt %v, LastUsedAt %v, want both zero", got.ExpiresAt, got.LastUsedAt)
		}

		scim := must[groupgate.Token](t, "create scim token")(st.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenSCIM, Hash: hashOf("scim-1"), ExpiresAt: fixedTime(9)}))
		if !scim.ExpiresAt.Equal(fixedTime(9)) || scim.Name != "" || scim.UserID != "" {
			t.Errorf("scim token = %+v", scim)
		}
		wantEqual(t, "scim token read back", must[groupgate.Token](t, "get scim token")(st.GetTokenByHash(ctx, groupgate.TokenSCIM, hashOf("scim-1"))), scim)
		chosen := must[groupgate.Token](t, "create with ID")(st.CreateToken(ctx, groupgate.Token{ID: "token-chosen", Kind: groupgate.TokenSCIM, Hash: hashOf("scim-2")}))
		if chosen.ID != "token-chosen" {
			t.Errorf("ID = %q, want the caller's token-chosen", chosen.ID)
		}
	})

	t.Run("creating a token checks kind, owner and hash", func(t *testing.T) {
		cases := []struct {
			name string
			tok  func(userID string) groupgate.Token
			want groupgate.ErrorCode
		}{
			{"an API token without a user is refused", func(string) groupgate.Token {
				return groupgate.Token{Kind: groupgate.TokenAPI, Hash: hashOf("new")}
			}, groupgate.Invalid},
			{"an API token of a missing user is refused", func(string) groupgate.Token {
				return groupgate.Token{Kind: groupgate.TokenAPI, UserID: store.NewID(), Hash: hashOf("new")}
			}, groupgate.Invalid},
			{"a SCIM token with a user is refused", func(u string) groupgate.Token {
				return groupgate.Token{Kind: groupgate.TokenSCIM, UserID: u, Hash: hashOf("new")}
			}, groupgate.Invalid},
			{"an unknown kind is refused", func(u string) groupgate.Token {
				return groupgate.Token{Kind: "session", UserID: u, Hash: hashOf("new")}
			}, groupgate.Invalid},
			{"an empty kind is refused", func(u string) groupgate.Token {
				return groupgate.Token{UserID: u, Hash: hashOf("new")}
			}, groupgate.Invalid},
			{"an empty hash is refused", func(u string) groupgate.Token {
				return groupgate.Token{Kind: groupgate.TokenAPI, UserID: u}
			}, groupgate.Invalid},
			{"a hash in use is a conflict", func(u string) groupgate.Token {
				return groupgate.Token{Kind: groupgate.TokenAPI, UserID: u, Hash: hashOf("taken")}
			}, groupgate.Conflict},
			{"a hash in use by a token of another kind is a conflict", func(string) groupgate.Token {
				return groupgate.Token{Kind: groupgate.TokenSCIM, Hash: hashOf("taken")}
			}, groupgate.Conflict},
			{"a SCIM token without a user is accepted", func(string) groupgate.Token {
				return groupgate.Token{Kind: groupgate.TokenSCIM, Hash: hashOf("new")}
			}, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				u := mkUser(t, ctx, st, "alice")
				must[groupgate.Token](t, "create first token")(st.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, UserID: u.ID, Hash: hashOf("taken")}))
				_, err := st.CreateToken(ctx, tc.tok(u.ID))
				n := len(must[[]groupgate.Token](t, "list api")(st.ListTokens(ctx, groupgate.TokenAPI, ""))) +
					len(must[[]groupgate.Token](t, "list scim")(st.ListTokens(ctx, groupgate.TokenSCIM, "")))
				if tc.want == "" {
					noErr(t, err, "create token")
					if n != 2 {
						t.Fatalf("%d tokens, want 2", n)
					}
					return
				}
				wantCode(t, err, tc.want, "create token")
				if n != 1 {
					t.Fatalf("%d tokens after a refused create, want 1", n)
				}
			})
		}
	})

	t.Run("a token is found only under its own kind, expired or not", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		expired := fixedTime(1) // long past: the store does not judge expiry
		tok := must[groupgate.Token](t, "create token")(st.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, UserID: u.ID, Hash: hashOf("s"), ExpiresAt: expired}))
		got := must[groupgate.Token](t, "get expired token")(st.GetTokenByHash(ctx, groupgate.TokenAPI, hashOf("s")))
		wantEqual(t, "expired token", got, tok)
		_, err := st.GetTokenByHash(ctx, groupgate.TokenSCIM, hashOf("s"))
		wantCode(t, err, groupgate.NotFound, "get API token as SCIM token")
		_, err = st.GetTokenByHash(ctx, groupgate.TokenAPI, hashOf("other"))
		wantCode(t, err, groupgate.NotFound, "get unknown hash")
	})

	t.Run("tokens are listed by kind and owner, by creation then ID", func(t *testing.T) {
		ctx, st := s.fresh(t)
		alice, bob := mkUser(t, ctx, st, "alice"), mkUser(t, ctx, st, "bob")
		var api, scim []groupgate.Token
		for i, owner := range []string{alice.ID, bob.ID, alice.ID, "", bob.ID, ""} {
			tok := groupgate.Token{Kind: groupgate.TokenAPI, UserID: owner, Hash: hashOf(string(rune('a' + i)))}
			if owner == "" {
				tok.Kind = groupgate.TokenSCIM
			}
			tok = must[groupgate.Token](t, "create token")(st.CreateToken(ctx, tok))
			if owner == "" {
				scim = append(scim, tok)
			} else {
				api = append(api, tok)
			}
		}
		order := func(a, b groupgate.Token) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
		}
		slices.SortStableFunc(api, order)
		slices.SortStableFunc(scim, order)
		of := func(userID string) []groupgate.Token {
			return slices.DeleteFunc(slices.Clone(api), func(t groupgate.Token) bool { return t.UserID != userID })
		}
		wantEqual(t, "all API tokens", must[[]groupgate.Token](t, "list")(st.ListTokens(ctx, groupgate.TokenAPI, "")), api)
		wantEqual(t, "alice's API tokens", must[[]groupgate.Token](t, "list")(st.ListTokens(ctx, groupgate.TokenAPI, alice.ID)), of(alice.ID))
		wantEqual(t, "bob's API tokens", must[[]groupgate.Token](t, "list")(st.ListTokens(ctx, groupgate.TokenAPI, bob.ID)), of(bob.ID))
		wantEqual(t, "SCIM tokens", must[[]groupgate.Token](t, "list")(st.ListTokens(ctx, groupgate.TokenSCIM, "")), scim)
	})

	t.Run("deleting a token makes it unusable and a missing token is NotFound", func(t *testing.T) {
		ctx, st := s.fresh(t)
		tok := must[groupgate.Token](t, "create")(st.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenSCIM, Hash: hashOf("s")}))
		noErr(t, st.DeleteToken(ctx, tok.ID), "delete token")
		_, err := st.GetTokenByHash(ctx, groupgate.TokenSCIM, hashOf("s"))
		wantCode(t, err, groupgate.NotFound, "get deleted token")
		wantCode(t, st.DeleteToken(ctx, tok.ID), groupgate.NotFound, "delete twice")
		wantCode(t, st.TouchToken(ctx, tok.ID, fixedTime(2)), groupgate.NotFound, "touch deleted token")
		if got := must[[]groupgate.Token](t, "list")(st.ListTokens(ctx, groupgate.TokenSCIM, "")); len(got) != 0 {
			t.Errorf("tokens after delete: %+v", got)
		}
	})

	t.Run("touching a token records its last use", func(t *testing.T) {
		ctx, st := s.fresh(t)
		tok := must[groupgate.Token](t, "create")(st.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenSCIM, Hash: hashOf("s")}))
		for _, at := range []time.Time{fixedTime(3), fixedTime(4).In(time.FixedZone("UTC-5", -5*3600))} {
			noErr(t, st.TouchToken(ctx, tok.ID, at), "touch token")
			got := must[groupgate.Token](t, "get")(st.GetTokenByHash(ctx, groupgate.TokenSCIM, hashOf("s")))
			if !got.LastUsedAt.Equal(at) {
				t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, at)
			}
			checkTime(t, "LastUsedAt", got.LastUsedAt)
			want := tok
			want.LastUsedAt = at
			wantEqual(t, "touched token", got, want)
		}
	})

	t.Run("API tokens are capped per owner, counting only live ones", func(t *testing.T) {
		ctx, st := s.fresh(t)
		alice, bob := mkUser(t, ctx, st, "alice"), mkUser(t, ctx, st, "bob")
		now := fixedTime(10)
		api := func(owner, secret string, expires time.Time) groupgate.Token {
			return groupgate.Token{Kind: groupgate.TokenAPI, UserID: owner, Hash: hashOf(secret), ExpiresAt: expires}
		}
		// Expired tokens, bob's and SCIM tokens do not count.
		must[groupgate.Token](t, "expired")(st.CreateToken(ctx, api(alice.ID, "old-1", now.Add(-time.Hour))))
		must[groupgate.Token](t, "expired at now")(st.CreateToken(ctx, api(alice.ID, "old-2", now)))
		must[groupgate.Token](t, "bob's")(st.CreateToken(ctx, api(bob.ID, "bob", time.Time{})))
		must[groupgate.Token](t, "scim")(st.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenSCIM, Hash: hashOf("scim")}))
		must[groupgate.Token](t, "live")(st.CreateAPIToken(ctx, api(alice.ID, "a1", now.Add(time.Hour)), now, 2))
		must[groupgate.Token](t, "never expiring")(st.CreateAPIToken(ctx, api(alice.ID, "a2", time.Time{}), now, 2))
		_, err := st.CreateAPIToken(ctx, api(alice.ID, "a3", now.Add(time.Hour)), now, 2)
		wantCode(t, err, groupgate.ResourceExhausted, "third live token with a cap of 2")
		left := must[[]groupgate.Token](t, "list")(st.ListTokens(ctx, groupgate.TokenAPI, alice.ID))
		if len(left) != 2 {
			t.Fatalf("alice holds %d tokens, want her 2 live ones (expired ones deleted): %+v", len(left), left)
		}
		for _, tok := range left {
			if !tok.ExpiresAt.IsZero() && !tok.ExpiresAt.After(now) {
				t.Errorf("expired token %s kept", tok.ID)
			}
		}
		// Bob still may create his own.
		must[groupgate.Token](t, "bob's second")(st.CreateAPIToken(ctx, api(bob.ID, "bob-2", time.Time{}), now, 2))
		_, err = st.CreateAPIToken(ctx, groupgate.Token{Kind: groupgate.TokenSCIM, Hash: hashOf("x")}, now, 2)
		wantCode(t, err, groupgate.Invalid, "CreateAPIToken of a SCIM token")
		_, err = st.CreateAPIToken(ctx, api(store.NewID(), "ghost", time.Time{}), now, 2)
		wantCode(t, err, groupgate.Invalid, "CreateAPIToken for a missing user")
	})

	t.Run("concurrent API token creations cannot pass the cap together", func(t *testing.T) {
		ctx, st := s.fresh(t)
		alice := mkUser(t, ctx, st, "alice")
		const callers, max = 12, 3
		errs := make(chan error, callers)
		for i := range callers {
			go func() {
				_, err := st.CreateAPIToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, UserID: alice.ID, Hash: hashOf(fmt.Sprint("c", i))}, fixedTime(1), max)
				errs <- err
			}()
		}
		created := 0
		for range callers {
			switch err := <-errs; {
			case err == nil:
				created++
			case groupgate.IsCode(err, groupgate.ResourceExhausted):
			default:
				t.Errorf("concurrent create: %v", err)
			}
		}
		if n := len(must[[]groupgate.Token](t, "list")(st.ListTokens(ctx, groupgate.TokenAPI, alice.ID))); created != max || n != max {
			t.Fatalf("%d creations succeeded and %d tokens exist, want %d", created, n, max)
		}
	})
}
