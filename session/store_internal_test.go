package session

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// verifyCookie replaces securecookie's Decode on the hot path: it must
// accept exactly what Decode accepts.
func TestVerifyCookieAgreesWithSecurecookie(t *testing.T) {
	s, err := NewStore(NewMemory(), bytes.Repeat([]byte("k"), MinSecretLen), WithTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewID("alice")
	if err != nil {
		t.Fatal(err)
	}
	good, err := s.codec.Encode(s.name, []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	if got, reason := s.verifyCookie(s.name, good, time.Now()); reason != "" || got != id {
		t.Fatalf("verifyCookie(codec's own cookie) = %q, %q; want the ID", got, reason)
	}
	// Every single-byte change of a good value, and every truncation, must
	// be refused by both, or accepted by both with the same ID.
	var variants []string
	for i := range len(good) {
		for _, c := range []byte{'A', '-', '_', '=', '|', 'z'} {
			if good[i] != c {
				variants = append(variants, good[:i]+string(c)+good[i+1:])
			}
		}
		variants = append(variants, good[:i])
	}
	for _, v := range variants {
		var want []byte
		werr := s.codec.Decode(s.name, v, &want)
		got, reason := s.verifyCookie(s.name, v, time.Now())
		if (werr == nil) != (reason == "") || (werr == nil && got != string(want)) {
			t.Fatalf("value %q: securecookie says %v (%q), verifyCookie says %q (%q)", v, werr, want, reason, got)
		}
	}
	if _, reason := s.verifyCookie("other-name", good, time.Now()); reason == "" {
		t.Fatal("a cookie signed under another name was accepted")
	}
	if _, reason := s.verifyCookie(s.name, good, time.Now().Add(time.Hour+2*time.Second)); reason != "expired" {
		t.Fatalf("a cookie older than the TTL was refused for %q, want expired", reason)
	}
}

// FuzzVerifyCookie feeds attacker-chosen cookie values to groupgate's own
// HMAC check and to gorilla/securecookie, which writes the cookies: both
// must refuse, or both accept with the same session ID.
func FuzzVerifyCookie(f *testing.F) {
	s, err := NewStore(NewMemory(), bytes.Repeat([]byte("k"), MinSecretLen), WithTTL(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	id, err := NewID("alice")
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.codec.Encode(s.name, []byte(id))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{good, good[:len(good)/2], good + "A", "", "|||", "MTIz|YWJj|ZGVm", strings.Repeat("A", 5000)} {
		f.Add(seed)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, v string) {
		var want []byte
		werr := s.codec.Decode(s.name, v, &want)
		got, reason := s.verifyCookie(s.name, v, now)
		if (werr == nil) != (reason == "") || (werr == nil && got != string(want)) {
			t.Fatalf("value %q: securecookie says %v (%q), verifyCookie says %q (%q)", v, werr, want, reason, got)
		}
	})
}
