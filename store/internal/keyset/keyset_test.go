package keyset

import (
	"fmt"
	"testing"
	"time"
)

func TestACursorServesOneNextPageWithinItsTTL(t *testing.T) {
	now := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	c := New()
	created := now.Add(-time.Hour)
	c.Put(Key("users", 200), created, "id-200", now)

	if _, ok := c.Take(Key("users", 100), now); ok {
		t.Error("a position no page ended at has a cursor")
	}
	if _, ok := c.Take(Key("groups", 200), now); ok {
		t.Error("another listing's cursor was served")
	}
	cur, ok := c.Take(Key("users", 200), now.Add(TTL))
	if !ok || cur.ID != "id-200" || !cur.Created.Equal(created) {
		t.Fatalf("Take = %+v, %v; want the cursor put at 200", cur, ok)
	}
	if _, ok := c.Take(Key("users", 200), now); ok {
		t.Error("a cursor was served twice")
	}

	c.Put(Key("users", 300), created, "id-300", now)
	if _, ok := c.Take(Key("users", 300), now.Add(TTL+time.Nanosecond)); ok {
		t.Error("a cursor older than TTL was served")
	}

	var none *Cursors
	none.Put("k", created, "x", now)
	if _, ok := none.Take("k", now); ok {
		t.Error("a nil Cursors served a cursor")
	}
}

func TestCursorsStayBounded(t *testing.T) {
	now := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	c := New()
	for i := range 3 * maxCursors {
		c.Put(Key("walk", i), now, fmt.Sprint(i), now)
		if len(c.m) > maxCursors {
			t.Fatalf("%d cursors kept after %d puts, want at most %d", len(c.m), i+1, maxCursors)
		}
	}
	if _, ok := c.Take(Key("walk", 3*maxCursors-1), now); !ok {
		t.Error("the newest cursor was dropped")
	}
}
