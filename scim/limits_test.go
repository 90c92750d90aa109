package scim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// Bad input is a 400 invalidValue, never a 500 from the database: names
// the database indexes have a length limit, and NUL (which PostgreSQL
// text and jsonb cannot hold) is refused anywhere in a body.
func TestOverLongNamesAreInvalidValue(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		// Random letters: PostgreSQL compresses a repeated character far
		// below its index limit, and such a name would pass.
		rnd := rand.New(rand.NewPCG(1, 2))
		var sb strings.Builder
		for range 9000 {
			sb.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789"[rnd.IntN(36)])
		}
		long := sb.String()
		uid := e.must(201, "POST", "/scim/v2/Users", `{"userName":"short"}`)["id"].(string)
		gid := e.must(201, "POST", "/scim/v2/Groups", `{"displayName":"short"}`)["id"].(string)
		cases := []struct{ name, method, path, body string }{
			{"a POST with a long userName", "POST", "/Users", `{"userName":"` + long + `"}`},
			{"a POST with a long user displayName", "POST", "/Users", `{"userName":"u1","displayName":"` + long + `"}`},
			{"a POST with a long user externalId", "POST", "/Users", `{"userName":"u2","externalId":"` + long + `"}`},
			{"a POST with a long email", "POST", "/Users", `{"userName":"u3","emails":[{"value":"` + long + `@example.com"}]}`},
			{"a POST with a long name.formatted", "POST", "/Users", `{"userName":"u4","name":{"formatted":"` + long + `"}}`},
			{"a POST with a long group displayName", "POST", "/Groups", `{"displayName":"` + long + `"}`},
			{"a POST with a long group externalId", "POST", "/Groups", `{"displayName":"g1","externalId":"` + long + `"}`},
			{"a PUT with a long userName", "PUT", "/Users/" + uid, `{"userName":"` + long + `"}`},
			{"a PATCH to a long userName", "PATCH", "/Users/" + uid, `{"Operations":[{"op":"replace","path":"userName","value":"` + long + `"}]}`},
			{"a PATCH to a long displayName", "PATCH", "/Users/" + uid, `{"Operations":[{"op":"replace","value":{"displayName":"` + long + `"}}]}`},
			{"a PUT with a long group displayName", "PUT", "/Groups/" + gid, `{"displayName":"` + long + `"}`},
			{"a PATCH to a long group displayName", "PATCH", "/Groups/" + gid, `{"Operations":[{"op":"replace","path":"displayName","value":"` + long + `"}]}`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s, body, _ := e.do(tc.method, "/scim/v2"+tc.path, tc.body)
				if s != 400 || scimTypeOf(body) != errInvalidValue {
					t.Fatalf("got %d %s, want 400 invalidValue", s, short(body))
				}
			})
		}
		t.Run("names at the limit are accepted", func(t *testing.T) {
			name := strings.Repeat("é", maxNameLen)
			e.must(201, "POST", "/scim/v2/Users", fmt.Sprintf(`{"userName":%q,"displayName":%q,"externalId":%q}`, name, name, name))
			e.must(201, "POST", "/scim/v2/Groups", fmt.Sprintf(`{"displayName":%q,"externalId":%q}`, name, name))
		})
	})
}

func TestNULIsRefusedAnywhereInABody(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		uid := e.must(201, "POST", "/scim/v2/Users", `{"userName":"nul"}`)["id"].(string)
		gid := e.must(201, "POST", "/scim/v2/Groups", `{"displayName":"nul"}`)["id"].(string)
		cases := []struct{ name, method, path, body string }{
			{"in a userName", "POST", "/Users", `{"userName":"a\u0000b"}`},
			{"in a document attribute", "POST", "/Users", `{"userName":"n1","title":"x\u0000"}`},
			{"in an extension attribute", "POST", "/Users", `{"userName":"n2","` + URNEnterpriseUser + `":{"department":"\u0000"}}`},
			{"in an unknown attribute's name", "POST", "/Users", `{"userName":"n3","a\u0000":"x"}`},
			{"in a group displayName", "POST", "/Groups", `{"displayName":"g\u0000"}`},
			{"in a PUT", "PUT", "/Users/" + uid, `{"userName":"nul","nickName":"\u0000"}`},
			{"in a PATCH value", "PATCH", "/Users/" + uid, `{"Operations":[{"op":"replace","path":"title","value":"\u0000"}]}`},
			{"in a PATCH path", "PATCH", "/Users/" + uid, `{"Operations":[{"op":"replace","path":"title\u0000","value":"x"}]}`},
			{"in a group member", "PATCH", "/Groups/" + gid, `{"Operations":[{"op":"add","path":"members","value":[{"value":"\u0000"}]}]}`},
			{"in a search", "POST", "/Users/.search", `{"filter":"userName eq \"\u0000\""}`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s, body, _ := e.do(tc.method, "/scim/v2"+tc.path, tc.body)
				if s != 400 || (scimTypeOf(body) != errInvalidValue && scimTypeOf(body) != errInvalidFilter) {
					t.Fatalf("got %d %s, want 400 invalidValue", s, short(body))
				}
			})
		}
		t.Run("an escaped backslash before u0000 is no NUL", func(t *testing.T) {
			got := e.must(201, "POST", "/scim/v2/Users", `{"userName":"n4","title":"a\\u0000"}`)
			if got["title"] != `a\u0000` {
				t.Fatalf("title %q", got["title"])
			}
		})
	})
}

// short renders an error body for a failure message, cut to a readable
// length.
func short(body map[string]any) string {
	s := jsonString(body)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
