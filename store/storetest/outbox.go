package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// outboxOf returns st's OutboxStore; every backend must provide one.
func outboxOf(t *testing.T, st store.Store) store.OutboxStore {
	t.Helper()
	ob, ok := st.(store.OutboxStore)
	if !ok {
		t.Fatalf("%T does not implement store.OutboxStore", st)
	}
	return ob
}

func (s suite) outbox(t *testing.T) {
	far := time.Now().Add(24 * time.Hour)

	t.Run("an entry naming nothing is refused", func(t *testing.T) {
		ctx, st := s.fresh(t)
		_, err := outboxOf(t, st).EnqueueOutbox(ctx, store.OutboxEntry{})
		wantCode(t, err, groupgate.Invalid, "enqueue empty entry")
	})

	t.Run("entries list oldest first with what they name", func(t *testing.T) {
		ctx, st := s.fresh(t)
		ob := outboxOf(t, st)
		a := must[store.OutboxEntry](t, "enqueue users")(ob.EnqueueOutbox(ctx, store.OutboxEntry{UserIDs: []string{"u1", "u2"}}))
		b := must[store.OutboxEntry](t, "enqueue groups")(ob.EnqueueOutbox(ctx, store.OutboxEntry{Groups: []string{"eng"}, UserIDs: []string{"u3"}}))
		if a.ID == 0 || b.ID <= a.ID {
			t.Fatalf("IDs %d then %d, want increasing and non-zero", a.ID, b.ID)
		}
		got := must[[]store.OutboxEntry](t, "list")(ob.ListOutbox(ctx, 0))
		if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
			t.Fatalf("listed %+v, want entries %d and %d", got, a.ID, b.ID)
		}
		if !slices.Equal(got[0].UserIDs, []string{"u1", "u2"}) || len(got[0].Groups) != 0 {
			t.Errorf("first entry = %+v", got[0])
		}
		if !slices.Equal(got[1].Groups, []string{"eng"}) || !slices.Equal(got[1].UserIDs, []string{"u3"}) {
			t.Errorf("second entry = %+v", got[1])
		}
		if got[0].Attempts != 0 || !got[0].ClaimedUntil.IsZero() || got[0].CreatedAt.IsZero() {
			t.Errorf("a new entry has attempts %d, lease %v, created %v", got[0].Attempts, got[0].ClaimedUntil, got[0].CreatedAt)
		}
		if one := must[[]store.OutboxEntry](t, "list 1")(ob.ListOutbox(ctx, 1)); len(one) != 1 || one[0].ID != a.ID {
			t.Errorf("list with limit 1 = %+v", one)
		}
	})

	t.Run("stats count the pending entries and date the oldest", func(t *testing.T) {
		ctx, st := s.fresh(t)
		ob := outboxOf(t, st)
		if n, oldest, err := ob.OutboxStats(ctx); err != nil || n != 0 || !oldest.IsZero() {
			t.Fatalf("empty outbox stats = %d, %v, %v; want 0 and zero time", n, oldest, err)
		}
		a := must[store.OutboxEntry](t, "enqueue a")(ob.EnqueueOutbox(ctx, store.OutboxEntry{UserIDs: []string{"u1"}}))
		b := must[store.OutboxEntry](t, "enqueue b")(ob.EnqueueOutbox(ctx, store.OutboxEntry{UserIDs: []string{"u2"}}))
		n, oldest, err := ob.OutboxStats(ctx)
		if err != nil || n != 2 || !oldest.Equal(a.CreatedAt) {
			t.Fatalf("stats = %d, %v, %v; want 2 and %v", n, oldest, err, a.CreatedAt)
		}
		noErr(t, ob.AckOutbox(ctx, a.ID), "ack a")
		if n, oldest, err := ob.OutboxStats(ctx); err != nil || n != 1 || !oldest.Equal(b.CreatedAt) {
			t.Fatalf("stats after ack = %d, %v, %v; want 1 and %v", n, oldest, err, b.CreatedAt)
		}
	})

	t.Run("an entry commits or rolls back with its transaction", func(t *testing.T) {
		ctx, st := s.fresh(t)
		boom := errors.New("boom")
		err := st.InTx(ctx, func(tx store.Store) error {
			if _, err := outboxOf(t, tx).EnqueueOutbox(ctx, store.OutboxEntry{UserIDs: []string{"lost"}}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v, want boom", err)
		}
		noErr(t, st.InTx(ctx, func(tx store.Store) error {
			_, err := outboxOf(t, tx).EnqueueOutbox(ctx, store.OutboxEntry{UserIDs: []string{"kept"}})
			return err
		}), "committed enqueue")
		got := must[[]store.OutboxEntry](t, "list")(outboxOf(t, st).ListOutbox(ctx, 0))
		if len(got) != 1 || !slices.Equal(got[0].UserIDs, []string{"kept"}) {
			t.Fatalf("pending = %+v, want only the committed entry", got)
		}
	})

	t.Run("an entry with its audit event is written whole, and rolls back whole", func(t *testing.T) {
		ctx, st := s.fresh(t)
		ev := groupgate.AuditEvent{Actor: "user:u1", Action: "user.login", TargetType: "user", TargetID: "u1",
			Before: json.RawMessage(`{"groups":["a"]}`), After: json.RawMessage(`{"groups":["a","b"]}`), At: time.Now()}
		boom := errors.New("boom")
		err := st.InTx(ctx, func(tx store.Store) error {
			if _, err := outboxOf(t, tx).EnqueueOutboxAudited(ctx, store.OutboxEntry{UserIDs: []string{"lost"}}, ev); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v, want boom", err)
		}
		if evs := must[[]groupgate.AuditEvent](t, "list audit")(st.ListAudit(ctx, 0, 0)); len(evs) != 0 {
			t.Fatalf("a rolled back audit event stayed: %+v", evs)
		}
		var e store.OutboxEntry
		noErr(t, st.InTx(ctx, func(tx store.Store) error {
			var err error
			e, err = outboxOf(t, tx).EnqueueOutboxAudited(ctx, store.OutboxEntry{UserIDs: []string{"u1"}, Groups: []string{"eng"}}, ev)
			return err
		}), "committed enqueue")
		got := must[[]store.OutboxEntry](t, "list")(outboxOf(t, st).ListOutbox(ctx, 0))
		if len(got) != 1 || got[0].ID != e.ID || e.ID == 0 || !slices.Equal(got[0].UserIDs, []string{"u1"}) || !slices.Equal(got[0].Groups, []string{"eng"}) {
			t.Fatalf("pending = %+v (returned %+v), want the committed entry", got, e)
		}
		evs := must[[]groupgate.AuditEvent](t, "list audit")(st.ListAudit(ctx, 0, 0))
		if len(evs) != 1 || evs[0].Action != ev.Action || evs[0].Actor != ev.Actor || evs[0].TargetID != "u1" {
			t.Fatalf("audit = %+v, want the login event", evs)
		}
		var after struct{ Groups []string }
		noErr(t, json.Unmarshal(evs[0].After, &after), "decode after")
		if !slices.Equal(after.Groups, []string{"a", "b"}) || evs[0].Before == nil {
			t.Fatalf("audit before %s after %s", evs[0].Before, evs[0].After)
		}
		_, err = outboxOf(t, st).EnqueueOutboxAudited(ctx, store.OutboxEntry{}, ev)
		wantCode(t, err, groupgate.Invalid, "enqueue empty entry with audit")
	})

	t.Run("a claim holds an entry for its lease and counts attempts", func(t *testing.T) {
		ctx, st := s.fresh(t)
		ob := outboxOf(t, st)
		e := must[store.OutboxEntry](t, "enqueue")(ob.EnqueueOutbox(ctx, store.OutboxEntry{UserIDs: []string{"u"}}))
		now := time.Now()
		if got := must[[]store.OutboxEntry](t, "claim too new")(ob.ClaimOutbox(ctx, now, e.CreatedAt.Add(-time.Second), time.Minute, 10)); len(got) != 0 {
			t.Fatalf("claimed %+v created after the cut-off", got)
		}
		got := must[[]store.OutboxEntry](t, "claim")(ob.ClaimOutbox(ctx, now, far, time.Minute, 10))
		if len(got) != 1 || got[0].ID != e.ID || got[0].Attempts != 1 {
			t.Fatalf("claim = %+v, want entry %d with one attempt", got, e.ID)
		}
		if d := got[0].ClaimedUntil.Sub(now.Add(time.Minute)); d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("lease ends %v, want %v", got[0].ClaimedUntil, now.Add(time.Minute))
		}
		if again := must[[]store.OutboxEntry](t, "claim during lease")(ob.ClaimOutbox(ctx, now.Add(30*time.Second), far, time.Minute, 10)); len(again) != 0 {
			t.Fatalf("claimed %+v again while its lease runs", again)
		}
		later := must[[]store.OutboxEntry](t, "claim after lease")(ob.ClaimOutbox(ctx, now.Add(2*time.Minute), far, time.Minute, 10))
		if len(later) != 1 || later[0].Attempts != 2 {
			t.Fatalf("after the lease: %+v, want the entry with two attempts", later)
		}
		_, err := ob.ClaimOutbox(ctx, now, far, time.Minute, 0)
		wantCode(t, err, groupgate.Invalid, "claim with limit 0")
	})

	t.Run("an acknowledged entry is gone and a second ack is fine", func(t *testing.T) {
		ctx, st := s.fresh(t)
		ob := outboxOf(t, st)
		a := must[store.OutboxEntry](t, "enqueue a")(ob.EnqueueOutbox(ctx, store.OutboxEntry{UserIDs: []string{"a"}}))
		b := must[store.OutboxEntry](t, "enqueue b")(ob.EnqueueOutbox(ctx, store.OutboxEntry{UserIDs: []string{"b"}}))
		noErr(t, ob.AckOutbox(ctx, a.ID), "ack")
		noErr(t, ob.AckOutbox(ctx, a.ID), "ack again")
		got := must[[]store.OutboxEntry](t, "list")(ob.ListOutbox(ctx, 0))
		if len(got) != 1 || got[0].ID != b.ID {
			t.Fatalf("pending = %+v, want only %d", got, b.ID)
		}
	})

	t.Run("parallel claimers never take the same entry", func(t *testing.T) {
		ctx, st := s.fresh(t)
		ob := outboxOf(t, st)
		const n = 40
		for i := range n {
			must[store.OutboxEntry](t, "enqueue")(ob.EnqueueOutbox(ctx, store.OutboxEntry{UserIDs: []string{string(rune('a' + i%26))}}))
		}
		var (
			mu   stdsync.Mutex
			seen = map[int64]int{}
			wg   stdsync.WaitGroup
			errs = make(chan error, 8)
		)
		now := time.Now()
		for range 8 {
			wg.Go(func() {
				for {
					es, err := ob.ClaimOutbox(ctx, now, far, time.Hour, 3)
					if err != nil {
						errs <- err
						return
					}
					if len(es) == 0 {
						return
					}
					mu.Lock()
					for _, e := range es {
						seen[e.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("claim: %v", err)
		}
		if len(seen) != n {
			t.Errorf("%d entries claimed, want %d", len(seen), n)
		}
		for id, k := range seen {
			if k != 1 {
				t.Errorf("entry %d claimed %d times", id, k)
			}
		}
	})
}
