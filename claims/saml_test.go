package claims

import (
	"errors"
	"slices"
	"testing"

	"github.com/groupgate/groupgate"
)

func TestFromSAML(t *testing.T) {
	eng, err := NewFilter([]string{"^eng-"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		attrs      map[string][]string
		opts       SAMLOptions
		wantGroups []string
		wantUser   string
		wantEmail  string
		wantName   string
	}{
		{
			name:       "Entra's groups attribute is read when configured",
			attrs:      map[string][]string{EntraGroupsAttribute: {"b1c2-guid", "a0-guid"}},
			opts:       SAMLOptions{GroupsAttribute: EntraGroupsAttribute},
			wantGroups: []string{"a0-guid", "b1c2-guid"},
			wantUser:   "nameid-1",
		},
		{
			name:       "the groups attribute defaults to groups",
			attrs:      map[string][]string{"groups": {"ops", "eng", "ops"}, "email": {"alice@example.com"}},
			wantGroups: []string{"eng", "ops"},
			wantUser:   "alice@example.com",
			wantEmail:  "alice@example.com",
		},
		{
			name:       "memberOf with a delimiter splits single-valued lists",
			attrs:      map[string][]string{"memberOf": {"eng, ops,,", "admins"}},
			opts:       SAMLOptions{GroupsAttribute: "memberOf", Delimiter: ","},
			wantGroups: []string{"admins", "eng", "ops"},
			wantUser:   "nameid-1",
		},
		{
			name:       "without a delimiter a comma stays part of the name",
			attrs:      map[string][]string{"groups": {"cn=eng,ou=groups"}},
			wantGroups: []string{"cn=eng,ou=groups"},
			wantUser:   "nameid-1",
		},
		{
			name:       "blank values next to real ones are dropped",
			attrs:      map[string][]string{"groups": {"", "  eng  ", "\t"}},
			wantGroups: []string{"eng"},
			wantUser:   "nameid-1",
		},
		{
			name: "username, email and display name come from their attributes",
			attrs: map[string][]string{
				"groups": {"eng"}, "uid": {"", " alice "}, "mail": {"alice@example.com"}, "displayName": {"Alice A"},
			},
			opts:       SAMLOptions{UsernameAttribute: "uid", EmailAttribute: "mail", NameAttribute: "displayName"},
			wantGroups: []string{"eng"},
			wantUser:   "alice",
			wantEmail:  "alice@example.com",
			wantName:   "Alice A",
		},
		{
			name:       "groups the filter hides leave a present, empty set",
			attrs:      map[string][]string{"groups": {"ops", "finance"}},
			opts:       SAMLOptions{Filter: eng},
			wantGroups: []string{},
			wantUser:   "nameid-1",
		},
		{
			name:       "the filter keeps what it allows",
			attrs:      map[string][]string{"groups": {"ops", "eng-api"}},
			opts:       SAMLOptions{Filter: eng},
			wantGroups: []string{"eng-api"},
			wantUser:   "nameid-1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := FromSAML("entra", "nameid-1", tt.attrs, tt.opts)
			if err != nil {
				t.Fatalf("FromSAML: %v", err)
			}
			if id.Groups == nil || !slices.Equal(id.Groups, tt.wantGroups) {
				t.Errorf("Groups = %#v, want %#v", id.Groups, tt.wantGroups)
			}
			if !id.GroupsPresent {
				t.Error("GroupsPresent = false for an accepted SAML login")
			}
			if id.Subject != "nameid-1" || id.Provider != "entra" {
				t.Errorf("Subject, Provider = %q, %q", id.Subject, id.Provider)
			}
			if id.Username != tt.wantUser || id.Email != tt.wantEmail || id.DisplayName != tt.wantName {
				t.Errorf("Username, Email, DisplayName = %q, %q, %q; want %q, %q, %q",
					id.Username, id.Email, id.DisplayName, tt.wantUser, tt.wantEmail, tt.wantName)
			}
		})
	}
}

func TestFromSAMLRefuses(t *testing.T) {
	tests := []struct {
		name     string
		nameID   string
		attrs    map[string][]string
		opts     SAMLOptions
		wantCode groupgate.ErrorCode
		wantErr  error
	}{
		{
			name:     "an absent groups attribute is no groups",
			nameID:   "n",
			attrs:    map[string][]string{"email": {"a@example.com"}},
			wantCode: groupgate.Forbidden,
			wantErr:  ErrNoGroups,
		},
		{
			name:     "an attribute of the wrong name is no groups",
			nameID:   "n",
			attrs:    map[string][]string{"Groups": {"eng"}},
			wantCode: groupgate.Forbidden,
			wantErr:  ErrNoGroups,
		},
		{
			name:     "a groups attribute without values is no groups",
			nameID:   "n",
			attrs:    map[string][]string{"groups": {}},
			wantCode: groupgate.Forbidden,
			wantErr:  ErrNoGroups,
		},
		{
			name:     "a groups attribute of only blank values is no groups",
			nameID:   "n",
			attrs:    map[string][]string{"groups": {"", " ", "\t\n"}},
			wantCode: groupgate.Forbidden,
			wantErr:  ErrNoGroups,
		},
		{
			name:     "a delimited value of only delimiters is no groups",
			nameID:   "n",
			attrs:    map[string][]string{"groups": {" , ,"}},
			opts:     SAMLOptions{Delimiter: ","},
			wantCode: groupgate.Forbidden,
			wantErr:  ErrNoGroups,
		},
		{
			name:   "an Entra overage link is reported as overage",
			nameID: "n",
			attrs: map[string][]string{
				EntraGroupsLinkAttribute: {"https://graph.windows.net/tenant/users/x/getMemberObjects"},
			},
			opts:     SAMLOptions{GroupsAttribute: EntraGroupsAttribute},
			wantCode: groupgate.Forbidden,
			wantErr:  ErrGroupOverage,
		},
		{
			name:   "an overage link wins over a partial groups list",
			nameID: "n",
			attrs: map[string][]string{
				EntraGroupsLinkAttribute: {"https://graph.windows.net/x"},
				EntraGroupsAttribute:     {"g1"},
			},
			opts:     SAMLOptions{GroupsAttribute: EntraGroupsAttribute},
			wantCode: groupgate.Forbidden,
			wantErr:  ErrNoGroups,
		},
		{
			name:     "an empty NameID is invalid",
			nameID:   " ",
			attrs:    map[string][]string{"groups": {"eng"}},
			wantCode: groupgate.Invalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromSAML("entra", tt.nameID, tt.attrs, tt.opts)
			if err == nil {
				t.Fatal("FromSAML succeeded")
			}
			if !groupgate.IsCode(err, tt.wantCode) {
				t.Errorf("code = %q, want %q (%v)", groupgate.ErrorCodeOf(err), tt.wantCode, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantErr)
			}
		})
	}
}

func TestGroupOverageIsNoGroups(t *testing.T) {
	if !errors.Is(ErrGroupOverage, ErrNoGroups) {
		t.Error("ErrGroupOverage does not match ErrNoGroups")
	}
	_, err := FromSAML("entra", "n", map[string][]string{}, SAMLOptions{})
	if errors.Is(err, ErrGroupOverage) {
		t.Error("a plain missing-groups error matches ErrGroupOverage")
	}
}
