package devidp

import (
	"crypto/subtle"
	"slices"
)

// User is a demo account of the embedded IdPs.
type User struct {
	// Subject is the stable, opaque identifier the IdPs assert (OIDC "sub",
	// SAML NameID).
	Subject  string
	Username string
	Password string
	Email    string
	Name     string
	Groups   []string
}

// Users returns the demo accounts, a fresh copy each call: alice is an
// engineer and platform admin, bob an engineer, carol in no group at all
// (the case where an OIDC login succeeds with an empty group set and a SAML
// login is refused). `groupgate dev` prints this table.
func Users() []User {
	return []User{
		{Subject: "u-alice", Username: "alice", Password: "alice-password", Email: "alice@example.com", Name: "Alice Example", Groups: []string{"eng", "platform-admins"}},
		{Subject: "u-bob", Username: "bob", Password: "bob-password", Email: "bob@example.com", Name: "Bob Example", Groups: []string{"eng"}},
		{Subject: "u-carol", Username: "carol", Password: "carol-password", Email: "carol@example.com", Name: "Carol Example"},
	}
}

// directory is an immutable set of users, looked up by username or subject.
type directory struct {
	users []User
}

func newDirectory(users []User) directory {
	cp := make([]User, len(users))
	for i, u := range users {
		u.Groups = slices.Clone(u.Groups)
		cp[i] = u
	}
	return directory{users: cp}
}

// authenticate returns the user whose username and password match. Both
// comparisons run in constant time over every user, so the answer's timing
// does not tell which usernames exist.
func (d directory) authenticate(username, password string) (User, bool) {
	var found User
	ok := 0
	for _, u := range d.users {
		match := subtle.ConstantTimeCompare([]byte(u.Username), []byte(username)) &
			subtle.ConstantTimeCompare([]byte(u.Password), []byte(password))
		if match == 1 {
			found = u
		}
		ok |= match
	}
	return found, ok == 1
}

func (d directory) bySubject(sub string) (User, bool) {
	for _, u := range d.users {
		if u.Subject == sub {
			return u, true
		}
	}
	return User{}, false
}
