package scim

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestApplyPatch(t *testing.T) {
	base := `{"userName":"bjensen","name":{"givenName":"Barbara","familyName":"Jensen"},
		"emails":[{"value":"b@work.example","type":"work","primary":true},{"value":"b@home.example","type":"home"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales"}}`
	tests := []struct {
		name, ops string
		check     func(t *testing.T, d document)
	}{
		{"Entra's capitalised Replace with string booleans applies", `[{"op":"Replace","path":"active","value":"False"}]`,
			func(t *testing.T, d document) { want(t, d["active"], false) }},
		{"a path-less replace with path keys sets sub-attributes", `[{"op":"replace","value":{"name.givenName":"Babs","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"R&D"}}]`,
			func(t *testing.T, d document) {
				want(t, d["name"].(map[string]any)["givenName"], "Babs")
				want(t, d["name"].(map[string]any)["familyName"], "Jensen")
				want(t, d[URNEnterpriseUser].(map[string]any)["department"], "R&D")
			}},
		{"a value-filtered sub-attribute path replaces only the match", `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"new@work.example"}]`,
			func(t *testing.T, d document) {
				want(t, d["emails"].([]any)[0].(map[string]any)["value"], "new@work.example")
				want(t, d["emails"].([]any)[1].(map[string]any)["value"], "b@home.example")
			}},
		{"a filtered replace with no match creates the element the filter names", `[{"op":"replace","path":"emails[type eq \"other\"].value","value":"o@x"}]`,
			func(t *testing.T, d document) { want(t, len(d["emails"].([]any)), 3) }},
		{"remove with a value filter drops the matching element", `[{"op":"remove","path":"emails[type eq \"home\"]"}]`,
			func(t *testing.T, d document) { want(t, len(d["emails"].([]any)), 1) }},
		{"add to a multi-valued attribute appends and keeps one primary", `[{"op":"add","path":"emails","value":[{"value":"n@x","primary":true}]}]`,
			func(t *testing.T, d document) {
				e := d["emails"].([]any)
				want(t, len(e), 3)
				want(t, e[0].(map[string]any)["primary"], nil)
				want(t, e[2].(map[string]any)["primary"], true)
			}},
		{"add of an existing value does not duplicate it", `[{"op":"add","path":"emails","value":[{"value":"b@home.example"}]}]`,
			func(t *testing.T, d document) { want(t, len(d["emails"].([]any)), 2) }},
		{"replace of a complex attribute merges sub-attributes", `[{"op":"replace","path":"name","value":{"familyName":"J"}}]`,
			func(t *testing.T, d document) { want(t, d["name"].(map[string]any)["givenName"], "Barbara") }},
		{"remove of a sub-attribute leaves the rest", `[{"op":"remove","path":"name.givenName"}]`,
			func(t *testing.T, d document) { want(t, d["name"].(map[string]any)["givenName"], nil) }},
		{"remove of a whole extension URN drops it", `[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]`,
			func(t *testing.T, d document) { want(t, d[URNEnterpriseUser], nil) }},
		{"add with an extension URN path key sets its attributes", `[{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7"}}}]`,
			func(t *testing.T, d document) { want(t, d[URNEnterpriseUser].(map[string]any)["employeeNumber"], "7") }},
		{"attribute names are case-insensitive", `[{"op":"replace","path":"NAME.GIVENNAME","value":"B"}]`,
			func(t *testing.T, d document) { want(t, d["name"].(map[string]any)["givenName"], "B") }},
		{"removing an element that is not there is a no-op", `[{"op":"remove","path":"emails[value eq \"nobody\"]"}]`,
			func(t *testing.T, d document) { want(t, len(d["emails"].([]any)), 2) }},
	}
	rt := userType()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := decodeDoc(t, rt, base)
			before := clone(doc)
			var ops []patchOperation
			if err := json.Unmarshal([]byte(tt.ops), &ops); err != nil {
				t.Fatal(err)
			}
			got, err := applyPatch(rt, doc, patchRequest{Schemas: []string{URNPatchOp}, Operations: ops})
			if err != nil {
				t.Fatalf("applyPatch: %v", err)
			}
			if !reflect.DeepEqual(before, any(doc)) {
				t.Fatal("applyPatch changed its input")
			}
			tt.check(t, got)
		})
	}
}

func TestApplyPatchErrors(t *testing.T) {
	tests := []struct {
		name, ops, scimType string
	}{
		{"remove without a path is noTarget", `[{"op":"remove"}]`, errNoTarget},
		{"a path that is not an attribute path is invalidPath", `[{"op":"replace","path":"shoe size","value":"9"}]`, errInvalidPath},
		{"a malformed filter path is invalidPath", `[{"op":"replace","path":"emails[type eq ","value":"x"}]`, errInvalidPath},
		{"setting id is mutability", `[{"op":"replace","path":"id","value":"x"}]`, errMutability},
		{"setting the read-only groups is mutability", `[{"op":"add","path":"groups","value":[{"value":"g"}]}]`, errMutability},
		{"a non-boolean for active is invalidValue", `[{"op":"replace","path":"active","value":"maybe"}]`, errInvalidValue},
		{"a filtered replace no single element satisfies is noTarget", `[{"op":"replace","path":"emails[type ne \"work\"].value","value":"x"},{"op":"replace","path":"emails[value co \"zzz\"].value","value":"y"}]`, errNoTarget},
		{"an unknown op is invalidSyntax", `[{"op":"move","path":"title","value":"x"}]`, errInvalidSyntax},
		{"a later failing operation undoes the earlier ones", `[{"op":"replace","path":"title","value":"x"},{"op":"replace","path":"no pe","value":"y"}]`, errInvalidPath},
	}
	rt := userType()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := decodeDoc(t, rt, `{"userName":"a","emails":[{"value":"a@x","type":"work"}]}`)
			var ops []patchOperation
			if err := json.Unmarshal([]byte(tt.ops), &ops); err != nil {
				t.Fatal(err)
			}
			_, err := applyPatch(rt, doc, patchRequest{Operations: ops})
			if err == nil || err.ScimType != tt.scimType {
				t.Fatalf("got %v, want scimType %s", err, tt.scimType)
			}
			if _, ok := doc["title"]; ok {
				t.Fatal("a failed PATCH changed the document")
			}
		})
	}
}

func decodeDoc(t *testing.T, rt *resourceType, s string) document {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		t.Fatal(err)
	}
	d, err := normalize(rt, raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func want(t *testing.T, got, w any) {
	t.Helper()
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("got %#v, want %#v", got, w)
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{`members`, `members[value eq "x"]`, `emails[type eq "work"].value`, `name.givenName`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`,
		`emails[type eq "work" and not (value co "x")].display`} {
		f.Add(s)
	}
	users, groups := userType(), groupType()
	f.Fuzz(func(t *testing.T, s string) {
		for _, rt := range []*resourceType{users, groups} {
			pp, err := parsePath(rt, s)
			if err != nil {
				if err.Status != 400 || err.ScimType != errInvalidPath {
					t.Fatalf("parsePath(%q): %v", s, err)
				}
				continue
			}
			if pp.whole == nil && pp.r.attr == nil && !pp.unknown {
				t.Fatalf("parsePath(%q) resolved nothing", s)
			}
			// applying any parsed path must not panic
			doc := document{"userName": "u", "displayName": "g", "emails": []any{map[string]any{"value": "a"}}, "members": []any{map[string]any{"value": "1"}}}
			for _, op := range []string{"add", "replace", "remove"} {
				_ = applyAt(rt, clone(doc).(document), op, pp, "v", true)
			}
		}
	})
}
