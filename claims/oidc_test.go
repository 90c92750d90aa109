package claims

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/groupgate/groupgate"
)

// decode parses claims the way a token library hands them over.
func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return m
}

func TestFromOIDCGroupShapes(t *testing.T) {
	eng, err := NewFilter([]string{"^eng-"}, []string{"secret"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		claims      string
		opts        OIDCOptions
		wantGroups  []string
		wantPresent bool
	}{
		{
			name:        "an array of strings is sorted and de-duplicated",
			claims:      `{"sub":"u1","groups":["ops","eng","ops"]}`,
			wantGroups:  []string{"eng", "ops"},
			wantPresent: true,
		},
		{
			name:        "a single string is one group",
			claims:      `{"sub":"u1","groups":"eng"}`,
			wantGroups:  []string{"eng"},
			wantPresent: true,
		},
		{
			name:        "names are trimmed and empty ones dropped",
			claims:      `{"sub":"u1","groups":["  eng ","", "   ", "\tops\n"]}`,
			wantGroups:  []string{"eng", "ops"},
			wantPresent: true,
		},
		{
			name:        "trimming happens before de-duplication",
			claims:      `{"sub":"u1","groups":["eng"," eng","eng "]}`,
			wantGroups:  []string{"eng"},
			wantPresent: true,
		},
		{
			name:        "group names are case-sensitive",
			claims:      `{"sub":"u1","groups":["Eng","eng"]}`,
			wantGroups:  []string{"Eng", "eng"},
			wantPresent: true,
		},
		{
			name:        "objects are named by name, then displayName, then value",
			claims:      `{"sub":"u1","groups":[{"name":"a","displayName":"x","value":"y"},{"name":"","displayName":"b"},{"name":"  ","value":"c"},{"id":"no-name"}]}`,
			wantGroups:  []string{"a", "b", "c"},
			wantPresent: true,
		},
		{
			name:        "a mixed array takes strings, numbers and objects and ignores nulls and booleans",
			claims:      `{"sub":"u1","groups":["eng",42,null,true,{"value":"ops"},[" nested "]]}`,
			wantGroups:  []string{"42", "eng", "nested", "ops"},
			wantPresent: true,
		},
		{
			name:        "numbers are written as their decimal text",
			claims:      `{"sub":"u1","groups":[12345678901234, 1.5, -3, 1e3]}`,
			wantGroups:  []string{"-3", "1.5", "1000", "12345678901234"},
			wantPresent: true,
		},
		{
			name:        "a single object is one group",
			claims:      `{"sub":"u1","groups":{"displayName":"eng"}}`,
			wantGroups:  []string{"eng"},
			wantPresent: true,
		},
		{
			name:        "an absent claim is an empty set, not present",
			claims:      `{"sub":"u1"}`,
			wantGroups:  []string{},
			wantPresent: false,
		},
		{
			name:        "an empty array is an empty set that is present",
			claims:      `{"sub":"u1","groups":[]}`,
			wantGroups:  []string{},
			wantPresent: true,
		},
		{
			name:        "a null claim is present and empty",
			claims:      `{"sub":"u1","groups":null}`,
			wantGroups:  []string{},
			wantPresent: true,
		},
		{
			name:        "names with control characters are dropped",
			claims:      `{"sub":"u1","groups":["eng\u0000x","ops\r\nX-Evil: 1","ok"]}`,
			wantGroups:  []string{"ok"},
			wantPresent: true,
		},
		{
			name:        "a nested path such as realm_access.roles is followed",
			claims:      `{"sub":"u1","realm_access":{"roles":["eng","offline_access"]}}`,
			opts:        OIDCOptions{GroupsClaim: "realm_access.roles"},
			wantGroups:  []string{"eng", "offline_access"},
			wantPresent: true,
		},
		{
			name:        "a URL-shaped claim name is an exact name despite its dots",
			claims:      `{"sub":"u1","https://example.com/groups":["eng"]}`,
			opts:        OIDCOptions{GroupsClaim: "https://example.com/groups"},
			wantGroups:  []string{"eng"},
			wantPresent: true,
		},
		{
			name:        "the exact name wins over a dotted path that also resolves",
			claims:      `{"sub":"u1","a.b":["exact"],"a":{"b":["nested"]}}`,
			opts:        OIDCOptions{GroupsClaim: "a.b"},
			wantGroups:  []string{"exact"},
			wantPresent: true,
		},
		{
			name:        "the filter hides groups and exclude wins",
			claims:      `{"sub":"u1","groups":["eng-api","ops","eng-secret"]}`,
			opts:        OIDCOptions{Filter: eng},
			wantGroups:  []string{"eng-api"},
			wantPresent: true,
		},
		{
			name:        "a filter that hides every group leaves a present, empty set",
			claims:      `{"sub":"u1","groups":["ops"]}`,
			opts:        OIDCOptions{Filter: eng},
			wantGroups:  []string{},
			wantPresent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := FromOIDC("okta", decode(t, tt.claims), tt.opts)
			if err != nil {
				t.Fatalf("FromOIDC: %v", err)
			}
			if id.Groups == nil || !slices.Equal(id.Groups, tt.wantGroups) {
				t.Errorf("Groups = %#v, want %#v", id.Groups, tt.wantGroups)
			}
			if id.GroupsPresent != tt.wantPresent {
				t.Errorf("GroupsPresent = %v, want %v", id.GroupsPresent, tt.wantPresent)
			}
			if id.Provider != "okta" || id.Subject != "u1" {
				t.Errorf("Provider, Subject = %q, %q", id.Provider, id.Subject)
			}
		})
	}
}

