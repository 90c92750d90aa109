package session

import (
	"strings"
	"testing"
)

func TestSessionIDsNameTheirUserWithoutRevealingIt(t *testing.T) {
	a1, err := NewID("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := NewID("alice@example.com")
	b1, _ := NewID("bob@example.com")
	tagA1, randA1, ok1 := splitID(a1)
	tagA2, randA2, ok2 := splitID(a2)
	tagB1, _, ok3 := splitID(b1)
	switch {
	case !ok1 || !ok2 || !ok3:
		t.Fatal("NewID produced an ID splitID refuses")
	case tagA1 != tagA2 || tagA1 == tagB1:
		t.Fatal("the user tag does not identify the user")
	case randA1 == randA2:
		t.Fatal("two IDs share their random part")
	case strings.Contains(a1, "alice"):
		t.Fatal("the ID reveals the user ID")
	}
	if _, err := NewID(""); err == nil {
		t.Fatal("NewID accepted an empty user ID")
	}
}

// FuzzSplitID feeds attacker-controlled cookie contents to the ID parser.
func FuzzSplitID(f *testing.F) {
	id, _ := NewID("alice")
	for _, seed := range []string{id, "", ".", "a.b", id + "." + id, "{u:x}.y", strings.Repeat("A", 22) + "." + strings.Repeat("-", 43)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag, random, ok := splitID(s)
		if !ok {
			return
		}
		if tag+"."+random != s || len(tag) != 22 || len(random) != 43 || strings.ContainsAny(s, "{}:") {
			t.Fatalf("splitID(%q) accepted a malformed ID", s)
		}
	})
}
