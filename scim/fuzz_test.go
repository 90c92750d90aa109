package scim

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzSCIMBodies sends arbitrary bodies as POST, PUT and PATCH of Users
// and Groups to the real handler on PostgreSQL, the stricter store: bad
// input must be a 4xx, never a 5xx from the database. A plain `go test`
// runs only the seeds in testdata/fuzz/FuzzSCIMBodies; fuzz with
//
//	go test ./scim -run '^$' -fuzz FuzzSCIMBodies -fuzztime 2m
func FuzzSCIMBodies(f *testing.F) {
	e := newEnvOn(f, openPostgres(f))
	uid := e.must(201, "POST", "/scim/v2/Users", `{"userName":"fuzz-base","emails":[{"value":"fuzz@example.com"}]}`)["id"].(string)
	gid := e.must(201, "POST", "/scim/v2/Groups", `{"displayName":"fuzz-base","members":[{"value":"`+uid+`"}]}`)["id"].(string)
	targets := []struct{ method, path string }{
		{"POST", "/scim/v2/Users"},
		{"PUT", "/scim/v2/Users/" + uid},
		{"PATCH", "/scim/v2/Users/" + uid},
		{"POST", "/scim/v2/Groups"},
		{"PUT", "/scim/v2/Groups/" + gid},
		{"PATCH", "/scim/v2/Groups/" + gid},
	}
	f.Add(uint8(0), `{"userName":"seed"}`)
	f.Add(uint8(2), `{"Operations":[{"op":"replace","path":"title","value":"x"}]}`)
	f.Add(uint8(5), `{"Operations":[{"op":"add","path":"members","value":[{"value":"`+uid+`"}]}]}`)
	f.Fuzz(func(t *testing.T, target uint8, body string) {
		tg := targets[int(target)%len(targets)]
		r := httptest.NewRequest(tg.method, "http://sso.example.com"+tg.path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+testToken)
		r.Header.Set("Content-Type", "application/scim+json")
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code >= 500 {
			b := w.Body.String()
			if len(b) > 300 {
				b = b[:300]
			}
			t.Fatalf("%s %s with %.300q: %d %s", tg.method, tg.path, body, w.Code, b)
		}
	})
}
