package groupgate_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/groupgate/groupgate"
)

func TestOrganizationAndRepositoryNamesFollowTheBSRRules(t *testing.T) {
	tests := []struct {
		name      string
		org, repo bool // accepted as an organization / a repository name
	}{
		{"acme", true, true},
		{"acme-corp", true, true},
		{"a1b2", true, true},
		{"abc", true, true},
		{"ab", false, true},     // organizations need 3 characters
		{"a", false, false},     // repositories need 2
		{"", false, false},      // required
		{"9lives", true, false}, // a repository begins with a letter
		{"-acme", true, false},
		{"acme-", true, false}, // a repository cannot end with '-'
		{strings.Repeat("a", 32), true, true},
		{strings.Repeat("a", 33), false, true},
		{strings.Repeat("a", 100), false, true},
		{strings.Repeat("a", 101), false, false},
		{strings.Repeat("a", 300), false, false},
		{"x,acme=ADMIN", false, false}, // would forge an org-roles entry
		{"x,acme=admin", false, false},
		{"a=b", false, false},
		{"new\nline", false, false},
		{"nul\x00byte", false, false},
		{"Bad Name!", false, false},
		{"Acme", false, false}, // lowercase only
		{"acme/api", false, false},
		{"acme_corp", false, false},
		{"acme.corp", false, false},
		{" acme", false, false},
		{"ácme", false, false},
		{"ａｃｍｅ", false, false}, // fullwidth
	}
	for _, tt := range tests {
		t.Run(strings.ToValidUTF8(tt.name, "?"), func(t *testing.T) {
			err := groupgate.ValidateOrganizationName(tt.name)
			if got := err == nil; got != tt.org {
				t.Errorf("organization name %q: accepted %v, want %v (%v)", tt.name, got, tt.org, err)
			}
			if err != nil && !groupgate.IsCode(err, groupgate.Invalid) {
				t.Errorf("organization name %q: code %s, want invalid", tt.name, groupgate.ErrorCodeOf(err))
			}
			err = groupgate.ValidateRepositoryName(tt.name)
			if got := err == nil; got != tt.repo {
				t.Errorf("repository name %q: accepted %v, want %v (%v)", tt.name, got, tt.repo, err)
			}
			if err != nil && !groupgate.IsCode(err, groupgate.Invalid) {
				t.Errorf("repository name %q: code %s, want invalid", tt.name, groupgate.ErrorCodeOf(err))
			}
		})
	}
}

func TestGroupNamesAllowWhatIdPsAllowAndRefuseControlsAndHugeNames(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"eng", true},
		{"Sales, EMEA", true},           // commas and spaces are legal in directories
		{"eng-x,platform-admins", true}, // the headers encode the comma
		{"role=admin", true},
		{"Ingeniería – Zürich 東京", true},
		{"CN=eng,OU=Groups,DC=example,DC=com", true},
		{"0b5d5a3e-8f0c-4c1e-9a57-5b1f8a7e6c2d", true},
		{strings.Repeat("g", 256), true},
		{strings.Repeat("é", 256), true}, // characters, not bytes
		{strings.Repeat("g", 257), false},
		{strings.Repeat("g", 900_000), false},
		{"", false},
		{"   ", false},
		{" eng", false},
		{"eng\n", false},
		{"new\nline", false},
		{"tab\there", false},
		{"nul\x00", false},
		{"del\x7f", false},
		{"c1\u0085", false},
		{"bad\xffutf8", false},
	}
	for _, tt := range tests {
		t.Run(strings.ToValidUTF8(tt.name[:min(len(tt.name), 40)], "?"), func(t *testing.T) {
			err := groupgate.ValidateGroupName(tt.name)
			if got := err == nil; got != tt.ok {
				t.Fatalf("accepted %v, want %v (%v)", got, tt.ok, err)
			}
			if err != nil && !groupgate.IsCode(err, groupgate.Invalid) {
				t.Errorf("code %s, want invalid", groupgate.ErrorCodeOf(err))
			}
			if err != nil && len(err.Error()) > 300 {
				t.Errorf("message echoes the whole input: %d bytes", len(err.Error()))
			}
		})
	}
}

// FuzzNameRules checks that no name the rules accept can break an identity
// header: organization and repository names hold none of the characters
// the header formats give a meaning to, and group names hold no control
// character (the header encoding deals with the rest).
func FuzzNameRules(f *testing.F) {
	for _, s := range []string{"acme", "x,acme=ADMIN", "new\nline", "Sales, EMEA", "a\x00", "é", "abc-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		slug := func(noun string, err error) {
			if err != nil {
				if !groupgate.IsCode(err, groupgate.Invalid) {
					t.Fatalf("%s %q: code %s", noun, s, groupgate.ErrorCodeOf(err))
				}
				return
			}
			if strings.ContainsAny(s, ",=/ \t\r\n\x00") || strings.ToLower(s) != s || len(s) > 100 {
				t.Fatalf("%s name %q accepted", noun, s)
			}
		}
		slug("organization", groupgate.ValidateOrganizationName(s))
		slug("repository", groupgate.ValidateRepositoryName(s))
		if err := groupgate.ValidateGroupName(s); err == nil {
			if !utf8.ValidString(s) || utf8.RuneCountInString(s) > groupgate.MaxGroupNameLen || strings.IndexFunc(s, unicode.IsControl) >= 0 {
				t.Fatalf("group name %q accepted", s)
			}
		} else if !groupgate.IsCode(err, groupgate.Invalid) {
			t.Fatalf("group %q: code %s", s, groupgate.ErrorCodeOf(err))
		}
	})
}
