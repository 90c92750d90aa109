package claims

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/groupgate/groupgate"
)

// FuzzFromOIDC feeds arbitrary JSON claims through FromOIDC with several
// claim paths and filters and checks what every caller relies on: no panic,
// only the documented errors, and a group set that is sorted, unique,
// trimmed, non-empty per name and inside the filter.
func FuzzFromOIDC(f *testing.F) {
	f.Add([]byte(`{"sub":"u1","groups":["eng","ops"," eng "]}`))
	f.Add([]byte(`{"sub":"u1","realm_access":{"roles":[{"name":"a"},1.5,null,"x"]}}`))
	f.Add([]byte(`{"sub":"u1","https://example.com/groups":"mid"}`))
	f.Add([]byte(`{"sub":"u1","_claim_names":{"groups":"s"}}`))
	f.Add([]byte(`{"sub":"u1","email":"a@example.com","email_verified":"True"}`))
	f.Add([]byte(`{"sub":"u1","email":"  ","email_verified":true}`))
	filter, err := NewFilter([]string{"^[a-m]", "^[0-9]"}, []string{"x"})
	if err != nil {
		f.Fatal(err)
	}
	paths := []string{"groups", "realm_access.roles", "https://example.com/groups", "a.b.c", "resource_access.my.app.roles"}
	f.Fuzz(func(t *testing.T, data []byte) {
		var claims map[string]any
		if json.Unmarshal(data, &claims) != nil {
			return
		}
		for _, path := range paths {
			for _, flt := range []*Filter{nil, filter} {
				id, err := FromOIDC("p", claims, OIDCOptions{GroupsClaim: path, UsernameClaim: "a.b", Filter: flt})
				if err != nil {
					code := groupgate.ErrorCodeOf(err)
					if code != groupgate.Invalid && code != groupgate.Forbidden {
						t.Fatalf("unexpected error code %q: %v", code, err)
					}
					continue
				}
				checkGroups(t, id.Groups, flt)
				_, present := LookupClaim(claims, path)
				if id.GroupsPresent != present {
					t.Fatalf("GroupsPresent = %v, claim present = %v", id.GroupsPresent, present)
				}
				if id.Username == "" || strings.TrimSpace(id.Subject) == "" {
					t.Fatalf("empty username or subject: %+v", id)
				}
				if id.EmailVerified && (id.Email == "" || !isTrue(claims["email_verified"])) {
					t.Fatalf("EmailVerified without an email or an email_verified claim: %+v", id)
				}
			}
		}
	})
}

func checkGroups(t *testing.T, groups []string, flt *Filter) {
	t.Helper()
	if groups == nil {
		t.Fatal("Groups is nil, want an empty set")
	}
	if !slices.IsSorted(groups) {
		t.Fatalf("groups not sorted: %q", groups)
	}
	for i, g := range groups {
		if g == "" || strings.TrimSpace(g) != g {
			t.Fatalf("group %q is empty or untrimmed", g)
		}
		if strings.ContainsFunc(g, unicode.IsControl) {
			t.Fatalf("group %q holds a control character", g)
		}
		if i > 0 && groups[i-1] == g {
			t.Fatalf("duplicate group %q", g)
		}
		if !flt.Allowed(g) {
			t.Fatalf("group %q is outside the filter", g)
		}
	}
}

// FuzzClaimPath checks LookupClaim against properties that do not restate
// its algorithm: a name without dots is a plain key lookup, an exact key
// always wins, and nesting the claims one level deeper under a fresh key
// finds the same value through "key." + name.
func FuzzClaimPath(f *testing.F) {
	f.Add([]byte(`{"a":{"b":{"c":1}}}`), "a.b.c")
	f.Add([]byte(`{"a.b":1,"a":{"b":2}}`), "a.b")
	f.Add([]byte(`{"https://x.io/c":{"groups":["g"]}}`), "https://x.io/c.groups")
	f.Add([]byte(`{"a":{"":{"b":1}}}`), "a..b")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		var claims map[string]any
		if json.Unmarshal(data, &claims) != nil {
			return
		}
		got, ok := LookupClaim(claims, path)
		if v, exact := claims[path]; exact && path != "" {
			if !ok || !reflect.DeepEqual(got, v) {
				t.Fatalf("exact key %q not preferred: got %v, %v", path, got, ok)
			}
		}
		if !strings.Contains(path, ".") {
			v, exact := claims[path]
			if ok != (exact && path != "") || (ok && !reflect.DeepEqual(got, v)) {
				t.Fatalf("dotless name %q: LookupClaim = %v, %v; key lookup = %v, %v", path, got, ok, v, exact)
			}
		}
		if path == "" {
			return
		}
		wrapped := map[string]any{"k": claims}
		got2, ok2 := LookupClaim(wrapped, "k."+path)
		if ok2 != ok || !reflect.DeepEqual(got2, got) {
			t.Fatalf("nested lookup of %q = %v, %v; direct = %v, %v", path, got2, ok2, got, ok)
		}
	})
}