func TestFromOIDCNames(t *testing.T) {
	tests := []struct {
		name                       string
		claims                     string
		opts                       OIDCOptions
		wantUser, wantEmail, wantN string
	}{
		{
			name:      "the default claims give username, email and name",
			claims:    `{"sub":"u1","preferred_username":" alice ","email":"alice@example.com","name":"Alice A"}`,
			wantUser:  "alice",
			wantEmail: "alice@example.com",
			wantN:     "Alice A",
		},
		{
			name:      "the username falls back to the email",
			claims:    `{"sub":"u1","email":"alice@example.com"}`,
			wantUser:  "alice@example.com",
			wantEmail: "alice@example.com",
		},
		{
			name:     "the username falls back to the subject when there is no email",
			claims:   `{"sub":"u1","preferred_username":"  "}`,
			wantUser: "u1",
		},
		{
			name:     "a non-string username is ignored",
			claims:   `{"sub":"u1","preferred_username":7}`,
			wantUser: "u1",
		},
		{
			name:      "configured claim names and paths are used",
			claims:    `{"sub":"u1","upn":"alice@corp","profile":{"mail":"a@corp.example","full":"Alice"}}`,
			opts:      OIDCOptions{UsernameClaim: "upn", EmailClaim: "profile.mail", NameClaim: "profile.full"},
			wantUser:  "alice@corp",
			wantEmail: "a@corp.example",
			wantN:     "Alice",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := FromOIDC("okta", decode(t, tt.claims), tt.opts)
			if err != nil {
				t.Fatalf("FromOIDC: %v", err)
			}
			if id.Username != tt.wantUser || id.Email != tt.wantEmail || id.DisplayName != tt.wantN {
				t.Errorf("Username, Email, DisplayName = %q, %q, %q; want %q, %q, %q",
					id.Username, id.Email, id.DisplayName, tt.wantUser, tt.wantEmail, tt.wantN)
			}
		})
	}
}

