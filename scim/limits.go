package scim

import (
	"unicode/utf8"
)

// Limits on what the database indexes. PostgreSQL refuses a B-tree index
// entry over about 2.7 kB (and a row over 8 kB for some indexes) with an
// error that is no fault of the server; the limits turn such input into a
// 400 invalidValue that names the attribute. They are generous for every
// IdP we know: Entra caps a userPrincipalName at 113 characters and a
// group name at 256, Okta a login at 100; RFC 5321 §4.5.3.1 bounds an
// address to 64 + 1 + 255 octets.
const (
	maxNameLen  = 256 // userName, displayName (users and groups), externalId
	maxEmailLen = 320 // the primary email, which is indexed
)

type lengthCheck struct {
	attr  string
	value string
	max   int
}

// checkLengths refuses the first value longer than its maximum, counted
// in characters.
func checkLengths(checks ...lengthCheck) *Error {
	for _, c := range checks {
		if len(c.value) > c.max && utf8.RuneCountInString(c.value) > c.max {
			return badRequest(errInvalidValue, "%s is longer than %d characters", c.attr, c.max)
		}
	}
	return nil
}

// containsNUL reports whether a JSON text holds the escape \u0000 inside a
// string (a raw NUL byte is invalid JSON and refused by the decoder).
// PostgreSQL text and jsonb cannot store NUL, so a body with one is
// refused as a whole, wherever the NUL is: a value, a key, a path.
func containsNUL(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) && string(b[i+2:i+6]) == "0000" {
			return true
		}
		i++ // skip the escaped character, so that \\u0000 is no NUL
	}
	return false
}
