package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// A walk over pages in the default order continues after the last row it
// saw (keyset) rather than counting its startIndex off again: a row
// deleted before the cursor shifts no row of the rest past the walk.
func TestAWalkOfPagesNeitherSkipsNorRepeatsRowsThatStayed(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	var names []string
	for i := range 7 {
		u, err := st.CreateUser(ctx, groupgate.User{UserName: fmt.Sprintf("u%d", i), Active: true})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, u.UserName)
	}
	active := store.Query{Filter: store.Compare{Attr: "active", Op: store.OpEq, Value: true}, Limit: 2}
	var seen []string
	page := func(offset, wantTotal int) {
		t.Helper()
		q := active
		q.Offset = offset
		got, total, err := st.QueryUsers(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if total != wantTotal {
			t.Errorf("page at %d: total %d, want %d", offset, total, wantTotal)
		}
		for _, u := range got {
			seen = append(seen, u.UserName)
		}
	}
	page(0, 7)
	// The first row goes away before the next page; OFFSET 2 would now
	// start at u3 and never show u2.
	if err := st.DeleteUser(ctx, mustID(t, st, "u0")); err != nil {
		t.Fatal(err)
	}
	page(2, 6)
	page(4, 6)
	page(6, 6)
	if want := names; !slices.Equal(seen, want) {
		t.Errorf("walk saw %v, want %v", seen, want)
	}

	// A page no walk ended at is counted off as before.
	seen = nil
	page(3, 6)
	if want := []string{"u4", "u5"}; !slices.Equal(seen, want) {
		t.Errorf("a jump to 3 saw %v, want %v", seen, want)
	}
}

func mustID(t *testing.T, st *Store, name string) string {
	t.Helper()
	u, err := st.GetUserByUserName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}
