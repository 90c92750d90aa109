package groupgate

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// NormalizeEmail is the one key under which groupgate compares email
// addresses: the stores save it beside the address (users.email_norm) and
// every lookup compares that column with NormalizeEmail of the address
// asked for, so Go and SQL never fold differently. The database's own
// lower() is never used for emails: PostgreSQL's lower() follows the
// database's locale and Unicode tables, and folding U+212A KELVIN SIGN
// there while Go kept it apart is how "Kelly@…" (Kelvin sign) once matched
// kelly's account.
//
// The key is Unicode NFKC (UAX #15: compatibility forms such as fullwidth
// letters and the Kelvin sign become their ordinary letters), then simple
// per-rune lowercase (Unicode's default, locale-free mapping: Turkish
// dotless ı stays ı and so differs from i; İ becomes i), then NFKC again, so
// that NormalizeEmail is idempotent. Surrounding white space is trimmed,
// before and after normalising. The domain is folded the same way; IDNA
// (punycode) forms are not converted.
//
// Folding this much makes more addresses collide, never fewer: a collision
// is refused or reviewed, so a spelling that folds onto another account's
// address cannot slip past a check. Linking a login to an account needs
// more than equal keys (see sync.Login).
func NormalizeEmail(email string) string {
	// NFKC can turn a character into white space plus a combining mark
	// (U+00AF MACRON becomes " \u0304"), so trimming before it is not
	// enough: repeat until the key is a fixed point, which it is after one
	// or two rounds.
	s := email
	for range 4 {
		next := strings.TrimSpace(norm.NFKC.String(strings.ToLower(norm.NFKC.String(strings.TrimSpace(s)))))
		if next == s {
			break
		}
		s = next
	}
	return s
}

// SameEmailSpelling reports whether a and b are the same address up to ASCII
// letter case and surrounding space: the only differences every mail system
// ignores. Addresses whose keys collide only through Unicode folding
// (a Kelvin sign for a K, a fullwidth letter) are not the same spelling.
func SameEmailSpelling(a, b string) bool {
	return asciiLower(strings.TrimSpace(a)) == asciiLower(strings.TrimSpace(b))
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
