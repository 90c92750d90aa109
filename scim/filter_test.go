package scim

import (
	"reflect"
	"testing"

	"github.com/groupgate/groupgate/store"
)

func TestParseFilter(t *testing.T) {
	users := userType()
	eq := func(attr string, v any, exact bool) store.Compare {
		return store.Compare{Attr: attr, Op: store.OpEq, Value: v, CaseExact: exact}
	}
	tests := []struct {
		name, in string
		want     store.Filter
	}{
		{"userName eq is case-insensitive in attribute, operator and match", `USERNAME EQ "Bjensen"`, eq("userName", "Bjensen", false)},
		{"externalId is case-exact", `externalId eq "x1"`, eq("externalId", "x1", true)},
		{"a sub-attribute keeps its canonical name", `name.familyName co "O'Malley"`,
			store.Compare{Attr: "name.familyName", Op: store.OpCo, Value: "O'Malley"}},
		{"a URN-qualified core attribute loses its URN", `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`,
			store.Compare{Attr: "userName", Op: store.OpSw, Value: "J"}},
		{"an extension attribute is named URN.attr", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`,
			eq(URNEnterpriseUser+".employeeNumber", "701984", false)},
		{"an extension sub-attribute is named URN.attr.sub", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m1"`,
			eq(URNEnterpriseUser+".manager.value", "m1", false)},
		{"a multi-valued sub-attribute becomes any-value-matches", `emails.value ew "@example.com"`,
			store.ValuePath{Attr: "emails", Filter: store.Compare{Attr: "value", Op: store.OpEw, Value: "@example.com"}}},
		{"a multi-valued attribute without sub-attribute means its value", `emails co "x"`,
			store.ValuePath{Attr: "emails", Filter: store.Compare{Attr: "value", Op: store.OpCo, Value: "x"}}},
		{"pr has no value", `title pr`, store.Compare{Attr: "title", Op: store.OpPresent}},
		{"booleans parse", `active eq true`, eq("active", true, false)},
		{"string booleans are accepted for boolean attributes", `active eq "False"`, eq("active", false, false)},
		{"and binds tighter than or", `userName eq "a" or userName eq "b" and active eq true`,
			store.Or{Left: eq("userName", "a", false), Right: store.And{Left: eq("userName", "b", false), Right: eq("active", true, false)}}},
		{"parentheses override precedence", `(userName eq "a" or userName eq "b") and active eq true`,
			store.And{Left: store.Or{Left: eq("userName", "a", false), Right: eq("userName", "b", false)}, Right: eq("active", true, false)}},
		{"not negates a group", `not (userName eq "a")`, store.Not{Filter: eq("userName", "a", false)}},
		{"a value path filters within one element", `emails[type eq "work" and value co "@example.com"]`,
			store.ValuePath{Attr: "emails", Filter: store.And{Left: eq("type", "work", false), Right: store.Compare{Attr: "value", Op: store.OpCo, Value: "@example.com"}}}},
		{"dates compare as normalized RFC 3339", `meta.lastModified gt "2011-05-13T04:42:34+02:00"`,
			store.Compare{Attr: "meta.lastModified", Op: store.OpGt, Value: "2011-05-13T02:42:34Z"}},
		{"eq null means not present", `title eq null`, store.Not{Filter: store.Compare{Attr: "title", Op: store.OpPresent}}},
		{"escaped quotes in strings", `userName eq "a\"b"`, eq("userName", `a"b`, false)},
		{"and/or chain left to right", `userName eq "a" and userName eq "b" and userName eq "c"`,
			store.And{Left: store.And{Left: eq("userName", "a", false), Right: eq("userName", "b", false)}, Right: eq("userName", "c", false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFilter(users, tt.in)
			if err != nil {
				t.Fatalf("parseFilter(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseFilter(%q)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseGroupFilter(t *testing.T) {
	got, err := parseFilter(groupType(), `members.value eq "u1" and displayName eq "Eng"`)
	if err != nil {
		t.Fatal(err)
	}
	want := store.And{
		Left:  store.ValuePath{Attr: "members", Filter: store.Compare{Attr: "value", Op: store.OpEq, Value: "u1", CaseExact: true}},
		Right: store.Compare{Attr: "displayName", Op: store.OpEq, Value: "Eng", CaseExact: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
}

func TestParseFilterErrors(t *testing.T) {
	tests := []struct {
		name, in, scimType string
	}{
		{"an empty filter is invalid", ``, errInvalidFilter},
		{"an unknown attribute is invalid", `shoeSize eq "9"`, errInvalidFilter},
		{"an unknown operator is invalid", `userName like "a"`, errInvalidFilter},
		{"a missing value is invalid", `userName eq`, errInvalidFilter},
		{"an unquoted string is invalid", `userName eq bob`, errInvalidFilter},
		{"an unclosed parenthesis is invalid", `(userName eq "a"`, errInvalidFilter},
		{"an unclosed bracket is invalid", `emails[type eq "work"`, errInvalidFilter},
		{"an unterminated string is invalid", `userName eq "a`, errInvalidFilter},
		{"gt on a boolean is invalid", `active gt true`, errInvalidFilter},
		{"a number for a string attribute is invalid", `userName eq 3`, errInvalidFilter},
		{"a complex attribute cannot be compared", `name eq "x"`, errInvalidFilter},
		{"a bad date is invalid", `meta.created gt "yesterday"`, errInvalidFilter},
		{"trailing tokens are invalid", `userName eq "a" "b"`, errInvalidFilter},
		{"and without a right side is invalid", `userName eq "a" and`, errInvalidFilter},
		{"an unknown extension is invalid", `urn:example:ext:foo eq "a"`, errInvalidFilter},
		{"a nested value path is invalid", `emails[type[value eq "a"]]`, errInvalidFilter},
		{"deep nesting is invalid", repeat("(", 40) + `userName eq "a"` + repeat(")", 40), errInvalidFilter},
		{"more than 100 comparisons is tooMany", manyTerms(101), errTooMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFilter(userType(), tt.in)
			if err == nil {
				t.Fatalf("parseFilter(%q) succeeded", tt.in)
			}
			if err.ScimType != tt.scimType || err.Status != 400 {
				t.Fatalf("parseFilter(%q): %d %s, want 400 %s", tt.in, err.Status, err.ScimType, tt.scimType)
			}
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func manyTerms(n int) string {
	out := `userName eq "a"`
	for range n - 1 {
		out += ` or userName eq "a"`
	}
	return out
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "bjensen"`, `emails[type eq "work" and value co "@x"]`, `not (a eq "b") or c pr`,
		`meta.created gt "2011-05-13T04:42:34Z"`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x"`,
		`(((userName eq "\u00e9")))`, `members[value eq "1"]`,
	} {
		f.Add(s)
	}
	users, groups := userType(), groupType()
	f.Fuzz(func(t *testing.T, s string) {
		for _, rt := range []*resourceType{users, groups} {
			fl, err := parseFilter(rt, s)
			if (fl == nil) == (err == nil) {
				t.Fatalf("parseFilter(%q) returned %v and %v", s, fl, err)
			}
			if err != nil && (err.Status != 400 || (err.ScimType != errInvalidFilter && err.ScimType != errTooMany)) {
				t.Fatalf("parseFilter(%q): unexpected error %v", s, err)
			}
		}
	})
}
