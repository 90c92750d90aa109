package groupgate_test

import (
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/groupgate/groupgate"
)

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"mixed case lowers", "Alice.Smith@Example.COM", "alice.smith@example.com"},
		{"surrounding space is trimmed", "  bob@example.com\t", "bob@example.com"},
		{"the Kelvin sign is a K", "\u212Aelly@example.com", "kelly@example.com"},
		{"fullwidth letters are ASCII", "\uff2c\uff49\uff4c\uff59@example.com", "lily@example.com"},
		{"dotless ı stays dotless", "\u0131VY@example.com", "\u0131vy@example.com"},
		{"capital dotted İ lowers to plain i (Unicode's simple mapping)", "\u0130vy@example.com", "ivy@example.com"},
		{"the empty address stays empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := groupgate.NormalizeEmail(tt.in); got != tt.want {
				t.Errorf("NormalizeEmail(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSameEmailSpelling(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"Kelly@Example.com", "kelly@example.com", true},
		{" kelly@example.com ", "kelly@example.com", true},
		{"\u212Aelly@example.com", "kelly@example.com", false},
		{"\uff4belly@example.com", "kelly@example.com", false},
		{"\u0131vy@example.com", "ivy@example.com", false},
		{"kelly@example.com", "kelly@example.org", false},
	}
	for _, tt := range tests {
		if got := groupgate.SameEmailSpelling(tt.a, tt.b); got != tt.want {
			t.Errorf("SameEmailSpelling(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// FuzzNormalizeEmail checks the properties the stores and account linking
// rely on: the key is a fixed point (stored keys and looked-up keys agree),
// NFKC, never longer in runes than NFKC needs, and two addresses spelled
// alike always share a key.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"Kelly@Example.com", "\u212Aelly@example.com", "\u0130vy@example.com", "\u0131vy", "\uff21@\uff22", "ß@x", "\u1E9E@x", " a@b ", "\xff"} {
		f.Add(s, "KELLY@example.com")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		k := groupgate.NormalizeEmail(a)
		if again := groupgate.NormalizeEmail(k); again != k {
			t.Fatalf("not idempotent: %q -> %q -> %q", a, k, again)
		}
		if utf8.ValidString(a) && !norm.NFKC.IsNormalString(k) {
			t.Fatalf("key %q of %q is not NFKC", k, a)
		}
		if groupgate.SameEmailSpelling(a, b) && k != groupgate.NormalizeEmail(b) {
			t.Fatalf("%q and %q are spelled alike but have keys %q and %q", a, b, k, groupgate.NormalizeEmail(b))
		}
	})
}
