package storetest

import (
	"errors"
	"fmt"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

func testKey(id string, activeAt time.Time) store.SigningKey {
	return store.SigningKey{ID: id, Algorithm: "ES256", PublicKey: []byte("pub-" + id), PrivateKey: []byte("sealed-" + id), ActiveAt: activeAt}
}

func keyIDs(keys []store.SigningKey) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

func (s suite) signingKeys(t *testing.T) {
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	t.Run("an empty store has no keys", func(t *testing.T) {
		ctx, st := s.fresh(t)
		keys := must[[]store.SigningKey](t, "list")(st.ListSigningKeys(ctx))
		if len(keys) != 0 {
			t.Fatalf("keys = %v, want none", keyIDs(keys))
		}
	})

	t.Run("added keys read back whole, ordered by activation", func(t *testing.T) {
		ctx, st := s.fresh(t)
		later, first := testKey("b", base.Add(time.Hour)), testKey("a", base)
		stored := must[[]store.SigningKey](t, "add")(st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
			return append(cur, later, first), nil
		}))
		got := must[[]store.SigningKey](t, "list")(st.ListSigningKeys(ctx))
		if fmt.Sprint(keyIDs(got)) != "[a b]" || fmt.Sprint(keyIDs(stored)) != "[a b]" {
			t.Fatalf("listed %v, returned %v, want [a b] both", keyIDs(got), keyIDs(stored))
		}
		k := got[0]
		if k.Algorithm != "ES256" || string(k.PublicKey) != "pub-a" || string(k.PrivateKey) != "sealed-a" || !k.ActiveAt.Equal(base) || k.CreatedAt.IsZero() {
			t.Fatalf("key a read back as %+v", k)
		}
	})

	t.Run("keys left out of the result are deleted, the rest kept", func(t *testing.T) {
		ctx, st := s.fresh(t)
		must[[]store.SigningKey](t, "add")(st.UpdateSigningKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
			return []store.SigningKey{testKey("old", base), testKey("cur", base.Add(time.Hour))}, nil
		}))
		must[[]store.SigningKey](t, "rotate")(st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
			return append(cur[1:], testKey("next", base.Add(2*time.Hour))), nil
		}))
		got := must[[]store.SigningKey](t, "list")(st.ListSigningKeys(ctx))
		if fmt.Sprint(keyIDs(got)) != "[cur next]" {
			t.Fatalf("keys = %v, want [cur next]", keyIDs(got))
		}
	})

	t.Run("a stored key cannot change", func(t *testing.T) {
		ctx, st := s.fresh(t)
		must[[]store.SigningKey](t, "add")(st.UpdateSigningKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
			return []store.SigningKey{testKey("a", base)}, nil
		}))
		_, err := st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
			cur[0].PrivateKey = []byte("replaced")
			return cur, nil
		})
		wantCode(t, err, groupgate.Invalid, "change a stored key")
	})

	t.Run("an incomplete or repeated key is refused and nothing is stored", func(t *testing.T) {
		ctx, st := s.fresh(t)
		for name, keys := range map[string][]store.SigningKey{
			"no private key": {{ID: "a", Algorithm: "ES256", PublicKey: []byte("p"), ActiveAt: base}},
			"no activation":  {{ID: "a", Algorithm: "ES256", PublicKey: []byte("p"), PrivateKey: []byte("s")}},
			"twice":          {testKey("a", base), testKey("a", base)},
		} {
			_, err := st.UpdateSigningKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) { return keys, nil })
			wantCode(t, err, groupgate.Invalid, name)
		}
		if got := must[[]store.SigningKey](t, "list")(st.ListSigningKeys(ctx)); len(got) != 0 {
			t.Fatalf("keys = %v after refused updates, want none", keyIDs(got))
		}
	})

	t.Run("fn's error aborts the update unchanged", func(t *testing.T) {
		ctx, st := s.fresh(t)
		boom := errors.New("boom")
		_, err := st.UpdateSigningKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
			return []store.SigningKey{testKey("a", base)}, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want fn's error", err)
		}
		if got := must[[]store.SigningKey](t, "list")(st.ListSigningKeys(ctx)); len(got) != 0 {
			t.Fatalf("keys = %v, want none", keyIDs(got))
		}
	})

	t.Run("concurrent updates are serialized: each sees the one before", func(t *testing.T) {
		ctx, st := s.fresh(t)
		const n = 8
		var wg stdsync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
					// Rotation's rule: add a key only when the newest is
					// older than an hour. Serialized, only one adds.
					if len(cur) > 0 {
						return cur, nil
					}
					return []store.SigningKey{testKey(fmt.Sprintf("k%d", i), base)}, nil
				})
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := must[[]store.SigningKey](t, "list")(st.ListSigningKeys(ctx)); len(got) != 1 {
			t.Fatalf("keys = %v, want exactly one (updates were not serialized)", keyIDs(got))
		}
	})
}
