package session

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// verifyCookieString is verifyCookie with the ID as a string.
func (s *Store) verifyCookieString(name, value string, wall time.Time) (id, reason string) {
	var buf [cookieBufLen]byte
	b, reason := s.verifyCookie(&buf, name, value, wall)
	return string(b), reason
}

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
	if got, reason := s.verifyCookieString(s.name, good, time.Now()); reason != "" || got != id {
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
		got, reason := s.verifyCookieString(s.name, v, time.Now())
		if (werr == nil) != (reason == "") || (werr == nil && got != string(want)) {
			t.Fatalf("value %q: securecookie says %v (%q), verifyCookie says %q (%q)", v, werr, want, reason, got)
		}
	}
	if _, reason := s.verifyCookieString("other-name", good, time.Now()); reason == "" {
		t.Fatal("a cookie signed under another name was accepted")
	}
	if _, reason := s.verifyCookieString(s.name, good, time.Now().Add(time.Hour+2*time.Second)); reason != "expired" {
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
		got, reason := s.verifyCookieString(s.name, v, now)
		if (werr == nil) != (reason == "") || (werr == nil && got != string(want)) {
			t.Fatalf("value %q: securecookie says %v (%q), verifyCookie says %q (%q)", v, werr, want, reason, got)
		}
	})
}

// cookieNamed replaces r.CookiesNamed on the hot path: for any Cookie
// header lines it must find as many cookies of the name as net/http does,
// and the same value when there is one (cookie tossing is refused on the
// count).
func FuzzCookieNamed(f *testing.F) {
	for _, seed := range [][2]string{
		{"_groupgate=abc", ""},
		{" _groupgate = abc ; other=1", "_groupgate=def"},
		{`_groupgate="quoted"`, ""},
		{`_groupgate="`, `_groupgate=""`},
		{"_groupgate=a\\b; _groupgate=ok", ""},
		{"_groupgate=a b,c", ""},
		{"_groupgate", "_groupgate="},
		{";;; ;_groupgate=x;", "\t_groupgate=y\t"},
		{"_Groupgate=x; _groupgatex=y; x_groupgate=z", ""},
		{"_groupgate=\x7f; _groupgate=\xff", "_groupgate=\x00"},
		{strings.Repeat("a=b;", 3000) + "_groupgate=x", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		h := http.Header{"Cookie": {line1}}
		if line2 != "" {
			h["Cookie"] = append(h["Cookie"], line2)
		}
		r := &http.Request{Header: h}
		want := r.CookiesNamed("_groupgate")
		value, n := cookieNamed(r, "_groupgate")
		if n != len(want) || (n == 1 && value != want[0].Value) {
			t.Fatalf("Cookie %q: net/http finds %d (%v), cookieNamed %d (%q)", h["Cookie"], len(want), want, n, value)
		}
	})
}

// splitID reads a session ID the same whether it is held as a string or
// as the bytes a cookie decodes to.
func FuzzSplitIDBytes(f *testing.F) {
	id, err := NewID("alice")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{id, id + ".", "." + id, id[:10], strings.Replace(id, "-", "+", 1), ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag, random, ok := splitID(s)
		btag, brandom, bok := splitID([]byte(s))
		if ok != bok || tag != string(btag) || random != string(brandom) {
			t.Fatalf("splitID(%q) = %q, %q, %v; as bytes %q, %q, %v", s, tag, random, ok, btag, brandom, bok)
		}
		if ok && tag+"."+random != s {
			t.Fatalf("splitID(%q) = %q, %q: not the ID's two parts", s, tag, random)
		}
	})
}
