package groupgate

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Name rules. Organization and repository names end up in identity
// headers (X-Auth-Request-Org-Roles: acme=ADMIN, X-Auth-Request-Repo-Roles:
// acme/api=WRITE) and in URLs, so they follow the Buf Schema Registry's
// naming rules, which leave out every character those formats give a
// meaning to (',', '=', '/', spaces, control characters).
//
// The BSR documents them as (buf.build/docs/admin/manage-organizations,
// buf.build/docs/bsr/admin/manage-repositories):
//   - organizations: "between 3 and 32 characters in length. It can only
//     contain lowercase letters, numbers, or hyphens (-)";
//   - repositories: "must be between 2 and 100 characters", "must only
//     contain lowercase letters, digits, or hyphens", "must begin with a
//     lowercase letter", "can't end with a hyphen".
//
// The rules apply where a name is created (the API, dev seeding); lookups
// only check the generic bounds below, so that an organization created
// before the rules existed can still be found and deleted.
const (
	MinOrganizationNameLen = 3
	MaxOrganizationNameLen = 32
	MinRepositoryNameLen   = 2
	MaxRepositoryNameLen   = 100
)

// MaxGroupNameLen bounds an IdP group name, in characters. Okta allows
// group names of 1 to 255 characters, Microsoft Entra ID group display
// names up to 256; 256 covers both, and at most 1 KiB of UTF-8 stays far
// below PostgreSQL's B-tree index entry limit (about 2.7 KB), so a name
// that passes is never refused by the database.
const MaxGroupNameLen = 256

// MaxNameLen bounds every other indexed name (user names, emails, external
// IDs, organization and repository names looked up by name), in
// characters, for the same reason. RFC 5321 §4.5.3.1 bounds an email
// address path at 256 octets; 256 characters leaves room for IdP user
// names of that shape.
const MaxNameLen = 256

// ValidateOrganizationName reports, as Invalid, a name that breaks the
// BSR's organization naming rules.
func ValidateOrganizationName(name string) error {
	return checkSlug("organization", name, MinOrganizationNameLen, MaxOrganizationNameLen)
}

// ValidateRepositoryName reports, as Invalid, a name that breaks the BSR's
// repository naming rules.
func ValidateRepositoryName(name string) error {
	if err := checkSlug("repository", name, MinRepositoryNameLen, MaxRepositoryNameLen); err != nil {
		return err
	}
	if c := name[0]; c < 'a' || c > 'z' {
		return Errorf(Invalid, "repository name %q must begin with a lowercase letter", name)
	}
	if strings.HasSuffix(name, "-") {
		return Errorf(Invalid, "repository name %q must not end with a hyphen", name)
	}
	return nil
}

// checkSlug: length in [lo, hi] and only a-z, 0-9 and '-'.
func checkSlug(noun, name string, lo, hi int) error {
	if len(name) < lo || len(name) > hi {
		return Errorf(Invalid, "%s name %s must be %d to %d characters long", noun, quoteShort(name), lo, hi)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return Errorf(Invalid, "%s name %s may contain only lowercase letters, digits and '-'", noun, quoteShort(name))
		}
	}
	return nil
}

// ValidateGroupName reports, as Invalid, a group name no IdP sends: empty,
// with surrounding spaces, over MaxGroupNameLen characters, not UTF-8, or
// holding a control character (NUL, newline, tab, DEL, C1). Spaces,
// commas, '=' and any printable Unicode stay legal: directories hold
// groups such as "Sales, EMEA", and the identity headers encode them.
func ValidateGroupName(name string) error {
	if strings.TrimSpace(name) == "" {
		return Errorf(Invalid, "group name required")
	}
	if err := CheckText("group name", name, MaxGroupNameLen); err != nil {
		return err
	}
	if strings.TrimSpace(name) != name {
		return Errorf(Invalid, "group name %s has leading or trailing spaces", quoteShort(name))
	}
	return nil
}

// CheckText reports, as Invalid, a value that is not UTF-8, holds a
// control character, or is longer than max characters (max <= 0: no
// bound). It is the bound every indexed name passes before it reaches the
// store, so that bad input is refused as such rather than failing in the
// database.
func CheckText(field, s string, max int) error {
	if max > 0 && len(s) > max { // fast path: bytes >= characters
		if n := utf8.RuneCountInString(s); n > max {
			return Errorf(Invalid, "%s is %d characters long, at most %d are allowed", field, n, max)
		}
	}
	if !utf8.ValidString(s) {
		return Errorf(Invalid, "%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return Errorf(Invalid, "%s contains the control character %U", field, r)
		}
	}
	return nil
}

// quoteShort quotes s for a message (control characters escaped, so the
// message stays one line), cut to 64 bytes so that a megabyte of input is
// not echoed back.
func quoteShort(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := s[:max]
	for len(cut) > 0 && !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	return strconv.Quote(cut) + "…"
}

// CheckLookupName reports, as Invalid, a name searched for that no stored
// name can equal: not UTF-8, holding NUL, or over MaxNameLen characters.
// It is laxer than the rules for new names so that names stored before a
// rule existed can still be looked up.
func CheckLookupName(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return Errorf(Invalid, "%s contains a NUL character", field)
	}
	if !utf8.ValidString(s) {
		return Errorf(Invalid, "%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > MaxNameLen {
		return Errorf(Invalid, "%s is %d characters long, at most %d are allowed", field, n, MaxNameLen)
	}
	return nil
}
