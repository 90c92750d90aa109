package sync_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
)

// Point 13: a login may carry group names no directory holds (900 KB,
// NUL, newlines). They never reach the group set, where they would fail
// the store or garble a header; the names directories do hold are kept.
func TestLoginGroupSetsDropNamesWithControlsOrOverLong(t *testing.T) {
	e := newEnv(t)
	bad := []string{"nul\x00", "new\nline", strings.Repeat("g", groupgate.MaxGroupNameLen+1), strings.Repeat("x", 900_000)}
	good := []string{"Sales, EMEA", "eng", strings.Repeat("é", groupgate.MaxGroupNameLen)}
	u, _, err := e.s.Login(e.ctx, groupgate.Identity{
		Provider: "okta", Subject: "alice", Username: "alice", Email: "alice@example.com",
		Groups: append(slices.Clone(bad), good...), GroupsPresent: true,
	})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	set, err := e.st.GetGroupSet(e.ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := set.Names()
	want := slices.Sorted(slices.Values(good))
	if !slices.Equal(got, want) {
		t.Fatalf("group set %q, want %q", got, want)
	}
}