func TestFromOIDCRefuses(t *testing.T) {
	tests := []struct {
		name     string
		claims   string
		opts     OIDCOptions
		wantCode groupgate.ErrorCode
		wantErr  error
	}{
		{name: "a missing subject is invalid", claims: `{"groups":["eng"]}`, wantCode: groupgate.Invalid},
		{name: "an empty subject is invalid", claims: `{"sub":"  "}`, wantCode: groupgate.Invalid},
		{name: "a numeric subject is invalid", claims: `{"sub":12}`, wantCode: groupgate.Invalid},
		{
			name:     "an Entra group overage is reported, not taken as no groups",
			claims:   `{"sub":"u1","_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":"https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}}`,
			wantCode: groupgate.Forbidden,
			wantErr:  ErrGroupOverage,
		},
		{
			name:     "Entra's hasgroups marker is an overage too",
			claims:   `{"sub":"u1","hasgroups":true}`,
			wantCode: groupgate.Forbidden,
			wantErr:  ErrGroupOverage,
		},
		{
			name:     "an overage of the configured claim is reported",
			claims:   `{"sub":"u1","_claim_names":{"roles":"src1"}}`,
			opts:     OIDCOptions{GroupsClaim: "roles"},
			wantCode: groupgate.Forbidden,
			wantErr:  ErrNoGroups,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromOIDC("entra", decode(t, tt.claims), tt.opts)
			if err == nil {
				t.Fatal("FromOIDC succeeded")
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

func TestFromOIDCIgnoresClaimNamesForOtherClaims(t *testing.T) {
	id, err := FromOIDC("entra", decode(t, `{"sub":"u1","_claim_names":{"address":"src1"},"groups":["eng"]}`), OIDCOptions{})
	if err != nil {
		t.Fatalf("FromOIDC: %v", err)
	}
	if !slices.Equal(id.Groups, []string{"eng"}) {
		t.Errorf("Groups = %q", id.Groups)
	}
}

func TestMergeUserInfo(t *testing.T) {
	t.Run("UserInfo claims replace the ID token's, whole objects included", func(t *testing.T) {
		idToken := decode(t, `{"sub":"u1","email":"old@example.com","name":"Alice","realm_access":{"roles":["a"],"x":1}}`)
		userInfo := decode(t, `{"sub":"u1","email":"new@example.com","groups":["eng"],"realm_access":{"roles":["b"]}}`)
		merged, err := MergeUserInfo(idToken, userInfo)
		if err != nil {
			t.Fatalf("MergeUserInfo: %v", err)
		}
		id, err := FromOIDC("okta", merged, OIDCOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if id.Email != "new@example.com" || id.DisplayName != "Alice" || !slices.Equal(id.Groups, []string{"eng"}) {
			t.Errorf("identity = %+v", id)
		}
		ra := merged["realm_access"].(map[string]any)
		if _, ok := ra["x"]; ok {
			t.Errorf("nested object was merged, want replaced: %v", ra)
		}
		if idToken["email"] != "old@example.com" || idToken["groups"] != nil {
			t.Errorf("ID token claims modified: %v", idToken)
		}
	})
	for _, tt := range []struct{ name, idToken, userInfo string }{
		{"a UserInfo response for another subject is refused", `{"sub":"u1"}`, `{"sub":"u2","groups":["admins"]}`},
		{"a UserInfo response without a subject is refused", `{"sub":"u1"}`, `{"groups":["admins"]}`},
		{"an ID token without a subject is refused", `{}`, `{"sub":""}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MergeUserInfo(decode(t, tt.idToken), decode(t, tt.userInfo))
			if !groupgate.IsCode(err, groupgate.Unauthenticated) {
				t.Errorf("err = %v, want unauthenticated", err)
			}
		})
	}
}

func TestLookupClaim(t *testing.T) {
	claims := map[string]any{
		"groups":                     []any{"g"},
		"https://example.com/groups": []any{"url"},
		"realm_access":               map[string]any{"roles": []any{"r"}},
		"resource_access":            map[string]any{"my.app": map[string]any{"roles": []any{"app"}}},
		"https://example.com/claims": map[string]any{"groups": []any{"nested-url"}},
		"scalar":                     "x",
	}
	tests := []struct {
		name, path string
		want       any
		wantOK     bool
	}{
		{"an exact name is found", "groups", []any{"g"}, true},
		{"a URL-shaped name is found exactly", "https://example.com/groups", []any{"url"}, true},
		{"a dotted path walks nested objects", "realm_access.roles", []any{"r"}, true},
		{"a key with dots inside a path is found", "resource_access.my.app.roles", []any{"app"}, true},
		{"a URL-shaped key holding an object is walked", "https://example.com/claims.groups", []any{"nested-url"}, true},
		{"a path through a scalar is absent", "scalar.x", nil, false},
		{"a missing leaf is absent", "realm_access.groups", nil, false},
		{"an empty name is absent", "", nil, false},
		{"empty path segments do not match", "realm_access..roles", nil, false},
		{"a trailing dot does not match", "groups.", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := LookupClaim(claims, tt.path)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(tt.want)
			if string(gb) != string(wb) {
				t.Errorf("value = %s, want %s", gb, wb)
			}
		})
	}
}

func TestOverageLink(t *testing.T) {
	tests := []struct {
		name   string
		claims string
		claim  string
		want   string
	}{
		{"the endpoint of the groups claim's source", `{"_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":"https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}}`, "", "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"},
		{"the source of the configured claim", `{"_claim_names":{"roles":"s2","groups":"s1"},"_claim_sources":{"s1":{"endpoint":"a"},"s2":{"endpoint":"b"}}}`, "roles", "b"},
		{"hasgroups names no source", `{"hasgroups":true}`, "", ""},
		{"a source without an endpoint", `{"_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"JWT":"x"}}}`, "", ""},
		{"a source name that is not a string", `{"_claim_names":{"groups":1},"_claim_sources":{"1":{"endpoint":"a"}}}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OverageLink(decode(t, tt.claims), tt.claim); got != tt.want {
				t.Errorf("OverageLink = %q, want %q", got, tt.want)
			}
		})
	}
}
