package scim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	tests := []struct{ name, header string }{
		{"no Authorization header is refused", ""},
		{"a wrong token is refused", "Bearer nope"},
		{"a Basic header is refused", "Basic " + testToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/scim/v2/Users", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			e.srv.ServeHTTP(w, r)
			if w.Code != 401 || !strings.Contains(w.Body.String(), `"status":"401"`) || !strings.Contains(w.Body.String(), URNError) {
				t.Fatalf("got %d %s", w.Code, w.Body.String())
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, WithMaxBodyBytes(1024))
	big := `{"userName":"` + strings.Repeat("x", 2048) + `"}`
	status, body, _ := e.do("POST", "/scim/v2/Users", big)
	if status != 413 || body["status"] != "413" {
		t.Fatalf("got %d %v", status, body)
	}
}

func TestUsersCRUDAndErrors(t *testing.T) {
	e := newEnv(t)
	u := e.must(201, "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Bjensen","emails":[{"value":"b@x.example"}]}`)
	id := u["id"].(string)
	t.Run("a duplicate userName in another case is 409 uniqueness", func(t *testing.T) {
		s, body, _ := e.do("POST", "/scim/v2/Users", `{"userName":"BJENSEN"}`)
		if s != 409 || scimTypeOf(body) != errUniqueness || body["status"] != "409" {
			t.Fatalf("got %d %v", s, body)
		}
	})
	t.Run("a missing userName is invalidValue", func(t *testing.T) {
		s, body, _ := e.do("POST", "/scim/v2/Users", `{"displayName":"x"}`)
		if s != 400 || scimTypeOf(body) != errInvalidValue {
			t.Fatalf("got %d %v", s, body)
		}
	})
	t.Run("malformed JSON is invalidSyntax", func(t *testing.T) {
		s, body, _ := e.do("POST", "/scim/v2/Users", `{"userName":`)
		if s != 400 || scimTypeOf(body) != errInvalidSyntax {
			t.Fatalf("got %d %v", s, body)
		}
	})
	t.Run("If-None-Match with the current ETag is 304", func(t *testing.T) {
		_, _, h := e.do("GET", "/scim/v2/Users/"+id, "")
		s, _, _ := e.do("GET", "/scim/v2/Users/"+id, "", "If-None-Match", h.Get("ETag"))
		if s != 304 {
			t.Fatalf("got %d", s)
		}
	})
	t.Run("If-Match with a stale ETag is 412 and changes nothing", func(t *testing.T) {
		s, _, _ := e.do("PATCH", "/scim/v2/Users/"+id, `{"Operations":[{"op":"replace","path":"title","value":"x"}]}`, "If-Match", `W/"999"`)
		if s != 412 {
			t.Fatalf("got %d", s)
		}
		got := e.must(200, "GET", "/scim/v2/Users/"+id, "")
		if _, ok := got["title"]; ok {
			t.Fatal("title was set")
		}
	})
	t.Run("If-Match with the current ETag applies", func(t *testing.T) {
		_, _, h := e.do("GET", "/scim/v2/Users/"+id, "")
		e.must(200, "PATCH", "/scim/v2/Users/"+id, `{"Operations":[{"op":"replace","path":"title","value":"x"}]}`, "If-Match", h.Get("ETag"))
	})
	t.Run("attributes returns only what was asked plus id", func(t *testing.T) {
		got := e.must(200, "GET", "/scim/v2/Users/"+id+"?attributes=userName", "")
		if got["userName"] != "Bjensen" || got["id"] != id || got["emails"] != nil || got["meta"] != nil {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("excludedAttributes drops the attribute", func(t *testing.T) {
		got := e.must(200, "GET", "/scim/v2/Users/"+id+"?excludedAttributes=emails", "")
		if got["emails"] != nil || got["userName"] == nil {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("an unknown user is 404 with the error schema", func(t *testing.T) {
		s, body, _ := e.do("GET", "/scim/v2/Users/nope", "")
		if s != 404 || body["status"] != "404" {
			t.Fatalf("got %d %v", s, body)
		}
	})
	t.Run("a bad filter is invalidFilter", func(t *testing.T) {
		s, body, _ := e.do("GET", "/scim/v2/Users?filter=userName+zz+%22a%22", "")
		if s != 400 || scimTypeOf(body) != errInvalidFilter {
			t.Fatalf("got %d %v", s, body)
		}
	})
	t.Run("DELETE answers 204 and the user is gone", func(t *testing.T) {
		e.must(204, "DELETE", "/scim/v2/Users/"+id, "")
		e.must(404, "GET", "/scim/v2/Users/"+id, "")
	})
}

func TestListPagingSortAndSearch(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.must(201, "POST", "/scim/v2/Users", fmt.Sprintf(`{"userName":"user%d","title":"t%d"}`, i, 4-i))
	}
	t.Run("startIndex is 1-based and count bounds the page", func(t *testing.T) {
		got := e.must(200, "GET", "/scim/v2/Users?startIndex=2&count=2&sortBy=userName", "")
		rs := got["Resources"].([]any)
		if got["totalResults"] != float64(5) || len(rs) != 2 || rs[0].(map[string]any)["userName"] != "user1" || got["startIndex"] != float64(2) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("sortOrder descending reverses", func(t *testing.T) {
		got := e.must(200, "GET", "/scim/v2/Users?sortBy=title&sortOrder=descending&count=1", "")
		if got["Resources"].([]any)[0].(map[string]any)["userName"] != "user0" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("count=0 returns only the total", func(t *testing.T) {
		got := e.must(200, "GET", "/scim/v2/Users?count=0", "")
		if got["totalResults"] != float64(5) || len(got["Resources"].([]any)) != 0 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("POST /Users/.search filters like GET", func(t *testing.T) {
		got := e.must(200, "POST", "/scim/v2/Users/.search", `{"schemas":["`+URNSearchRequest+`"],"filter":"userName sw \"USER\" and not (userName eq \"user0\")","attributes":["userName"]}`)
		if got["totalResults"] != float64(4) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("POST /.search spans users and groups", func(t *testing.T) {
		e.must(201, "POST", "/scim/v2/Groups", `{"displayName":"g1"}`)
		got := e.must(200, "POST", "/scim/v2/.search", `{"count":10}`)
		if got["totalResults"] != float64(6) || len(got["Resources"].([]any)) != 6 {
			t.Fatalf("got %v", got)
		}
	})
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	spc := e.must(200, "GET", "/scim/v2/ServiceProviderConfig", "")
	if spc["patch"].(map[string]any)["supported"] != true || spc["bulk"].(map[string]any)["maxPayloadSize"] != float64(DefaultMaxBodyBytes) ||
		spc["changePassword"].(map[string]any)["supported"] != false {
		t.Fatalf("got %v", spc)
	}
	rts := e.must(200, "GET", "/scim/v2/ResourceTypes", "")
	if rts["totalResults"] != float64(2) {
		t.Fatalf("got %v", rts)
	}
	e.must(200, "GET", "/scim/v2/ResourceTypes/User", "")
	e.must(404, "GET", "/scim/v2/ResourceTypes/Device", "")
	sc := e.must(200, "GET", "/scim/v2/Schemas/"+URNEnterpriseUser, "")
	if sc["id"] != URNEnterpriseUser {
		t.Fatalf("got %v", sc)
	}
	if all := e.must(200, "GET", "/scim/v2/Schemas", ""); all["totalResults"] != float64(3) {
		t.Fatalf("got %v", all)
	}
	e.must(501, "GET", "/scim/v2/Me", "")
}

func TestBulk(t *testing.T) {
	e := newEnv(t, WithBulkMaxOperations(3))
	t.Run("a later operation refers to an earlier one by bulkId", func(t *testing.T) {
		got := e.must(200, "POST", "/scim/v2/Bulk", `{"schemas":["`+URNBulkRequest+`"],"Operations":[
			{"method":"POST","path":"/Users","bulkId":"u1","data":{"userName":"bulk1"}},
			{"method":"POST","path":"/Groups","bulkId":"g1","data":{"displayName":"bulkgroup","members":[{"value":"bulkId:u1"}]}}]}`)
		ops := got["Operations"].([]any)
		if len(ops) != 2 || ops[1].(map[string]any)["status"] != "201" {
			t.Fatalf("got %v", got)
		}
		list := e.must(200, "GET", "/scim/v2/Groups?filter=displayName+eq+%22bulkgroup%22", "")
		members := list["Resources"].([]any)[0].(map[string]any)["members"].([]any)
		if len(members) != 1 {
			t.Fatalf("members %v", members)
		}
	})
	t.Run("failOnErrors stops after that many errors", func(t *testing.T) {
		got := e.must(200, "POST", "/scim/v2/Bulk", `{"failOnErrors":1,"Operations":[
			{"method":"POST","path":"/Users","bulkId":"a","data":{"displayName":"no userName"}},
			{"method":"POST","path":"/Users","bulkId":"b","data":{"userName":"never"}}]}`)
		if ops := got["Operations"].([]any); len(ops) != 1 || ops[0].(map[string]any)["status"] != "400" {
			t.Fatalf("got %v", got)
		}
		e.must(200, "GET", "/scim/v2/Users?filter=userName+eq+%22never%22", "")
	})
	t.Run("more operations than advertised is 413", func(t *testing.T) {
		s, _, _ := e.do("POST", "/scim/v2/Bulk", `{"Operations":[{},{},{},{}]}`)
		if s != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %d", s)
		}
	})
}

// TestConcurrentMemberPatches sends 50 PATCHes at once to one group, each
// adding one user and removing another; no update may be lost.
func TestConcurrentMemberPatches(t *testing.T) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) storeT
	}{{"SQLite", openSQLite}, {"PostgreSQL", openPostgres}} {
		t.Run("on "+backend.name+" the final membership is exact", func(t *testing.T) {
			e := newEnvOn(t, backend.open(t))
			ids := make([]string, 100)
			for i := range ids {
				ids[i] = e.must(201, "POST", "/scim/v2/Users", fmt.Sprintf(`{"userName":"c%03d"}`, i))["id"].(string)
			}
			// users 50..99 start as members; PATCH i adds i and removes 50+i
			members := []string{}
			for _, id := range ids[50:] {
				members = append(members, fmt.Sprintf(`{"value":%q}`, id))
			}
			gid := e.must(201, "POST", "/scim/v2/Groups", `{"displayName":"race","members":[`+strings.Join(members, ",")+`]}`)["id"].(string)
			var wg stdsync.WaitGroup
			errs := make(chan string, 50)
			for i := range 50 {
				wg.Go(func() {
					body := fmt.Sprintf(`{"schemas":["%s"],"Operations":[{"op":"add","path":"members","value":[{"value":%q}]},{"op":"remove","path":"members[value eq \"%s\"]"}]}`,
						URNPatchOp, ids[i], ids[50+i])
					if s, out, _ := e.do("PATCH", "/scim/v2/Groups/"+gid+"?excludedAttributes=members", body); s != 200 {
						errs <- fmt.Sprintf("PATCH %d: %d %v", i, s, out)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			got, err := e.st.ListGroupMembersBySource(e.ctx, "race", "scim")
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(ids[:50])
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("members %d, want the first 50 users exactly", len(got))
			}
		})
	}
}
